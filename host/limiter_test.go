package host_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/host"
	"github.com/geckohost/geckohost/store"
)

// recLimiter is a Limiter that records its calls and fails with err.
type recLimiter struct {
	err error

	mu       sync.Mutex
	reserved []string
	released []string
}

func (l *recLimiter) Reserve(_ context.Context, tok domain.Token, workerID string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	l.reserved = append(l.reserved, tok.Name+"/"+workerID)
	return nil
}

func (l *recLimiter) Release(tok domain.Token, workerID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.released = append(l.released, tok.Name+"/"+workerID)
}

func (l *recLimiter) calls() (reserved, released []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.reserved...), append([]string(nil), l.released...)
}

// TestLimiterOption: Options.Limiter replaces the in-memory limits; it is
// given the session's worker id, and released once the session is over.
func TestLimiterOption(t *testing.T) {
	lim := &recLimiter{}
	h := newHarness(t, nil, func(o *host.Options) { o.Limiter = lim })
	secret := h.token(domain.NewToken{MaxWorkers: 1})
	w := h.connect(secret)
	h.connect(secret) // MaxWorkers 1 is the Limiter's business now
	if err := w.Close(h.ctx); err != nil {
		t.Fatal(err)
	}
	want := defaultTokenName + "/" + w.req.WorkerID
	eventually(t, h.ctx, "release", func() error {
		reserved, released := lim.calls()
		if len(reserved) != 2 || reserved[0] != want {
			return fmt.Errorf("reserved %v, want %s first", reserved, want)
		}
		if len(released) != 1 || released[0] != want {
			return fmt.Errorf("released %v, want [%s]", released, want)
		}
		return nil
	})
}

// TestLimiterErrors: a Limiter's *engine.Error is sent as is, any other
// failure as a 301; neither is released.
func TestLimiterErrors(t *testing.T) {
	for _, tc := range []struct {
		err    error
		errno  engine.Errno
		reason string
	}{
		{fmt.Errorf("reserve: %w", engine.Errorf(engine.NoGeckoAvailable, "cluster store unreachable")), engine.NoGeckoAvailable, "cluster store unreachable"},
		{domain.RateLimitError(domain.Token{Name: "x", Rate: domain.Rate{Count: 1, Window: 60e9}}, 3e9), engine.LimitReached, "next in 3s"},
		{errPlain, engine.NoGeckoAvailable, "could not be checked"},
	} {
		t.Run(tc.errno.String(), func(t *testing.T) {
			lim := &recLimiter{err: tc.err}
			h := newHarness(t, nil, func(o *host.Options) { o.Limiter = lim })
			c := h.hello(h.token(domain.NewToken{}))
			id := c.expectError(tc.errno, tc.reason)
			h.session(id.(string), ended)
			if _, released := lim.calls(); len(released) != 0 {
				t.Errorf("released %v after a refused reserve", released)
			}
			if len(h.eng.Workers()) != 0 {
				t.Error("a worker was started")
			}
		})
	}
}

// errStore fails every token lookup with err.
type errStore struct {
	*store.DB
	err error
}

func (s errStore) LookupToken(context.Context, string) (domain.Token, error) {
	return domain.Token{}, s.err
}

// TestLookupEngineError: a Store whose lookup fails with an *engine.Error
// in the chain chooses the client's error (cluster mode: 301 when Redis is
// unreachable); other failures stay a 102.
func TestLookupEngineError(t *testing.T) {
	for _, tc := range []struct {
		err    error
		errno  engine.Errno
		reason string
	}{
		{fmt.Errorf("look up token: %w", engine.Errorf(engine.NoGeckoAvailable, "cluster store unreachable")), engine.NoGeckoAvailable, "cluster store unreachable"},
		{errPlain, engine.InvalidToken, "internal error"},
	} {
		t.Run(tc.errno.String(), func(t *testing.T) {
			h := newHarness(t, nil, func(o *host.Options) { o.Store = errStore{DB: o.Store.(*store.DB), err: tc.err} })
			c := h.hello("gh_whatever")
			c.expectError(tc.errno, tc.reason)
		})
	}
}

// TestTokenMaxWorkers: a token without its own MaxWorkers holds at most
// Options.TokenMaxWorkers live workers (105 past it); a token's own limit
// overrides it.
func TestTokenMaxWorkers(t *testing.T) {
	h := newHarness(t, nil, func(o *host.Options) { o.TokenMaxWorkers = 2 })
	plain := h.token(domain.NewToken{Name: "plain"})
	own := h.token(domain.NewToken{Name: "own", MaxWorkers: 3})
	w := h.connect(plain)
	h.connect(plain)
	h.hello(plain).expectError(engine.LimitReached, "maximum of 2 concurrent workers")
	for range 3 {
		h.connect(own)
	}
	h.hello(own).expectError(engine.LimitReached, "maximum of 3 concurrent workers")
	if err := w.Close(h.ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, h.ctx, "a free place for plain", func() error {
		c := h.hello(plain)
		if m := c.read(); m["action"] != "worker-hello" {
			return fmt.Errorf("got %v", m)
		}
		return nil
	})
}
