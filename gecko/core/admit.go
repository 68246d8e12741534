package core

import (
	"context"
	"fmt"

	"github.com/geckohost/geckohost/engine"
)

// AdmitSlot is one browser slot of a pool as its StartWorker and Ready
// see it; the pool's lock is held while they ask.
type AdmitSlot interface {
	// Current reports whether the slot runs a browser now, whether that
	// browser has its first page loaded, and how many workers it runs.
	Current() (up, ready bool, live int)
	// Holds reports whether the slot's browser holds token's context (its
	// storage).
	Holds(token int64) bool
}

// Admission is the state of a pool that StartWorker checks before it
// reserves a place.
type Admission struct {
	// Engine names the pool in the 301 before Start ("gecko").
	Engine string
	// Started and Closed: Start and Close were called.
	Started, Closed bool
	// MaxWorkers is the pool's MaxWorkersPerBrowser.
	MaxWorkers int
}

// Admit returns the slot to start token's worker in: the one whose
// browser holds the token's context, else the least loaded running one
// with room. It fails with engine.ErrClosed (wrapped) after Close and with
// a 301 (engine.NoCapacity) before Start, when no browser runs, or when
// every one is full.
func Admit[S AdmitSlot](a Admission, slots []S, token int64) (S, error) {
	var none S
	if a.Closed {
		return none, fmt.Errorf("start worker: %w", engine.ErrClosed)
	}
	if !a.Started {
		return none, engine.NoCapacity("the %s pool is not started", a.Engine)
	}
	best, bestLive, found, anyUp := none, 0, false, false
	for _, s := range slots {
		up, _, live := s.Current()
		anyUp = anyUp || up
		if !up || live >= a.MaxWorkers {
			continue
		}
		if s.Holds(token) {
			return s, nil // the token's context (its storage) is here
		}
		if !found || live < bestLive {
			best, bestLive, found = s, live, true
		}
	}
	if found {
		return best, nil
	}
	if anyUp {
		return none, engine.NoCapacity("every browser runs %s (--max-workers-per-browser)", plural(a.MaxWorkers, "worker"))
	}
	return none, engine.NoCapacity("no browser is running (starting or restarting)")
}

// ReadyErrors are an engine's sentinel errors of its pool's Ready.
type ReadyErrors struct {
	// Closed after Close, NotStarted before Start.
	Closed, NotStarted error
	// NoBrowser while no browser runs, Warming while the running ones
	// load their first page.
	NoBrowser, Warming error
}

// Ready is a pool's Ready: nil once a slot's browser has its first worker
// page loaded (a new token's first hello then waits for no page load),
// else the error of errs that says why not.
func Ready[S AdmitSlot](a Admission, slots []S, errs ReadyErrors) error {
	switch {
	case a.Closed:
		return errs.Closed
	case !a.Started:
		return errs.NotStarted
	}
	err := errs.NoBrowser
	for _, s := range slots {
		switch up, ready, _ := s.Current(); {
		case up && ready:
			return nil
		case up:
			err = errs.Warming
		}
	}
	return err
}

// AwaitStart is the end of a pool's Start: it waits until the first
// browser is ready (ready is closed), or until each of the n slots'
// first launches failed (each sends its error on failed once), or ctx
// ends. It returns nil, or the first launch's error.
func AwaitStart(ctx context.Context, ready <-chan struct{}, failed <-chan error, n int) error {
	var first error
	for i := 0; ; {
		select {
		case <-ready:
			return nil
		case err := <-failed:
			if first == nil {
				first = err
			}
			if i++; i == n {
				return fmt.Errorf("start pool: %w", first)
			}
		case <-ctx.Done():
			return fmt.Errorf("start pool: %w", ctx.Err())
		}
	}
}

// plural is n and the noun, with an "s" unless n is 1: "1 worker", "2 workers".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
