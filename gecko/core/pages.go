package core

import "encoding/json"

// Page is a shell page as its token's places count it.
type Page interface {
	// Reserved counts the places reserved in the page (its workers).
	Reserved() int
	// Closing reports whether the page is going (it takes no worker).
	Closing() bool
}

// Placed counts the workers that have a place in pages. Caller holds the
// pool's lock.
func Placed[P Page](pages []P) int {
	n := 0
	for _, pg := range pages {
		n += pg.Reserved()
	}
	return n
}

// FreePage returns the first of pages with a free place (of perPage), and
// whether there is one. Caller holds the pool's lock.
func FreePage[P Page](pages []P, perPage int) (P, bool) {
	for _, pg := range pages {
		if !pg.Closing() && pg.Reserved() < perPage {
			return pg, true
		}
	}
	var none P
	return none, false
}

// Free counts the free places (of perPage each) in pages. Caller holds the
// pool's lock.
func Free[P Page](pages []P, perPage int) int {
	n := 0
	for _, pg := range pages {
		if !pg.Closing() {
			n += perPage - pg.Reserved()
		}
	}
	return n
}

// CloseOnce closes ch unless it is closed already. Callers serialise
// (they hold the pool's lock).
func CloseOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// ShellConfig is what the shell page's gh.init gets (package gecko/shell).
type ShellConfig struct {
	// Engine names the browser ("chromium"); "" for Firefox, which the
	// shell assumes.
	Engine     string   `json:"engine,omitempty"`
	IceServers []string `json:"iceServers,omitempty"`
	Loopback   bool     `json:"loopback"`
	IdleMs     int64    `json:"idleMs"`
	BusyMs     int64    `json:"busyMs"`
	Warm       int      `json:"warm"`
	// Capacity is how many workers the page hosts at most: a page keeps
	// fewer warm slots as it fills up, none when full.
	Capacity int `json:"capacity"`
}

// JSON returns c as gh.init's argument; negative IdleMs and BusyMs are 0
// (no limit).
func (c ShellConfig) JSON() string {
	c.IdleMs, c.BusyMs = max(c.IdleMs, 0), max(c.BusyMs, 0)
	b, _ := json.Marshal(c)
	return string(b)
}
