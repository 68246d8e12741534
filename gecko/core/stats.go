package core

import (
	"fmt"
	"time"

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
	// PID is the browser's main process id (also its process group id);
	// 0 while the slot is starting.
	PID int
	// Capacity is the most workers the browser runs
	// (PoolOptions.MaxWorkersPerBrowser).
	Capacity int
	// Restarts is how many times the slot's browser died and was
	// restarted since Start.
	Restarts int
	// Profile is the temporary profile directory (Chromium's
	// --user-data-dir).
	Profile string
	// BiDi is the browser's WebDriver BiDi session URL
	// (ws://127.0.0.1:PORT/session; Chromium's CDP URL); workers can
	// never reach it.
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
	// Tokens is the number of token user contexts (Chromium: browser
	// contexts).
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
	// Contents are the content processes (Chromium: renderers) of its
	// user contexts that the pool watches (see PoolOptions.WorkerMemory),
	// by pid.
	Contents []ContentInfo
	// ContentCrashes counts the content processes that died by themselves
	// (crashed, killed from outside) while running pages; LimitKills those
	// the pool killed for a limit.
	ContentCrashes int64
	LimitKills     int64
}

// ContentInfo describes the content process (Chromium: the renderer) of
// one user context of a browser (see BrowserInfo.Contents).
type ContentInfo struct {
	// PID is the process id.
	PID int
	// Token is the id of the token whose user context it runs; 0 for a
	// generic page's (not yet taken by a token).
	Token int64
	// UserContext is the browser user context's id (Chromium: the browser
	// context's).
	UserContext string
	// Memory is its anonymous resident memory in bytes.
	Memory int64
	// MemoryLimit is the limit past which it is killed, in bytes (0: none).
	MemoryLimit int64
	// CPU is the CPU time it has used.
	CPU time.Duration
	// Niced: it is busy and runs at a lower priority.
	Niced bool
}

// InfoSlot is one browser slot of a pool as Infos describes it; the
// pool's lock is held while it asks.
type InfoSlot interface {
	// Infos describes the slot's running browsers (State BrowserRunning):
	// its current one (nil while the slot has none), a replacement
	// loading its pages (nil if none) and replaced ones still running
	// workers.
	Infos() (current, standby *BrowserInfo, draining []BrowserInfo)
	// Down describes the slot while it has no browser (State
	// BrowserStarting, PID 0).
	Down() BrowserInfo
}

// Infos describes the running browsers of slots: first the current one of
// each slot, then replacements still loading (Standby) and replaced ones
// still running workers (Draining). With down, a slot with no browser now
// has an entry too (see InfoSlot.Down), in slot order among the current
// browsers.
func Infos[S InfoSlot](slots []S, down bool) []BrowserInfo {
	var out, extra []BrowserInfo
	for _, s := range slots {
		cur, next, old := s.Infos()
		if cur != nil {
			out = append(out, *cur)
		} else if down {
			out = append(out, s.Down())
		}
		if next != nil {
			bi := *next
			bi.Standby = true
			bi.State = BrowserStandby
			extra = append(extra, bi)
		}
		for _, bi := range old {
			bi.Draining = true
			bi.State = BrowserDraining
			extra = append(extra, bi)
		}
	}
	return append(out, extra...)
}

// Warmer is a shell page as SumWarm counts it.
type Warmer interface {
	// Warm is the number of pre-spawned workers ready in the page.
	Warm() int
}

// SumWarm is the number of pre-spawned workers ready in pages.
func SumWarm[P Warmer](pages []P) int {
	n := 0
	for _, pg := range pages {
		n += pg.Warm()
	}
	return n
}

// GroupPSS returns the proportional set size, in bytes, of the process
// group pgid (a browser's PID is its group's id: the sum over the browser
// and its content processes), from /proc/<pid>/smaps_rollup. Outside
// Linux it fails (there is no /proc).
func GroupPSS(pgid int) (int64, error) {
	if pgid <= 0 {
		return 0, fmt.Errorf("group pss of %d: not a process group", pgid)
	}
	return proc.GroupPSS(pgid)
}
