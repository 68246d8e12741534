package core

import (
	"context"
	"log/slog"
	"time"
)

// End says why a browser's run ended.
type End int

const (
	// Died: the browser died (it is restarted after a backoff).
	Died End = iota
	// Closed: the pool is closing.
	Closed
	// Recycled: the browser is being replaced (RecycleBrowserAfter); a
	// new one is launched at once.
	Recycled
)

// Browser is a launched browser as Supervise sees it.
type Browser interface {
	// PID is the browser's process id (for the log).
	PID() int
}

// Supervisor says how Supervise restarts the browser of a slot whenever it
// dies or fails to start: with a backoff that doubles from BackoffMin up to BackoffMax and
// starts again from BackoffMin after a run longer than BackoffReset.
type Supervisor struct {
	// Name names the browser in log lines ("firefox").
	Name string
	// Log is the slot's logger.
	Log *slog.Logger
	// BackoffMin, BackoffMax and BackoffReset shape the backoff.
	BackoffMin, BackoffMax, BackoffReset time.Duration
	// Failed receives the error of the slot's first launch when it
	// failed before any launch of the slot succeeded (once at most).
	Failed chan<- error
}

// Supervise runs a browser slot until ctx ends or a run ends Closed:
// launch starts the slot's next browser, and serve puts it to work and
// returns why its run ended, once the engine has done what that end asks
// of it (stopped the browser, counted the restart, started its draining).
// An error of serve means the browser could not be set up (and was
// stopped): another is launched after a backoff.
func Supervise[B Browser](ctx context.Context, s Supervisor, launch func(context.Context) (B, error), serve func(B) (End, error)) {
	backoff := s.BackoffMin
	reported := false
	for {
		t0 := time.Now()
		br, err := launch(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.Log.Error(s.Name+" did not start", "err", err, "retry_in", backoff)
			if !reported {
				reported = true
				s.Failed <- err
			}
			if !Sleep(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, s.BackoffMax)
			continue
		}
		s.Log.Info(s.Name+" started", "pid", br.PID(), "took", time.Since(t0).Round(time.Millisecond))
		reported = true
		end, err := serve(br)
		if err != nil {
			if !Sleep(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, s.BackoffMax)
			continue
		}
		switch end {
		case Closed:
			return
		case Recycled:
			continue
		}
		if time.Since(t0) > s.BackoffReset {
			backoff = s.BackoffMin
		}
		s.Log.Info("restarting "+s.Name, "in", backoff)
		if !Sleep(ctx, backoff) {
			return
		}
		backoff = min(backoff*2, s.BackoffMax)
	}
}

// Watch is what Watch.Run follows of one running browser.
type Watch struct {
	// Name names the browser in log lines ("firefox"); Log is the slot's
	// logger.
	Name string
	Log  *slog.Logger
	// Done is closed when the browser died; Err says why.
	Done <-chan struct{}
	Err  func() error
	// Recycle asks for the browser's replacement.
	Recycle <-chan struct{}
	// Tidy removes idle token contexts: called every TokenIdle/4 (10 s at
	// most) and whenever Drop (nil: never) fires.
	Tidy      func()
	Drop      <-chan struct{}
	TokenIdle time.Duration
}

// Run waits until the browser dies, ctx ends (the pool closes) or the
// browser is to be replaced, tidying meanwhile.
func (w Watch) Run(ctx context.Context) End {
	tick := time.NewTicker(min(w.TokenIdle/4, 10*time.Second))
	defer tick.Stop()
	for {
		select {
		case <-w.Done:
			w.Log.Error(w.Name+" died", "err", w.Err())
			return Died
		case <-ctx.Done():
			return Closed
		case <-w.Recycle:
			return Recycled
		case <-w.Drop:
			w.Tidy()
		case <-tick.C:
			w.Tidy()
		}
	}
}

// Token is a token's context in one browser, as TakeIdle sees it.
type Token interface {
	// Busy reports whether the context runs workers or a page is being
	// made for it.
	Busy() bool
	// IdleSince is when its last worker ended.
	IdleSince() time.Time
}

// TakeIdle removes from tokens the contexts idle for at least idle and from
// *retired those no longer busy, and returns them (the tokens' first).
// Caller holds the pool's lock.
func TakeIdle[T Token](tokens map[int64]T, retired *[]T, idle time.Duration) []T {
	var drop []T
	for id, tc := range tokens {
		if !tc.Busy() && time.Since(tc.IdleSince()) >= idle {
			delete(tokens, id)
			drop = append(drop, tc)
		}
	}
	keep := (*retired)[:0]
	for _, tc := range *retired {
		if tc.Busy() {
			keep = append(keep, tc)
		} else {
			drop = append(drop, tc)
		}
	}
	clear((*retired)[len(keep):])
	*retired = keep
	return drop
}

// Sleep waits for d or until ctx ends; it reports whether d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Wake sends on ch (a channel of one place) unless a wake-up is pending.
func Wake(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// IsClosed reports whether ch is closed (or has a value ready).
func IsClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
