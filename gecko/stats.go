package gecko

// BrowserInfo describes one running browser of a Pool.
type BrowserInfo struct {
	// Index is the browser's slot in the pool (0 .. Browsers-1).
	Index int
	// PID is the Firefox main process id (also its process group id).
	PID int
	// Profile is the temporary profile directory.
	Profile string
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
}

// Browsers describes the running browsers (none while every browser is
// down). It is meant for monitoring, benchmarks and tests.
func (p *Pool) Browsers() []BrowserInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []BrowserInfo
	for _, b := range p.browsers {
		g := b.gen
		if g == nil {
			continue
		}
		bi := BrowserInfo{Index: b.idx, PID: g.ff.PID(), Profile: g.ff.Profile(), Workers: g.live, Tokens: len(g.tokens), Pages: len(g.pages)}
		for _, pg := range g.generic {
			bi.Warm += pg.warm
		}
		for _, tc := range g.tokens {
			for _, pg := range tc.pages {
				bi.TokenWarm += pg.warm
			}
		}
		out = append(out, bi)
	}
	return out
}
