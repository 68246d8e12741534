package core

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/gecko/egress"
)

// Timeouts of a worker's calls into its page, the same in both engines.
const (
	// CallTimeout bounds a call into the page (candidates, quiesce).
	CallTimeout = 10 * time.Second
	// StartTimeout bounds gh.start: the host's 302 comes first, this is
	// only a backstop.
	StartTimeout = 40 * time.Second
	// stopTimeout bounds gh.close at the worker's end.
	stopTimeout = 5 * time.Second
	// lostWait is how long a worker whose browser connection broke waits
	// for the supervisor to notice the browser's death.
	lostWait = 2 * time.Second
	// orderlyCloseTimeout bounds a connected worker's orderly end (the
	// page's quiet wait, the worker's close and the channel's drain);
	// past it the worker is closed at once.
	orderlyCloseTimeout = 7 * time.Second
)

// ShellEvent is the JSON the shell page sends on its channel (and returns
// from gh.start).
type ShellEvent struct {
	ID     string             `json:"id"`
	T      string             `json:"t"`
	N      int                `json:"n"`
	SDP    string             `json:"sdp"`
	Errno  int                `json:"errno"`
	Reason string             `json:"reason"`
	Detail string             `json:"detail"`
	C      *engine.Candidate  `json:"c"`
	Msg    string             `json:"msg"`
	TM     map[string]float64 `json:"tm"`
}

// Driver is what a worker needs of its engine: its place in a shell page
// and the calls into that page, in the engine's protocol (BiDi or CDP).
// Every method but AddCandidates is called from the worker's run
// goroutine.
type Driver interface {
	// Place gets the worker a place in a page of its token (waiting for,
	// or loading, one when every page is full) and returns the egress
	// identity of the page's context (nil if it has none).
	Place(ctx context.Context) (*egress.Identity, error)
	// Start calls gh.start(id, code, url, offer, ice) in the worker's
	// page and returns its result: a ShellEvent's JSON.
	Start(ctx context.Context, offer, ice string) (string, error)
	// StartError returns the reason of a start the page failed with
	// errno (the Chromium engine adds a 202's position).
	StartError(errno engine.Errno, reason string) string
	// AddCandidatesJSON calls gh.addCandidates(id, cs) with the candidates'
	// JSON; it fails before the worker has a page.
	AddCandidatesJSON(ctx context.Context, cs string) error
	// Quiesce calls gh.quiesce(id, reason) and returns its result; false
	// (and no error) while the worker has no page.
	Quiesce(ctx context.Context, reason engine.EndReason) (bool, error)
	// Stop calls gh.close(id); nil while the worker has no page.
	Stop(ctx context.Context) error
	// ConnLost reports whether err, of a call into the page, means the
	// connection to the browser is gone (or whether it is gone anyway).
	ConnLost(err error) bool
	// DoneNegotiating takes the worker out of its browser's count of
	// negotiating workers (once) and lets page refills go on.
	DoneNegotiating()
	// Release gives the worker's place back (its page's, its token's and
	// its browser's counts) at its end.
	Release()
}

// WorkerOptions configure a Worker.
type WorkerOptions struct {
	// Request is the worker's request.
	Request engine.WorkerRequest
	// Log gets the worker's logs.
	Log *slog.Logger
	// ICELoopback: the worker takes and gives loopback candidates only.
	ICELoopback bool
	// MaxLifetime is the pool's WorkerMaxLifetime (0 or negative: none);
	// Request.Limits.Lifetime overrides it.
	MaxLifetime time.Duration
	// Dead is closed when the worker's browser is gone.
	Dead <-chan struct{}
	// Abandon is closed when the pool's Close gives up waiting for the
	// readers of events.
	Abandon <-chan struct{}
}

// pageMsg is one event of a worker's page.
type pageMsg struct {
	ev        ShellEvent // from the shell's channel
	destroyed bool       // the page's tab is gone
}

// Worker is one worker in a shell page, whatever drives the browser; it
// implements engine.Worker. Its Run goroutine drives it from reservation
// to its end and is the only sender on Events.
type Worker struct {
	d    Driver
	opts WorkerOptions
	req  engine.WorkerRequest
	log  *slog.Logger

	events    chan engine.Event
	inSig     chan struct{} // "inbox changed"
	closeCh   chan struct{} // closed by requestClose
	closeOnce sync.Once
	done      chan struct{} // closed when the worker is gone

	mu     sync.Mutex // guards inbox, reason, detail and lost
	inbox  []pageMsg
	reason engine.EndReason // why close was requested
	detail string           // the end's detail (a limit's value)
	lost   bool             // its content process died: its page is gone

	// Owned by the run goroutine.
	ident       *egress.Identity // its context's egress identity, once it has a page
	refusedBase int64            // ident.Refused() when the worker started
	dropOrigin  func()           // ends the egress allowance of the worker's source origin
	pageEnded   bool             // the page ended the worker itself
	created     time.Time
	startSent   time.Time // when the start call was sent (debug timing)
	wg          sync.WaitGroup
}

// NewWorker returns the worker of opts.Request, driven through d; nothing
// runs until Run.
func NewWorker(opts WorkerOptions, d Driver) *Worker {
	return &Worker{
		d: d, opts: opts, req: opts.Request, log: opts.Log,
		created: time.Now(),
		events:  make(chan engine.Event, 32),
		inSig:   make(chan struct{}, 1),
		done:    make(chan struct{}),
		closeCh: make(chan struct{}),
	}
}

