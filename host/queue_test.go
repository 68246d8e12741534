package host_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/host"
)

// capEngine is a fakeEngine with a capacity: StartWorker refuses with
// engine.NoCapacity while Cap workers live or while Down (a browser
// restarting). A worker's place is free before host reads its EventEnded,
// as in gecko.
type capEngine struct {
	*fakeEngine

	mu    sync.Mutex
	cap   int
	live  int
	down  bool
	tries int // StartWorker calls
	wg    sync.WaitGroup
}

func newCapEngine(capacity int) *capEngine {
	return &capEngine{fakeEngine: newFakeEngine(happyScript), cap: capacity}
}

func (e *capEngine) setDown(down bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.down = down
}

func (e *capEngine) StartWorker(ctx context.Context, req engine.WorkerRequest) (engine.Worker, error) {
	e.mu.Lock()
	e.tries++
	switch {
	case e.down:
		e.mu.Unlock()
		return nil, engine.NoCapacity("no browser is running (starting or restarting)")
	case e.live >= e.cap:
		e.mu.Unlock()
		return nil, engine.NoCapacity("every browser runs %d workers", e.cap)
	}
	e.live++
	e.mu.Unlock()
	w, err := e.fakeEngine.StartWorker(ctx, req)
	if err != nil {
		return nil, err
	}
	cw := &capWorker{Worker: w, events: make(chan engine.Event)}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer close(cw.events)
		for ev := range w.Events() {
			if ev.Kind == engine.EventEnded {
				e.mu.Lock()
				e.live--
				e.mu.Unlock()
			}
			cw.events <- ev
		}
	}()
	return cw, nil
}

type capWorker struct {
	engine.Worker
	events chan engine.Event
}

func (w *capWorker) Events() <-chan engine.Event { return w.events }

// queueHarness is a harness over a capEngine.
func queueHarness(t *testing.T, capacity int, tweak func(*host.Options)) (*harness, *capEngine) {
	t.Helper()
	eng := newCapEngine(capacity)
	t.Cleanup(eng.wg.Wait) // after the server's Shutdown (cleanups run last first)
	h := newHarness(t, nil, func(o *host.Options) {
		o.Engine = eng
		if tweak != nil {
			tweak(o)
		}
	})
	h.eng = eng.fakeEngine
	return h, eng
}

// status reads /status.
func (h *harness) status() host.Status {
	h.t.Helper()
	req, err := http.NewRequestWithContext(h.ctx, http.MethodGet, h.hs.URL+"/status", nil)
	if err != nil {
		h.t.Fatal(err)
	}
	res, err := h.hs.Client().Do(req)
	if err != nil {
		h.t.Fatalf("GET /status: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
		h.t.Fatalf("GET /status: %s %s", res.Status, res.Header.Get("Content-Type"))
	}
	var st host.Status
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		h.t.Fatalf("decode /status: %v", err)
	}
	return st
}

// waitDepth waits until n hellos are queued.
func (h *harness) waitDepth(n int) {
	h.t.Helper()
	eventually(h.t, h.ctx, fmt.Sprintf("queue depth %d", n), func() error {
		if d := h.status().Queue.Depth; d != n {
			return fmt.Errorf("depth %d", d)
		}
		return nil
	})
}

// connectedClient reads worker-hello, the worker candidate and connected.
func (c *tclient) connected() {
	c.t.Helper()
	for _, want := range []string{"worker-hello", "worker-candidate", "connected"} {
		m := c.read()
		if got, _ := m["action"].(string); got != want && m["messageType"] != want {
			c.t.Fatalf("got %v, want %s", m, want)
		}
	}
	c.expectClose(websocket.StatusNormalClosure)
}

// TestQueueWaitsForCapacity: capacity 2, two held sessions; a third hello
// waits (its candidates kept) and connects when one of them ends.
func TestQueueWaitsForCapacity(t *testing.T) {
	h, _ := queueHarness(t, 2, func(o *host.Options) { o.QueueTimeout = time.Minute })
	secret := h.token(domain.NewToken{})
	var held []*fakeWorker
	for range 2 {
		h.hello(secret).connected()
		held = append(held, h.nextWorker())
	}
	third := h.hello(secret)
	third.send(cand("candidate:queued"))
	h.waitDepth(1)
	if st := h.status(); st.Sessions.Negotiating != 1 || st.Sessions.Connected != 2 {
		t.Fatalf("sessions %+v, want 1 negotiating and 2 connected", st.Sessions)
	}
	h.emit(held[0], engine.Event{Kind: engine.EventEnded, Reason: engine.EndPeerClosed})
	third.connected()
	w := h.nextWorker()
	eventually(t, h.ctx, "the queued candidate applied", func() error {
		got, _ := w.Added()
		if len(got) != 1 || got[0].Candidate != "candidate:queued" {
			return fmt.Errorf("added %+v", got)
		}
		return nil
	})
	h.waitDepth(0)
}

