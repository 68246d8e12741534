package gecko

import "github.com/geckohost/geckohost/gecko/core"

// The states of a browser slot, as BrowserInfo.State reports them (see
// package gecko/core).
const (
	BrowserRunning  = core.BrowserRunning
	BrowserStarting = core.BrowserStarting
	BrowserStandby  = core.BrowserStandby
	BrowserDraining = core.BrowserDraining
)

// BrowserInfo describes one running browser of a Pool (both engines').
type BrowserInfo = core.BrowserInfo

// Browsers describes the running browsers (none while every browser is
// down): first the current one of each slot, then replacements still
// loading (Standby) and replaced ones still running workers (Draining).
// It is meant for monitoring, benchmarks and tests.
func (p *Pool) Browsers() []BrowserInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	return core.Infos(p.browsers, false)
}

// Slots is Browsers with one more entry for each slot that has no browser
// now (State BrowserStarting, PID 0), in slot order among the current
// browsers: every slot appears once, then the replacements and replaced
// browsers. It is meant for status pages and metrics.
func (p *Pool) Slots() []BrowserInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	return core.Infos(p.browsers, true)
}

// GroupPSS returns the proportional set size, in bytes, of the process
// group pgid (a browser's PID is its group's id: the sum over Firefox and
// its content processes), from /proc/<pid>/smaps_rollup. Outside Linux it
// fails (there is no /proc).
func GroupPSS(pgid int) (int64, error) { return core.GroupPSS(pgid) }

// Infos implements core.InfoSlot. Caller holds p.mu.
func (b *browser) Infos() (cur, standby *BrowserInfo, draining []BrowserInfo) {
	if b.gen != nil {
		bi := b.gen.info()
		cur = &bi
	}
	if b.next != nil {
		bi := b.next.info()
		standby = &bi
	}
	for _, g := range b.old {
		if g != b.gen { // else serving until its replacement is up
			draining = append(draining, g.info())
		}
	}
	return cur, standby, draining
}

// Down implements core.InfoSlot. Caller holds p.mu.
func (b *browser) Down() BrowserInfo {
	return BrowserInfo{Index: b.idx, State: BrowserStarting, Capacity: b.p.opts.MaxWorkersPerBrowser, Restarts: b.restarts}
}

// Warm implements core.Warmer. Caller holds p.mu.
func (pg *page) Warm() int { return pg.warm }

// info describes g. Caller holds p.mu.
func (g *generation) info() BrowserInfo {
	bi := BrowserInfo{Index: g.b.idx, State: BrowserRunning, PID: g.ff.PID(), Capacity: g.b.p.opts.MaxWorkersPerBrowser,
		Restarts: g.b.restarts, Profile: g.ff.Profile(), BiDi: g.ff.SessionURL(), Workers: g.live, Started: g.served,
		Tokens: len(g.tokens), Retiring: len(g.retired), Pages: len(g.pages),
		Contents: g.contents(), ContentCrashes: g.crashes.Load(), LimitKills: g.limitKills.Load(),
		Warm: core.SumWarm(g.generic)}
	for _, tc := range g.tokens {
		bi.TokenWarm += core.SumWarm(tc.pages)
	}
	return bi
}
