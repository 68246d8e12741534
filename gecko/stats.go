package gecko

// BrowserInfo describes one running browser of a Pool.
type BrowserInfo struct {
	// Index is the browser's slot in the pool (0 .. Browsers-1).
	Index int
	// PID is the Firefox main process id (also its process group id).
	PID int
	// Profile is the temporary profile directory.
	Profile string
	// BiDi is the browser's WebDriver BiDi session URL
	// (ws://127.0.0.1:PORT/session); workers can never reach it.
	BiDi string
	// Workers is the number of live (reserved or running) workers.
	Workers int
	// Warm is the number of pre-spawned workers ready in the generic
	// pages (for new tokens).
	Warm int
	// TokenWarm is the number of pre-spawned workers ready in the tokens'
	// pages.
	TokenWarm int
	// Pages is the number of loaded shell pages (generic and tokens').
	Pages int
	// Tokens is the number of token user contexts.
	Tokens int
	// Retiring is the number of replaced token user contexts (see
	// PoolOptions.RecycleAfter) still running workers.
	Retiring int
	// Started is the number of workers the browser has started.
	Started int
	// Standby: a replacement (PoolOptions.RecycleBrowserAfter) loading its
	// pages; it takes over the slot's new workers once they are loaded.
	Standby bool
	// Draining: a replaced browser, closed once its last worker ends.
	Draining bool
}

// Browsers describes the running browsers (none while every browser is
// down): first the current one of each slot, then replacements still
// loading (Standby) and replaced ones still running workers (Draining).
// It is meant for monitoring, benchmarks and tests.
func (p *Pool) Browsers() []BrowserInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out, extra []BrowserInfo
	for _, b := range p.browsers {
		if b.gen != nil {
			out = append(out, b.gen.info())
		}
		if b.next != nil {
			bi := b.next.info()
			bi.Standby = true
			extra = append(extra, bi)
		}
		for _, g := range b.old {
			if g == b.gen {
				continue // serving until its replacement is up
			}
			bi := g.info()
			bi.Draining = true
			extra = append(extra, bi)
		}
	}
	return append(out, extra...)
}

// info describes g. Caller holds p.mu.
func (g *generation) info() BrowserInfo {
	bi := BrowserInfo{Index: g.b.idx, PID: g.ff.PID(), Profile: g.ff.Profile(), BiDi: g.ff.SessionURL(), Workers: g.live, Started: g.served,
		Tokens: len(g.tokens), Retiring: len(g.retired), Pages: len(g.pages)}
	for _, pg := range g.generic {
		bi.Warm += pg.warm
	}
	for _, tc := range g.tokens {
		for _, pg := range tc.pages {
			bi.TokenWarm += pg.warm
		}
	}
	return bi
}
