package core

import "testing"

type fakePage struct {
	workers int
	closing bool
}

func (pg *fakePage) Reserved() int { return pg.workers }
func (pg *fakePage) Closing() bool { return pg.closing }

// TestPlaces: placed, free places and the first free page skip closing
// pages.
func TestPlaces(t *testing.T) {
	full, closing, half := &fakePage{workers: 4}, &fakePage{workers: 1, closing: true}, &fakePage{workers: 2}
	pages := []*fakePage{full, closing, half}
	if n := Placed(pages); n != 7 {
		t.Errorf("Placed = %d, want 7", n)
	}
	if n := Free(pages, 4); n != 2 {
		t.Errorf("Free = %d, want 2", n)
	}
	if pg, ok := FreePage(pages, 4); !ok || pg != half {
		t.Errorf("FreePage = %v %v, want the half-full page", pg, ok)
	}
	if _, ok := FreePage(pages[:2], 4); ok {
		t.Error("FreePage found a place in full and closing pages")
	}
}

// TestShellConfigJSON: the JSON gh.init gets, as each engine sent it
// before core had it (Firefox's without an engine key).
func TestShellConfigJSON(t *testing.T) {
	for _, c := range []struct {
		cfg  ShellConfig
		want string
	}{
		{ShellConfig{Loopback: true, IdleMs: 600000, BusyMs: -1, Warm: 2, Capacity: 50},
			`{"loopback":true,"idleMs":600000,"busyMs":0,"warm":2,"capacity":50}`},
		{ShellConfig{Engine: "chromium", IceServers: []string{"stun:192.0.2.1"}, Warm: 1, Capacity: 50},
			`{"engine":"chromium","iceServers":["stun:192.0.2.1"],"loopback":false,"idleMs":0,"busyMs":0,"warm":1,"capacity":50}`},
	} {
		if got := c.cfg.JSON(); got != c.want {
			t.Errorf("JSON = %s, want %s", got, c.want)
		}
	}
}
