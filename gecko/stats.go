package gecko

import (
	"fmt"

	"github.com/geckohost/geckohost/internal/proc"
)

// The states of a browser slot, as BrowserInfo.State reports them.
const (
	// BrowserRunning: the slot's current browser; it takes new workers.
	BrowserRunning = "running"
	// BrowserStarting: the slot has no browser; one is being launched (at
	// start, or after the previous one died). Only Slots reports it.
	BrowserStarting = "starting"
	// BrowserStandby: a replacement loading its pages (see Standby).
	BrowserStandby = "standby"
	// BrowserDraining: a replaced browser running its last workers (see
	// Draining).
	BrowserDraining = "draining"
)

// BrowserInfo describes one running browser of a Pool.
type BrowserInfo struct {
	// Index is the browser's slot in the pool (0 .. Browsers-1).
	Index int
	// State is BrowserRunning, BrowserStandby, BrowserDraining, or (from
	// Slots only) BrowserStarting.
	State string
	// PID is the Firefox main process id (also its process group id); 0
	// while the slot is starting.
	PID int
	// Capacity is the most workers the browser runs
	// (PoolOptions.MaxWorkersPerBrowser).
	Capacity int
	// Restarts is how many times the slot's browser died and was
	// restarted since Start.
	Restarts int
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
	// Contents are the content processes of its user contexts that the
	// pool watches (see PoolOptions.WorkerMemory), by pid.
	Contents []ContentInfo
	// ContentCrashes counts the content processes that died by themselves
	// (crashed, killed from outside) while running pages; LimitKills those
	// the pool killed for a limit.
	ContentCrashes int64
	LimitKills     int64
}

// Browsers describes the running browsers (none while every browser is
// down): first the current one of each slot, then replacements still
// loading (Standby) and replaced ones still running workers (Draining).
// It is meant for monitoring, benchmarks and tests.
func (p *Pool) Browsers() []BrowserInfo {
	return p.browserInfos(false)
}

// Slots is Browsers with one more entry for each slot that has no browser
// now (State BrowserStarting, PID 0), in slot order among the current
// browsers: every slot appears once, then the replacements and replaced
// browsers. It is meant for status pages and metrics.
func (p *Pool) Slots() []BrowserInfo {
	return p.browserInfos(true)
}

func (p *Pool) browserInfos(down bool) []BrowserInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out, extra []BrowserInfo
	for _, b := range p.browsers {
		if b.gen != nil {
			out = append(out, b.gen.info())
		} else if down {
			out = append(out, BrowserInfo{Index: b.idx, State: BrowserStarting, Capacity: p.opts.MaxWorkersPerBrowser, Restarts: b.restarts})
		}
		if b.next != nil {
			bi := b.next.info()
			bi.Standby = true
			bi.State = BrowserStandby
			extra = append(extra, bi)
		}
		for _, g := range b.old {
			if g == b.gen {
				continue // serving until its replacement is up
			}
			bi := g.info()
			bi.Draining = true
			bi.State = BrowserDraining
			extra = append(extra, bi)
		}
	}
	return append(out, extra...)
}

// GroupPSS returns the proportional set size, in bytes, of the process
// group pgid (a browser's PID is its group's id: the sum over Firefox and
// its content processes), from /proc/<pid>/smaps_rollup. Outside Linux it
// fails (there is no /proc).
func GroupPSS(pgid int) (int64, error) {
	if pgid <= 0 {
		return 0, fmt.Errorf("group pss of %d: not a process group", pgid)
	}
	return proc.GroupPSS(pgid)
}

// info describes g. Caller holds p.mu.
func (g *generation) info() BrowserInfo {
	bi := BrowserInfo{Index: g.b.idx, State: BrowserRunning, PID: g.ff.PID(), Capacity: g.b.p.opts.MaxWorkersPerBrowser,
		Restarts: g.b.restarts, Profile: g.ff.Profile(), BiDi: g.ff.SessionURL(), Workers: g.live, Started: g.served,
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
