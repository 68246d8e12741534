package cluster_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/geckohost/geckohost/cluster"
	"github.com/geckohost/geckohost/engine"
)

// Fake worker behaviours, chosen per request by fakeEngine.Mode.
const (
	modeOK     = "ok"     // answer, one candidate, connected after a client candidate
	modeHang   = "hang"   // never answers
	modeSyntax = "syntax" // ends with a 202 before answering
)

// fakeEngine is an engine.Engine of capacity Capacity whose workers follow
// Mode. Its answers and candidates name the node.
type fakeEngine struct {
	node     string
	capacity int
	mode     func(req engine.WorkerRequest) string

	mu      sync.Mutex
	workers map[string]*fakeWorker
	started []engine.WorkerRequest
	dead    bool
}

func newFakeEngine(node string, capacity int) *fakeEngine {
	return &fakeEngine{node: node, capacity: capacity, workers: map[string]*fakeWorker{}}
}

func (e *fakeEngine) Ready() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.dead {
		return fmt.Errorf("dead")
	}
	return nil
}

func (e *fakeEngine) StartWorker(ctx context.Context, req engine.WorkerRequest) (engine.Worker, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.dead {
		return nil, fmt.Errorf("start worker: %w", engine.ErrClosed)
	}
	if len(e.workers) >= e.capacity {
		return nil, engine.NoCapacity("every browser runs %d workers (--max-workers-per-browser)", e.capacity)
	}
	mode := modeOK
	if e.mode != nil {
		mode = e.mode(req)
	}
	w := &fakeWorker{e: e, req: req, mode: mode, events: make(chan engine.Event), cands: make(chan []engine.Candidate, 16),
		stop: make(chan engine.EndReason, 1), done: make(chan struct{})}
	e.workers[req.WorkerID] = w
	e.started = append(e.started, req)
	go w.run()
	return w, nil
}

// Load is the engine's cluster.Load.
func (e *fakeEngine) Load() cluster.Load {
	e.mu.Lock()
	defer e.mu.Unlock()
	return cluster.Load{Browsers: 1, Workers: len(e.workers), Capacity: e.capacity}
}

// Live returns the number of live workers.
func (e *fakeEngine) Live() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.workers)
}

// Worker returns the live worker with this id, or nil.
func (e *fakeEngine) Worker(id string) *fakeWorker {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.workers[id]
}

// die ends every worker "browser-died" and refuses new ones.
func (e *fakeEngine) die() {
	e.mu.Lock()
	e.dead = true
	ws := make([]*fakeWorker, 0, len(e.workers))
	for _, w := range e.workers {
		ws = append(ws, w)
	}
	e.mu.Unlock()
	for _, w := range ws {
		w.end(engine.EndBrowserDied)
		<-w.done
	}
}

type fakeWorker struct {
	e      *fakeEngine
	req    engine.WorkerRequest
	mode   string
	events chan engine.Event
	cands  chan []engine.Candidate
	stop   chan engine.EndReason
	done   chan struct{}

	mu    sync.Mutex
	added []engine.Candidate
}

func (w *fakeWorker) end(r engine.EndReason) {
	select {
	case w.stop <- r:
	default:
	}
}

func (w *fakeWorker) run() {
	end := engine.Event{Kind: engine.EventEnded, Reason: engine.EndClosed}
	defer func() {
		w.e.mu.Lock()
		delete(w.e.workers, w.req.WorkerID)
		w.e.mu.Unlock()
		t := time.NewTimer(5 * time.Second) // bounded: a crashed node's relay reads no more
		select {
		case w.events <- end:
		case <-t.C:
		}
		t.Stop()
		close(w.events)
		close(w.done)
	}()
	switch w.mode {
	case modeSyntax:
		end = engine.Event{Kind: engine.EventEnded, Reason: engine.EndError,
			Err: engine.Errorf(engine.SyntaxErrorInWorkerCode, "SyntaxError: missing ) on %s", w.e.node)}
		return
	case modeHang:
		end.Reason = <-w.stop
		return
	}
	emit := func(ev engine.Event) bool {
		select {
		case w.events <- ev:
			return true
		case r := <-w.stop:
			end.Reason = r
			return false
		}
	}
	if !emit(engine.Event{Kind: engine.EventAnswer, Answer: "v=0 answer from " + w.e.node}) ||
		!emit(engine.Event{Kind: engine.EventCandidate, Candidate: engine.Candidate{Candidate: "candidate:" + w.e.node}}) {
		return
	}
	select {
	case <-w.cands:
	case r := <-w.stop:
		end.Reason = r
		return
	}
	if !emit(engine.Event{Kind: engine.EventConnected}) {
		return
	}
	if w.mode == modeShort {
		t := time.NewTimer(time.Second)
		defer t.Stop()
		select {
		case <-t.C:
			end.Reason = engine.EndWorkerClosed
		case end.Reason = <-w.stop:
		}
		return
	}
	end.Reason = <-w.stop
}

func (w *fakeWorker) Events() <-chan engine.Event { return w.events }

func (w *fakeWorker) AddCandidates(ctx context.Context, cs []engine.Candidate) error {
	w.mu.Lock()
	w.added = append(w.added, cs...)
	w.mu.Unlock()
	select {
	case w.cands <- cs:
	default:
	}
	return nil
}

// Added returns the client candidates the worker got.
func (w *fakeWorker) Added() []engine.Candidate {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]engine.Candidate(nil), w.added...)
}

func (w *fakeWorker) Close(ctx context.Context) error {
	w.end(engine.EndClosed)
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// workersList returns the live workers.
func (e *fakeEngine) workersList() []*fakeWorker {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*fakeWorker, 0, len(e.workers))
	for _, w := range e.workers {
		out = append(out, w)
	}
	return out
}
