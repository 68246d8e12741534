package host

import (
	"time"

	"github.com/geckohost/geckohost/domain"
)

// rateSweepEvery is how often (at most) the limiter drops the entries of
// tokens idle for longer than their window.
const rateSweepEvery = time.Minute

// rateLimiter enforces the tokens' domain.Rate limits with a sliding window:
// a token may start at most Count workers in any Window-long stretch of
// time; once it has, the next start is allowed when the oldest start in the
// window is Window old. It lives in memory only (a restarted serve starts
// every token afresh) and keeps, per token that started a worker within its
// window, the times of those starts (at most Count of them). Entries of
// tokens idle for longer than their window are dropped. It is not
// synchronized: memLimiter.mu guards it.
type rateLimiter struct {
	// base is the origin of the recorded offsets (keeps time.Now's
	// monotonic reading, 8 bytes a start).
	base      time.Time
	tokens    map[int64]*rateEntry
	lastSweep time.Time
}

// rateEntry is one token's recent starts.
type rateEntry struct {
	window time.Duration
	// starts are the start times (offsets from base) within the window,
	// oldest first.
	starts []time.Duration
}

func newRateLimiter(now time.Time) *rateLimiter {
	return &rateLimiter{base: now, tokens: make(map[int64]*rateEntry)}
}

// allow records a worker start for the token at now and returns true,
// unless the token's rate limit is reached; then it returns false and how
// long until the next start is allowed. A zero rate always allows, and is
// not recorded.
func (l *rateLimiter) allow(tokenID int64, r domain.Rate, now time.Time) (bool, time.Duration) {
	at := now.Sub(l.base)
	if now.Sub(l.lastSweep) >= rateSweepEvery {
		l.sweep(at)
		l.lastSweep = now
	}
	if r.IsZero() {
		return true, 0
	}
	e := l.tokens[tokenID]
	if e == nil {
		e = &rateEntry{}
		l.tokens[tokenID] = e
	}
	e.window = r.Window
	e.prune(at)
	if n := len(e.starts); n >= r.Count {
		// The start that must leave the window before one more fits.
		return false, e.starts[n-r.Count] + r.Window - at
	}
	e.starts = append(e.starts, at)
	return true, 0
}

// prune drops the starts that are at least a window old at time at.
func (e *rateEntry) prune(at time.Duration) {
	i := 0
	for i < len(e.starts) && at-e.starts[i] >= e.window {
		i++
	}
	if i == 0 {
		return
	}
	e.starts = e.starts[i:]
	if c := cap(e.starts); c > 64 && len(e.starts) < c/4 {
		e.starts = append([]time.Duration(nil), e.starts...) // give back a big burst's memory
	}
}

// sweep drops the entries of tokens with no start within their window.
func (l *rateLimiter) sweep(at time.Duration) {
	for id, e := range l.tokens {
		if n := len(e.starts); n == 0 || at-e.starts[n-1] >= e.window {
			delete(l.tokens, id)
		}
	}
}

// size returns how many tokens the limiter keeps starts for.
func (l *rateLimiter) size() int { return len(l.tokens) }
