package core

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Refiller says how Refill pre-loads one browser's shell pages.
type Refiller struct {
	// Log receives a failed load (warning).
	Log *slog.Logger
	// Mu is the pool's lock, held while Next picks a load.
	Mu sync.Locker
	// Next picks the next page to load (the generic page while there is
	// none, then the next page of a token running out of places) and
	// returns the load, or nil when there is nothing to load now. It is
	// called with Mu held; the load runs without it.
	Next func() (load func() error)
	// Wake wakes Refill to look for a load at once; it also looks every
	// Hold/4.
	Wake <-chan struct{}
	Hold time.Duration
	// Dead is closed when the browser is gone: Refill returns.
	Dead <-chan struct{}
	// Backoff is the pause after a failed load.
	Backoff time.Duration
}

// Refill keeps loading the pages Next asks for, one at a time, until ctx
// ends (the pool closes) or the browser is gone.
func Refill(ctx context.Context, r Refiller) {
	for {
		r.Mu.Lock()
		load := r.Next()
		r.Mu.Unlock()
		if load == nil {
			t := time.NewTimer(r.Hold / 4)
			select {
			case <-r.Wake:
			case <-t.C:
			case <-r.Dead:
				t.Stop()
				return
			case <-ctx.Done():
				t.Stop()
				return
			}
			t.Stop()
			continue
		}
		if err := load(); err != nil {
			if IsClosed(r.Dead) || ctx.Err() != nil {
				return
			}
			r.Log.Warn("load a shell page", "err", err)
			if !Sleep(ctx, r.Backoff) {
				return
			}
		}
	}
}
