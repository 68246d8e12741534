package host

import (
	"context"
	"sync"
	"time"

	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/store"
)

// Limiter enforces the tokens' concurrent-worker limit (store.Token
// MaxWorkers) and rate limit (store.Token Rate). Options.Limiter nil means
// the in-memory one (this process's workers only); cluster mode gives one
// that every node shares.
type Limiter interface {
	// Reserve counts a live worker (workerID, chosen by host) for tok and
	// records its start against the token's rate limit, unless the token
	// is at its MaxWorkers or its Rate: then it returns a 105 *engine.Error
	// (MaxWorkersError, RateLimitError) and counts nothing. Any other
	// failure is an error; one wrapping an *engine.Error is sent to the
	// client as that error, any other as a 301.
	Reserve(ctx context.Context, tok store.Token, workerID string) error
	// Release ends the count Reserve made for workerID, once its session
	// is over. It does not block on the network.
	Release(tok store.Token, workerID string)
}

// MaxWorkersError is the 105 for a token at its concurrent-worker limit.
func MaxWorkersError(tok store.Token) *engine.Error {
	return engine.Errorf(engine.LimitReached, "token %q already has its maximum of %s", tok.Name, plural(tok.MaxWorkers, "concurrent worker"))
}

// memLimiter is the in-memory Limiter: live workers per token id and the
// sliding-window rate limiter.
type memLimiter struct {
	mu   sync.Mutex
	live map[int64]int    // live workers per token id
	rate *rateLimiter     // recent worker starts per token id
	now  func() time.Time // the rate limiter's clock (the server's)
}

func newMemLimiter(now func() time.Time) *memLimiter {
	return &memLimiter{live: make(map[int64]int), rate: newRateLimiter(time.Now()), now: now}
}

// Reserve implements Limiter.
func (l *memLimiter) Reserve(_ context.Context, tok store.Token, _ string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if tok.MaxWorkers > 0 && l.live[tok.ID] >= tok.MaxWorkers {
		return MaxWorkersError(tok)
	}
	if ok, wait := l.rate.allow(tok.ID, tok.Rate, l.now()); !ok {
		return RateLimitError(tok, wait)
	}
	l.live[tok.ID]++
	return nil
}

// Release implements Limiter.
func (l *memLimiter) Release(tok store.Token, _ string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.live[tok.ID]--; l.live[tok.ID] <= 0 {
		delete(l.live, tok.ID)
	}
}
