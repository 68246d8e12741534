package host_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/geckohost/geckohost/engine"
)

// step is one scripted worker action: wait After, then emit Ev.
type step struct {
	After time.Duration
	Ev    engine.Event
}

// fakeEngine is a scriptable engine.Engine. Start decides what each
// StartWorker does: return an error, or a script of events for the new
// worker (the worker then waits for events from its Emit channel, or Close).
type fakeEngine struct {
	Start    func(ctx context.Context, req engine.WorkerRequest) ([]step, error)
	ReadyErr error

	mu      sync.Mutex
	workers []*fakeWorker
	started chan *fakeWorker // every started worker, buffered
}

var _ engine.Engine = (*fakeEngine)(nil)

func newFakeEngine(start func(ctx context.Context, req engine.WorkerRequest) ([]step, error)) *fakeEngine {
	return &fakeEngine{Start: start, started: make(chan *fakeWorker, 100)}
}

func (e *fakeEngine) Ready() error { return e.ReadyErr }

func (e *fakeEngine) StartWorker(ctx context.Context, req engine.WorkerRequest) (engine.Worker, error) {
	var script []step
	if e.Start != nil {
		var err error
		if script, err = e.Start(ctx, req); err != nil {
			return nil, err
		}
	}
	w := &fakeWorker{
		req:    req,
		script: script,
		events: make(chan engine.Event),
		Emit:   make(chan engine.Event),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go w.loop()
	e.mu.Lock()
	e.workers = append(e.workers, w)
	e.mu.Unlock()
	e.started <- w
	return w, nil
}

// Workers returns the workers started so far.
func (e *fakeEngine) Workers() []*fakeWorker {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*fakeWorker(nil), e.workers...)
}

// fakeWorker is a scripted engine.Worker; its goroutine ends when Close is
// called or the script emits EventEnded, and Close waits for it.
type fakeWorker struct {
	req    engine.WorkerRequest
	script []step
	events chan engine.Event
	// Emit sends an event from the test (after the script ran).
	Emit chan engine.Event

	mu          sync.Mutex
	added       []engine.Candidate
	addedEarly  bool // AddCandidates before the answer was emitted
	answered    bool
	closes      atomic.Int32
	stopOnce    sync.Once
	stop        chan struct{}
	done        chan struct{}
	endedReason string
}

func (w *fakeWorker) Events() <-chan engine.Event { return w.events }

func (w *fakeWorker) AddCandidates(ctx context.Context, cs []engine.Candidate) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.answered {
		w.addedEarly = true
	}
	w.added = append(w.added, cs...)
	return nil
}

func (w *fakeWorker) Close(ctx context.Context) error {
	w.closes.Add(1)
	w.stopOnce.Do(func() { close(w.stop) })
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Added returns the client candidates applied so far.
func (w *fakeWorker) Added() ([]engine.Candidate, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]engine.Candidate(nil), w.added...), w.addedEarly
}

// emit sends one event unless the worker is stopped; it reports whether the
// event was delivered.
func (w *fakeWorker) emit(ev engine.Event) bool {
	if ev.Kind == engine.EventAnswer {
		w.mu.Lock()
		w.answered = true
		w.mu.Unlock()
	}
	select {
	case w.events <- ev:
		return true
	case <-w.stop:
		return false
	}
}

func (w *fakeWorker) loop() {
	defer close(w.done)
	defer close(w.events)
	end := engine.Event{Kind: engine.EventEnded, Reason: "worker-closed"}
	for _, st := range w.script {
		if st.After > 0 {
			t := time.NewTimer(st.After)
			select {
			case <-t.C:
			case <-w.stop:
				t.Stop()
				w.sendEnd(end)
				return
			}
		}
		if st.Ev.Kind == engine.EventEnded {
			w.sendEnd(st.Ev)
			return
		}
		if !w.emit(st.Ev) {
			w.sendEnd(end)
			return
		}
	}
	for {
		select {
		case ev := <-w.Emit:
			if ev.Kind == engine.EventEnded {
				w.sendEnd(ev)
				return
			}
			if !w.emit(ev) {
				w.sendEnd(end)
				return
			}
		case <-w.stop:
			w.sendEnd(end)
			return
		}
	}
}

// sendEnd delivers the last event; host must read it, except after a
// Shutdown that ran out of time, so the wait is bounded.
func (w *fakeWorker) sendEnd(ev engine.Event) {
	w.mu.Lock()
	w.endedReason = string(ev.Reason)
	w.mu.Unlock()
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case w.events <- ev:
	case <-t.C:
	}
}

var errPlain = errors.New("plain engine failure")
