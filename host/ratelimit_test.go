package host_test

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/host"
)

// testClock is a settable clock for the rate limiter.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// withClock installs a test clock in h's server.
func (h *harness) withClock() *testClock {
	c := &testClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	host.SetClock(h.srv, c.now)
	return c
}

// connect runs one session that must connect and returns its worker.
func (h *harness) connect(secret string) *fakeWorker {
	h.t.Helper()
	c := h.hello(secret)
	if m := c.read(); m["action"] != "worker-hello" {
		h.t.Fatalf("got %v, want worker-hello", m)
	}
	for range 2 {
		c.read()
	}
	c.expectClose(websocket.StatusNormalClosure)
	return h.nextWorker()
}

// refused runs one session that must get a 105 containing reason, and
// checks its record.
func (h *harness) refused(secret, reason string) {
	h.t.Helper()
	c := h.hello(secret)
	id := c.expectError(engine.LimitReached, reason)
	s := h.session(id.(string), ended)
	if s.Errno != int(engine.LimitReached) || s.Reason == "" || s.TokenName == "" || s.EndReason != "error" {
		h.t.Fatalf("record %+v", s)
	}
}

func TestRateLimit(t *testing.T) {
	h := newHarness(t, nil, nil)
	clk := h.withClock()
	secret := h.token(domain.NewToken{Name: "ci", Rate: domain.Rate{Count: 3, Window: time.Minute}})
	for range 3 {
		h.connect(secret)
		clk.add(20 * time.Second)
	}
	// Starts at 0, 20 s and 40 s; now 60 s: the first has just left the
	// window.
	h.connect(secret)
	clk.add(5 * time.Second) // 65 s: starts at 20, 40, 60; next at 80
	h.refused(secret, `token "ci" reached its rate limit of 3 workers per 1m0s; next in 15s`)
	clk.add(15*time.Second - time.Millisecond)
	h.refused(secret, "next in 1ms")
	clk.add(time.Millisecond)
	h.connect(secret)
	// Refused hellos were not counted: at 80 s the starts are 40, 60, 80.
	clk.add(time.Second)
	h.refused(secret, "next in 19s")
	if strings.Contains(h.logs.String(), secret) {
		t.Error("the logs show the secret")
	}
}

func TestRateLimitUnlimitedToken(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.withClock()
	free := h.token(domain.NewToken{Name: "free"})
	limited := h.token(domain.NewToken{Name: "one", Rate: domain.Rate{Count: 1, Window: time.Hour}})
	h.connect(limited)
	h.refused(limited, `token "one" reached its rate limit of 1 worker per 1h0m0s; next in 1h0m0s`)
	for range 10 {
		h.connect(free)
	}
}

// TestRateLimitCountsOnlyCheckedHellos: hellos refused by the source check
// or the concurrent limit do not use the rate.
func TestRateLimitCountsOnlyCheckedHellos(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.withClock()
	secret := h.token(domain.NewToken{Name: "both", MaxWorkers: 1, Rate: domain.Rate{Count: 2, Window: time.Minute}})

	c := h.dial(nil)
	c.send(hello("Bearer "+secret, "http://elsewhere.example/w.js"))
	c.expectError(engine.SourceNotAllowed, "not allowed")

	w := h.connect(secret) // rate 1 of 2, concurrent 1 of 1
	h.refused(secret, "maximum of 1 concurrent worker")
	h.refused(secret, "maximum of 1 concurrent worker")
	h.emit(w, engine.Event{Kind: engine.EventEnded, Reason: "worker-closed"})
	h.session(w.req.WorkerID, ended)
	var w2 *fakeWorker
	eventually(t, h.ctx, "the worker count released", func() error {
		c := h.hello(secret)
		defer c.c.CloseNow()
		if m := c.read(); m["action"] != "worker-hello" {
			return fmt.Errorf("got %v", m)
		}
		for range 2 {
			c.read()
		}
		c.expectClose(websocket.StatusNormalClosure) // connected: the worker lives on
		w2 = h.nextWorker()
		return nil
	}) // rate 2 of 2
	h.emit(w2, engine.Event{Kind: engine.EventEnded, Reason: "worker-closed"})
	h.session(w2.req.WorkerID, ended)
	eventually(t, h.ctx, "the worker count released", func() error {
		c := h.hello(secret)
		defer c.c.CloseNow()
		m := c.read()
		if m["errno"] != float64(engine.LimitReached) || !strings.Contains(fmt.Sprint(m["reason"]), "rate limit of 2 workers per 1m0s; next in 1m0s") {
			return fmt.Errorf("got %v", m)
		}
		return nil
	})
}

// TestRateLimitForgetsIdleTokens: the limiter drops the starts of tokens
// idle for longer than their window.
func TestRateLimitForgetsIdleTokens(t *testing.T) {
	h := newHarness(t, nil, nil)
	clk := h.withClock()
	a := h.token(domain.NewToken{Name: "a", Rate: domain.Rate{Count: 5, Window: time.Second}})
	b := h.token(domain.NewToken{Name: "b", Rate: domain.Rate{Count: 5, Window: time.Hour}})
	free := h.token(domain.NewToken{Name: "free"})
	h.connect(a)
	h.connect(b)
	if n := host.RateEntries(h.srv); n != 2 {
		t.Fatalf("%d rate entries, want 2", n)
	}
	clk.add(2 * time.Minute)
	h.connect(free) // any hello passing the checks sweeps now and then
	if n := host.RateEntries(h.srv); n != 1 {
		t.Fatalf("%d rate entries after a's window, want 1 (b's)", n)
	}
	clk.add(time.Hour)
	h.connect(free)
	if n := host.RateEntries(h.srv); n != 0 {
		t.Fatalf("%d rate entries after b's window, want 0", n)
	}
}

// TestRateLimitConcurrent: of many simultaneous hellos exactly Count start.
func TestRateLimitConcurrent(t *testing.T) {
	h := newHarness(t, nil, nil)
	secret := h.token(domain.NewToken{Name: "burst", Rate: domain.Rate{Count: 5, Window: time.Hour}})
	const n = 16
	var ok, limited atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _, err := websocket.Dial(h.ctx, h.url, nil)
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			defer c.CloseNow()
			if err := c.Write(h.ctx, websocket.MessageText, []byte(mustJSON(hello("Bearer "+secret, h.demo)))); err != nil {
				t.Errorf("write: %v", err)
				return
			}
			_, b, err := c.Read(h.ctx)
			switch {
			case err != nil:
				t.Errorf("read: %v", err)
			case strings.Contains(string(b), `"worker-hello"`):
				ok.Add(1)
			case strings.Contains(string(b), `"errno":105`):
				limited.Add(1)
			default:
				t.Errorf("frame %s", b)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 5 || limited.Load() != n-5 {
		t.Fatalf("%d started, %d limited; want 5 and %d", ok.Load(), limited.Load(), n-5)
	}
}