// TestQueueTimeout: with every place held, a hello times out with 301
// after QueueTimeout, and its record says so.
func TestQueueTimeout(t *testing.T) {
	h, _ := queueHarness(t, 1, func(o *host.Options) { o.QueueTimeout = 500 * time.Millisecond })
	secret := h.token(domain.NewToken{})
	h.hello(secret).connected()
	_ = h.nextWorker()
	late := h.hello(secret)
	t0 := time.Now()
	id := late.expectError(engine.NoGeckoAvailable, "waited 500ms in the queue (--queue-timeout)")
	if d := time.Since(t0); d < 400*time.Millisecond {
		t.Errorf("301 after %v, before the queue timeout", d)
	}
	s := h.session(id.(string), ended)
	if s.Errno != int(engine.NoGeckoAvailable) || s.EndReason != "error" {
		t.Fatalf("record %+v", s)
	}
	h.waitDepth(0)
}

// TestQueueFull: past QueueSize waiting, a hello is refused at once, with
// a reason saying so; a queued client that leaves frees its place at once.
func TestQueueFull(t *testing.T) {
	h, _ := queueHarness(t, 1, func(o *host.Options) { o.QueueSize = 1; o.QueueTimeout = time.Minute })
	secret := h.token(domain.NewToken{})
	h.hello(secret).connected()
	heldW := h.nextWorker()
	waiting := h.hello(secret)
	h.waitDepth(1)
	h.hello(secret).expectError(engine.NoGeckoAvailable, "the queue is full (1 hello waiting, --queue-size)")

	// The waiting client leaves: its place is free for the next one.
	_ = waiting.c.CloseNow()
	h.waitDepth(0)
	next := h.hello(secret)
	h.waitDepth(1)
	h.emit(heldW, engine.Event{Kind: engine.EventEnded, Reason: engine.EndIdle})
	next.connected()
	left := h.session(h.nextWorker().req.WorkerID, func(s domain.Session) bool { return s.State == "connected" })
	if left.Errno != 0 {
		t.Fatalf("record %+v", left)
	}
	// The client that left is recorded "client-left" (it never had a worker).
	eventually(t, h.ctx, "the left client's record", func() error {
		ss, err := h.db.ListSessions(h.ctx, domain.SessionFilter{Limit: 10})
		if err != nil {
			return err
		}
		for _, s := range ss {
			if s.EndReason == "client-left" && s.Connected.IsZero() && s.Errno == 0 {
				return nil
			}
		}
		return fmt.Errorf("no client-left record in %+v", ss)
	})
}

// TestQueueFairness: with one place, a token with 50 queued hellos delays
// another token's single hello (queued after them) by at most one place.
func TestQueueFairness(t *testing.T) {
	h, _ := queueHarness(t, 1, func(o *host.Options) { o.QueueTimeout = time.Minute })
	busy := h.token(domain.NewToken{Name: "busy"})
	other := h.token(domain.NewToken{Name: "other"})
	h.hello(busy).connected()
	current := h.nextWorker()
	var clients []*tclient
	for range 50 {
		clients = append(clients, h.hello(busy))
	}
	h.waitDepth(50)
	clients = append(clients, h.hello(other))
	h.waitDepth(51)

	// Free the place one worker at a time and note whose worker starts.
	var order []string
	for len(order) < 3 {
		h.emit(current, engine.Event{Kind: engine.EventEnded, Reason: engine.EndIdle})
		current = h.nextWorker()
		order = append(order, current.req.TokenName)
	}
	t.Logf("start order after the first: %v", order)
	if i := slices.Index(order, "other"); i < 0 || i > 1 {
		t.Fatalf("the other token's hello started at place %d (%v), want at most 1", i, order)
	}
	for _, c := range clients {
		_ = c.c.CloseNow() // the queued ones leave at once
	}
	h.waitDepth(0)
}

// TestQueueCoversRestart: while the engine has no browser (a restart),
// hellos wait and connect once it is back, with no session ending to wake
// them (the queue retries by itself).
func TestQueueCoversRestart(t *testing.T) {
	h, eng := queueHarness(t, 10, nil)
	secret := h.token(domain.NewToken{})
	eng.setDown(true)
	var cs []*tclient
	for range 3 {
		cs = append(cs, h.hello(secret))
	}
	h.waitDepth(3)
	eng.setDown(false)
	for _, c := range cs {
		c.connected()
	}
	h.waitDepth(0)
}

// TestQueueShutdown: hellos still queued when the server stops get 304.
func TestQueueShutdown(t *testing.T) {
	h, eng := queueHarness(t, 1, func(o *host.Options) { o.QueueTimeout = time.Minute })
	secret := h.token(domain.NewToken{})
	eng.setDown(true)
	c := h.hello(secret)
	h.waitDepth(1)
	done := make(chan error, 1)
	go func() { done <- h.srv.Shutdown(h.ctx) }()
	c.expectError(engine.ShuttingDown, "shutting down")
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestNoQueue: with a negative QueueSize a capacity refusal is a 301 at
// once, with the engine's reason.
func TestNoQueue(t *testing.T) {
	h, eng := queueHarness(t, 1, func(o *host.Options) { o.QueueSize = -1 })
	secret := h.token(domain.NewToken{})
	eng.setDown(true)
	h.hello(secret).expectError(engine.NoGeckoAvailable, "no browser is running")
	if st := h.status(); st.Queue.Size != 0 {
		t.Fatalf("queue %+v", st.Queue)
	}
}
