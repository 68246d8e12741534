package chromium

import "github.com/geckohost/geckohost/gecko"

// Browsers describes the running browsers (none while every browser is
// down), with gecko.BrowserInfo's fields: PID the browser's, BiDi its
// CDP URL, Contents its browser contexts' renderer processes.
func (p *Pool) Browsers() []gecko.BrowserInfo { return p.browserInfos(false) }

// Slots is Browsers with one entry (State gecko.BrowserStarting, PID 0)
// for each slot that has no browser now, in slot order.
func (p *Pool) Slots() []gecko.BrowserInfo { return p.browserInfos(true) }

func (p *Pool) browserInfos(down bool) []gecko.BrowserInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []gecko.BrowserInfo
	for _, b := range p.browsers {
		if b.gen != nil {
			out = append(out, b.gen.info())
		} else if down {
			out = append(out, gecko.BrowserInfo{Index: b.idx, State: gecko.BrowserStarting, Capacity: p.opts.MaxWorkersPerBrowser, Restarts: b.restarts})
		}
	}
	return out
}

// info describes g. Caller holds p.mu.
func (g *generation) info() gecko.BrowserInfo {
	bi := gecko.BrowserInfo{Index: g.b.idx, State: gecko.BrowserRunning, PID: g.bp.PID(), Capacity: g.b.p.opts.MaxWorkersPerBrowser,
		Restarts: g.b.restarts, Profile: g.bp.dir, BiDi: g.bp.wsURL, Workers: g.live, Started: g.served,
		Tokens: len(g.tokens), Retiring: len(g.retired), Pages: len(g.pages),
		Contents: g.contents(), ContentCrashes: g.crashes.Load(), LimitKills: g.limitKills.Load()}
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
