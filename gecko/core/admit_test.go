package core

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/geckohost/geckohost/engine"
)

// fakeSlot is a slot with a browser (up) running live workers, holding
// the contexts of tokens.
type fakeSlot struct {
	up, ready bool
	live      int
	tokens    []int64
}

func (s *fakeSlot) Current() (bool, bool, int) { return s.up, s.ready, s.live }

func (s *fakeSlot) Holds(token int64) bool {
	for _, t := range s.tokens {
		if t == token {
			return true
		}
	}
	return false
}

// TestAdmit: a token goes where its context is, else to the least loaded
// running browser with room; the 301s say why none would do.
func TestAdmit(t *testing.T) {
	a := Admission{Engine: "gecko", Started: true, MaxWorkers: 2}
	busy := &fakeSlot{up: true, live: 1, tokens: []int64{7}}
	idle := &fakeSlot{up: true}
	full := &fakeSlot{up: true, live: 2, tokens: []int64{8}}
	down := &fakeSlot{}
	for _, c := range []struct {
		name  string
		a     Admission
		slots []*fakeSlot
		token int64
		want  *fakeSlot
		err   string
	}{
		{"its context", a, []*fakeSlot{idle, busy}, 7, busy, ""},
		{"least loaded", a, []*fakeSlot{busy, down, idle}, 9, idle, ""},
		{"its context is full", a, []*fakeSlot{full, busy}, 8, busy, ""},
		{"all full", a, []*fakeSlot{full, down}, 9, nil, "every browser runs 2 workers (--max-workers-per-browser)"},
		{"one worker", Admission{Started: true, MaxWorkers: 1}, []*fakeSlot{full}, 9, nil, "every browser runs 1 worker "},
		{"none up", a, []*fakeSlot{down}, 9, nil, "no browser is running (starting or restarting)"},
		{"not started", Admission{Engine: "chromium"}, []*fakeSlot{idle}, 9, nil, "the chromium pool is not started"},
	} {
		got, err := Admit(c.a, c.slots, c.token)
		if c.err == "" {
			if err != nil || got != c.want {
				t.Errorf("%s: Admit = %v, %v", c.name, got, err)
			}
			continue
		}
		var e *engine.Error
		if !errors.As(err, &e) || e.Errno != engine.NoGeckoAvailable || !strings.Contains(e.Reason, c.err) || got != nil {
			t.Errorf("%s: Admit = %v, %v; want a 301 %q", c.name, got, err, c.err)
		}
	}
	if _, err := Admit(Admission{Started: true, Closed: true}, []*fakeSlot{idle}, 1); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("closed: Admit err = %v, want engine.ErrClosed", err)
	}
}

// TestReady: Ready says why no browser is ready.
func TestReady(t *testing.T) {
	errs := ReadyErrors{Closed: errors.New("closed"), NotStarted: errors.New("not started"),
		NoBrowser: errors.New("no browser"), Warming: errors.New("warming")}
	on := Admission{Started: true}
	for _, c := range []struct {
		a     Admission
		slots []*fakeSlot
		want  error
	}{
		{Admission{Started: true, Closed: true}, nil, errs.Closed},
		{Admission{}, nil, errs.NotStarted},
		{on, []*fakeSlot{{}}, errs.NoBrowser},
		{on, []*fakeSlot{{}, {up: true}}, errs.Warming},
		{on, []*fakeSlot{{up: true}, {up: true, ready: true}}, nil},
	} {
		if got := Ready(c.a, c.slots, errs); got != c.want {
			t.Errorf("Ready(%+v) = %v, want %v", c.a, got, c.want)
		}
	}
}

// TestAwaitStart: Start returns at the first ready browser, or with the
// first error once every launch failed.
func TestAwaitStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first := errors.New("first")
	failed := make(chan error, 2)
	failed <- first
	failed <- errors.New("second")
	if err := AwaitStart(ctx, nil, failed, 2); !errors.Is(err, first) {
		t.Errorf("AwaitStart = %v, want the first launch's error", err)
	}
	ready := make(chan struct{})
	close(ready)
	if err := AwaitStart(ctx, ready, make(chan error), 2); err != nil {
		t.Errorf("AwaitStart (ready) = %v", err)
	}
}