// Events implements engine.Worker.
func (w *Worker) Events() <-chan engine.Event { return w.events }

// AddCandidates implements engine.Worker: one browser call hands the
// candidates to the worker's peer connection. In ICELoopback mode
// non-loopback candidates are left out.
func (w *Worker) AddCandidates(ctx context.Context, cs []engine.Candidate) error {
	if w.opts.ICELoopback {
		cs = LoopbackCandidates(cs)
	}
	if len(cs) == 0 {
		return nil
	}
	b, err := json.Marshal(cs)
	if err != nil {
		return fmt.Errorf("encode client candidates: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	if err := w.d.AddCandidatesJSON(cctx, string(b)); err != nil {
		return fmt.Errorf("add client candidates: %w", err)
	}
	return nil
}

// Close implements engine.Worker.
func (w *Worker) Close(ctx context.Context) error {
	w.RequestClose(engine.EndClosed)
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close worker: %w", ctx.Err())
	}
}

// RequestClose asks the run goroutine to end the worker; the first
// reason wins.
func (w *Worker) RequestClose(reason engine.EndReason) { w.requestCloseWith(reason, "", false) }

// Lose ends a worker whose content process died (or was killed for a
// limit): at once, its page is gone.
func (w *Worker) Lose(reason engine.EndReason, detail string) {
	w.requestCloseWith(reason, detail, true)
}

func (w *Worker) requestCloseWith(reason engine.EndReason, detail string, lost bool) {
	w.closeOnce.Do(func() {
		w.mu.Lock()
		w.reason, w.detail, w.lost = reason, detail, lost
		w.mu.Unlock()
		close(w.closeCh)
	})
}

// closeReason is the reason of a requested close ("" if none).
func (w *Worker) closeReason() engine.EndReason {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reason
}

// pageLost reports whether the worker's content process died.
func (w *Worker) pageLost() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lost
}

// Deliver queues an event of the worker's page (it runs on the
// protocol's read loop and never blocks).
func (w *Worker) Deliver(e ShellEvent) { w.queue(pageMsg{ev: e}) }

// PageDestroyed queues the end of the worker's page (its tab is gone).
func (w *Worker) PageDestroyed() { w.queue(pageMsg{destroyed: true}) }

func (w *Worker) queue(m pageMsg) {
	w.mu.Lock()
	w.inbox = append(w.inbox, m)
	w.mu.Unlock()
	select {
	case w.inSig <- struct{}{}:
	default:
	}
}

func (w *Worker) emit(ev engine.Event) {
	select {
	case w.events <- ev:
	case <-w.opts.Abandon:
	}
}

// Run drives the worker from reservation to its end; it returns once the
// worker is gone (its last event sent, Events closed).
func (w *Worker) Run() {
	ctx, cancel := context.WithCancel(context.Background())
	// The worker's lifetime is kept here, in Go: it outlives its page.
	lifetime := w.opts.MaxLifetime
	if l := w.req.Limits.Lifetime; l != 0 {
		lifetime = l
	}
	var expire <-chan time.Time
	if lifetime > 0 {
		t := time.NewTimer(lifetime)
		defer t.Stop()
		expire = t.C
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		select {
		case <-w.closeCh:
		case <-w.opts.Dead:
		case <-w.done:
		case <-expire:
			w.log.Debug("worker reached its lifetime", "lifetime", lifetime)
			// An orderly end: relay quiesces a connected worker.
			w.requestCloseWith(engine.EndLifetime, "after its maximum lifetime of "+lifetime.String(), false)
		}
		cancel()
	}()
	end := w.negotiate(ctx)
	w.finish(end)
	cancel()
	w.wg.Wait()
}

func (w *Worker) dead() bool {
	select {
	case <-w.opts.Dead:
		return true
	default:
		return false
	}
}

// ended returns the EventEnded for reason.
func ended(reason engine.EndReason, detail string) engine.Event {
	return engine.Event{Kind: engine.EventEnded, Reason: reason, Detail: detail}
}

// failedWith returns the EventEnded of a worker that failed with e.
func failedWith(e *engine.Error) engine.Event {
	return engine.Event{Kind: engine.EventEnded, Reason: engine.EndError, Err: e}
}

// failure maps an error of a browser call to the event that ends the worker.
func (w *Worker) failure(what string, err error) engine.Event {
	if w.d.ConnLost(err) {
		select {
		case <-w.closeCh:
			return w.closedEvent()
		default:
		}
		// The connection is gone: the browser died (or is being killed);
		// the supervisor notices it a moment later.
		t := time.NewTimer(lostWait)
		select {
		case <-w.opts.Dead:
		case <-t.C:
		}
		t.Stop()
		return ended(engine.EndBrowserDied, "while "+what)
	}
	if w.dead() {
		return ended(engine.EndBrowserDied, "while "+what)
	}
	select {
	case <-w.closeCh:
		return w.closedEvent()
	default:
	}
	w.log.Warn("worker failed", "while", what, "err", err)
	return failedWith(engine.Errorf(engine.NoGeckoAvailable, "%s: %v", what, err))
}

// closedEvent is the end of a worker whose close was requested.
func (w *Worker) closedEvent() engine.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	return ended(w.reason, w.detail)
}
