package host

import (
	"context"
	"sync"
	"time"

	"github.com/geckohost/geckohost/domain"
)

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
func (l *memLimiter) Reserve(_ context.Context, tok domain.Token, _ string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if tok.MaxWorkers > 0 && l.live[tok.ID] >= tok.MaxWorkers {
		return domain.MaxWorkersError(tok)
	}
	if ok, wait := l.rate.allow(tok.ID, tok.Rate, l.now()); !ok {
		return domain.RateLimitError(tok, wait)
	}
	l.live[tok.ID]++
	return nil
}

// Release implements Limiter.
func (l *memLimiter) Release(tok domain.Token, _ string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.live[tok.ID]--; l.live[tok.ID] <= 0 {
		delete(l.live, tok.ID)
	}
}
