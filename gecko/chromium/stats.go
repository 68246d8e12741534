package chromium

import "github.com/geckohost/geckohost/gecko/core"

// Browsers describes the running browsers (none while every browser is
// down), with core.BrowserInfo's fields (gecko.BrowserInfo): PID the
// browser's, BiDi its CDP URL, Contents its browser contexts' renderer
// processes.
func (p *Pool) Browsers() []core.BrowserInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	return core.Infos(p.browsers, false)
}

// Slots is Browsers with one entry (State core.BrowserStarting, PID 0)
// for each slot that has no browser now, in slot order.
func (p *Pool) Slots() []core.BrowserInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	return core.Infos(p.browsers, true)
}

// Infos implements core.InfoSlot: a Chromium slot has its current
// browser only. Caller holds p.mu.
func (b *browser) Infos() (cur, standby *core.BrowserInfo, draining []core.BrowserInfo) {
	if b.gen == nil {
		return nil, nil, nil
	}
	bi := b.gen.info()
	return &bi, nil, nil
}

// Down implements core.InfoSlot. Caller holds p.mu.
func (b *browser) Down() core.BrowserInfo {
	return core.BrowserInfo{Index: b.idx, State: core.BrowserStarting, Capacity: b.p.opts.MaxWorkersPerBrowser, Restarts: b.restarts}
}

// Warm implements core.Warmer. Caller holds p.mu.
func (pg *page) Warm() int { return pg.warm }

// info describes g. Caller holds p.mu.
func (g *generation) info() core.BrowserInfo {
	bi := core.BrowserInfo{Index: g.b.idx, State: core.BrowserRunning, PID: g.bp.PID(), Capacity: g.b.p.opts.MaxWorkersPerBrowser,
		Restarts: g.b.restarts, Profile: g.bp.dir, BiDi: g.bp.wsURL, Workers: g.live, Started: g.served,
		Tokens: len(g.tokens), Retiring: len(g.retired), Pages: len(g.pages),
		Contents: g.contents(), ContentCrashes: g.crashes.Load(), LimitKills: g.limitKills.Load(),
		Warm: core.SumWarm(g.generic)}
	for _, tc := range g.tokens {
		bi.TokenWarm += core.SumWarm(tc.pages)
	}
	return bi
}
