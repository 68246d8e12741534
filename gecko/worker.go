package gecko

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/geckohost/geckohost/gecko/bidi"
	"github.com/geckohost/geckohost/host/wire"
)

// End reasons reported in wire.Event.EndReason.
const (
	reasonWorkerClosed = "worker-closed"
	reasonPeerClosed   = "peer-closed"
	reasonIdle         = "idle"
	reasonClosed       = "closed"
	reasonShutdown     = "shutdown"
	reasonBrowserDied  = "browser-died"
	reasonTabClosed    = "tab-closed"
	reasonError        = "error"
)

// pageMsg is one event from a worker's page.
type pageMsg struct {
	ev        shellEvent // from the shell's channel
	destroyed bool       // the page's tab is gone
}

// shellEvent is the JSON the shell page sends on its channel.
type shellEvent struct {
	ID     string             `json:"id"`
	T      string             `json:"t"`
	N      int                `json:"n"`
	SDP    string             `json:"sdp"`
	Errno  int                `json:"errno"`
	Reason string             `json:"reason"`
	C      *wire.Candidate    `json:"c"`
	Msg    string             `json:"msg"`
	TM     map[string]float64 `json:"tm"`
}

// worker is one worker in a shell page; it implements wire.Worker.
type worker struct {
	p   *Pool
	b   *browser
	g   *generation
	tc  *tokenCtx
	req wire.WorkerRequest
	log *slog.Logger

	events chan wire.Event
	inSig  chan struct{}
	done   chan struct{}

	mu      sync.Mutex // guards the fields below
	inbox   []pageMsg
	ended   bool
	closeCh chan struct{}
	reason  string // why close was requested

	pg         *page // guarded by p.mu; nil until the worker has a place
	pageEnded  bool  // the page ended the worker itself (relay only)
	negotiated bool  // guarded by p.mu
	created    time.Time
	startSent  time.Time // when the start call was sent (debug timing)

	candQ   []wire.Candidate // guarded by mu
	candSig chan struct{}

	closeOnce sync.Once
	wg        sync.WaitGroup
}

func newWorker(p *Pool, b *browser, g *generation, tc *tokenCtx, pg *page, req wire.WorkerRequest) *worker {
	return &worker{
		p: p, b: b, g: g, tc: tc, req: req, pg: pg,
		log:     b.log.With("worker", req.WorkerID),
		created: time.Now(),
		events:  make(chan wire.Event, 32),
		inSig:   make(chan struct{}, 1),
		candSig: make(chan struct{}, 1),
		done:    make(chan struct{}),
		closeCh: make(chan struct{}),
	}
}

// Events implements wire.Worker.
func (w *worker) Events() <-chan wire.Event { return w.events }

// AddCandidate implements wire.Worker: it queues a client candidate for the
// worker's peer connection and returns; a sender applies queued candidates
// in order, several per browser round trip. In ICELoopback mode
// non-loopback candidates are ignored.
func (w *worker) AddCandidate(ctx context.Context, c wire.Candidate) error {
	if w.p.opts.ICELoopback && c.Candidate != "" && !loopbackCandidate(c.Candidate) {
		return nil
	}
	w.mu.Lock()
	ended := w.ended
	if !ended {
		w.candQ = append(w.candQ, c)
	}
	w.mu.Unlock()
	if !ended {
		select {
		case w.candSig <- struct{}{}:
		default:
		}
	}
	return nil
}

// sendCandidates applies queued client candidates until the worker ends.
func (w *worker) sendCandidates(ctx context.Context, tab string) {
	defer w.wg.Done()
	for {
		select {
		case <-w.candSig:
		case <-ctx.Done():
			return
		}
		w.mu.Lock()
		batch := w.candQ
		w.candQ = nil
		w.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		b, err := json.Marshal(batch)
		if err != nil {
			w.log.Debug("encode candidates", "err", err)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		_, err = w.g.ff.Conn().CallFunction(cctx, bidi.CallFunctionParams{
			FunctionDeclaration: "(id, cs) => gh.addCandidates(id, cs)",
			Context:             tab,
			Args:                []any{bidi.StringArg(w.req.WorkerID), bidi.StringArg(string(b))},
			AwaitPromise:        true,
		})
		cancel()
		if err != nil && ctx.Err() == nil {
			w.log.Debug("add client candidates", "err", err)
		}
	}
}

// Close implements wire.Worker.
func (w *worker) Close(ctx context.Context) error {
	w.requestClose(reasonClosed)
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close worker: %w", ctx.Err())
	}
}

func (w *worker) requestClose(reason string) {
	w.closeOnce.Do(func() {
		w.mu.Lock()
		w.reason = reason
		w.mu.Unlock()
		close(w.closeCh)
	})
}

func (w *worker) deliver(m pageMsg) {
	w.mu.Lock()
	w.inbox = append(w.inbox, m)
	w.mu.Unlock()
	select {
	case w.inSig <- struct{}{}:
	default:
	}
}

func (w *worker) emit(ev wire.Event) {
	select {
	case w.events <- ev:
	case <-w.p.abandon:
	}
}

// run drives the worker from reservation to its end.
func (w *worker) run() {
	defer w.p.workerWG.Done()
	ctx, cancel := context.WithCancel(context.Background())
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		select {
		case <-w.closeCh:
		case <-w.g.dead:
		case <-w.done:
		}
		cancel()
	}()
	end := w.negotiate(ctx)
	w.finish(end)
	cancel()
	w.wg.Wait()
}

func (w *worker) dead() bool {
	select {
	case <-w.g.dead:
		return true
	default:
		return false
	}
}

// failure maps an error of a browser call to the event that ends the worker.
func (w *worker) failure(what string, err error) wire.Event {
	lost := errors.Is(err, bidi.ErrClosed)
	if !lost {
		select {
		case <-w.g.ff.Conn().Done():
			lost = true
		default:
		}
	}
	if lost {
		select {
		case <-w.closeCh:
			return w.closedEvent(false)
		default:
		}
		// The BiDi connection is gone: the browser died (or is being
		// killed); the supervisor notices it a moment later.
		t := time.NewTimer(2 * time.Second)
		select {
		case <-w.g.dead:
		case <-t.C:
		}
		t.Stop()
		return wire.Event{Kind: wire.EventEnded, Err: wire.Errorf(wire.GeckoCrashed, "the browser died while %s", what), EndReason: reasonBrowserDied}
	}
	if w.dead() {
		return wire.Event{Kind: wire.EventEnded, Err: wire.Errorf(wire.GeckoCrashed, "the browser died while %s", what), EndReason: reasonBrowserDied}
	}
	select {
	case <-w.closeCh:
		return w.closedEvent(false)
	default:
	}
	w.log.Warn("worker failed", "while", what, "err", err)
	return wire.Event{Kind: wire.EventEnded, Err: wire.Errorf(wire.NoGeckoAvailable, "%s: %v", what, err), EndReason: reasonError}
}

func (w *worker) closedEvent(connected bool) wire.Event {
	w.mu.Lock()
	reason := w.reason
	w.mu.Unlock()
	if reason == reasonShutdown && !connected {
		return wire.Event{Kind: wire.EventEnded, Err: wire.Errorf(wire.ShuttingDown, "the host is shutting down"), EndReason: reasonShutdown}
	}
	return wire.Event{Kind: wire.EventEnded, EndReason: reason}
}

// negotiate gets a tab and the source, starts the worker and relays the
// page's events until the worker ends; it returns the EventEnded to send.
func (w *worker) negotiate(ctx context.Context) wire.Event {
	p := w.p
	type fetched struct {
		code string
		err  error
	}
	srcCh := make(chan fetched, 1)
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		code, err := p.fetch.Fetch(ctx, w.req.Source)
		srcCh <- fetched{code, err}
	}()

	pg, err := w.acquirePage(ctx)
	if err != nil {
		<-srcCh
		return w.failure("opening a worker page", err)
	}
	p.mu.Lock()
	w.g.byID[w.req.WorkerID] = w
	pg.ws[w.req.WorkerID] = w
	p.mu.Unlock()
	w.wg.Add(1)
	go w.sendCandidates(ctx, pg.tab)

	var src fetched
	select {
	case src = <-srcCh:
	case <-w.closeCh:
		<-srcCh
		return w.closedEvent(false)
	}
	if src.err != nil {
		var we *wire.Error
		if errors.As(src.err, &we) {
			if ctx.Err() != nil {
				return w.failure("fetching the worker source", src.err)
			}
			return wire.Event{Kind: wire.EventEnded, Err: we, EndReason: reasonError}
		}
		return w.failure("fetching the worker source", src.err)
	}
	// The call returns the answer (or the start's error); the host bounds
	// the wait for it (302), startTimeout is only a backstop.
	cctx, cancel := context.WithTimeout(ctx, startTimeout)
	w.startSent = time.Now()
	res, err := w.g.ff.Conn().CallFunction(cctx, bidi.CallFunctionParams{
		FunctionDeclaration: "(id, code, url, offer) => gh.start(id, code, url, offer)",
		Context:             pg.tab,
		Args:                []any{bidi.StringArg(w.req.WorkerID), bidi.StringArg(src.code), bidi.StringArg(w.req.Source), bidi.StringArg(w.req.Offer)},
		AwaitPromise:        true,
	})
	cancel()
	if err != nil {
		return w.failure("starting the worker", err)
	}
	var e shellEvent
	if raw, err := bidi.StringValue(res); err != nil || json.Unmarshal([]byte(raw), &e) != nil {
		return w.failure("starting the worker", fmt.Errorf("unexpected start result %s", res))
	}
	if e.T == "error" {
		w.pageEnded = true
		return wire.Event{Kind: wire.EventEnded, Err: &wire.Error{Errno: wire.Errno(e.Errno), Reason: e.Reason}, EndReason: reasonError}
	}
	if e.T == "answer" {
		w.answered(e)
	}
	return w.relay()
}

// acquirePage returns the page the worker has a place in, waiting for (or
// loading) a new page of its token when every page is full.
func (w *worker) acquirePage(ctx context.Context) (*page, error) {
	p, g, tc := w.p, w.g, w.tc
	for {
		p.mu.Lock()
		if pg := w.pg; pg != nil {
			p.mu.Unlock()
			return pg, nil
		}
		if pg := tc.freePage(); pg != nil {
			pg.workers++
			w.pg = pg
			p.mu.Unlock()
			return pg, nil
		}
		fut := tc.making
		mine := fut == nil
		if mine {
			fut = &pageFut{done: make(chan struct{})}
			tc.making = fut
		}
		p.mu.Unlock()
		if mine {
			w.log.Debug("no free page: loading one")
			_ = g.makeTokenPage(tc, fut)
		}
		select {
		case <-fut.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for a worker page: %w", ctx.Err())
		}
		if fut.err != nil {
			return nil, fut.err
		}
	}
}

// relay turns the page's events into wire events until the worker ends.
func (w *worker) relay() wire.Event {
	connected := false
	for {
		select {
		case <-w.inSig:
		case <-w.closeCh:
			return w.closedEvent(connected)
		case <-w.g.dead:
			if connected {
				return wire.Event{Kind: wire.EventEnded, EndReason: reasonBrowserDied}
			}
			return wire.Event{Kind: wire.EventEnded, Err: wire.Errorf(wire.GeckoCrashed, "the browser running the worker died"), EndReason: reasonBrowserDied}
		}
		w.mu.Lock()
		msgs := w.inbox
		w.inbox = nil
		w.mu.Unlock()
		for _, m := range msgs {
			e := m.ev
			if m.destroyed {
				w.pageEnded = true
				if w.dead() {
					continue
				}
				if connected {
					return wire.Event{Kind: wire.EventEnded, EndReason: reasonTabClosed}
				}
				return wire.Event{Kind: wire.EventEnded, Err: wire.Errorf(wire.GeckoCrashed, "the worker's tab was closed"), EndReason: reasonTabClosed}
			}
			switch e.T {
			case "answer":
				w.answered(e)
			case "cand":
				if e.C != nil {
					w.log.Debug("worker candidate", "candidate", e.C.Candidate)
					w.emit(wire.Event{Kind: wire.EventCandidate, Candidate: *e.C})
				}
			case "open":
				connected = true
				w.doneNegotiating()
				w.emit(wire.Event{Kind: wire.EventConnected})
			case "error":
				w.pageEnded = true
				return wire.Event{Kind: wire.EventEnded, Err: &wire.Error{Errno: wire.Errno(e.Errno), Reason: e.Reason}, EndReason: reasonError}
			case "end":
				w.pageEnded = true
				reason := e.Reason
				if reason == reasonClosed {
					reason = reasonPeerClosed
				}
				if !connected {
					if reason == reasonWorkerClosed {
						return wire.Event{Kind: wire.EventEnded, Err: wire.Errorf(wire.UncaughtExceptionInWorkerCode, "the worker closed itself before the data channel opened"), EndReason: reason}
					}
					// ICE or DTLS failed, or the peer closed: never connected.
					return wire.Event{Kind: wire.EventEnded, Err: wire.Errorf(wire.GeckoTimeout, "the worker's peer connection ended before the data channel opened (%s)", reason), EndReason: reason}
				}
				return wire.Event{Kind: wire.EventEnded, EndReason: reason}
			case "log":
				w.log.Debug("shell", "msg", e.Msg)
			}
		}
	}
}

// answered sends the worker's answer.
func (w *worker) answered(e shellEvent) {
	if e.TM != nil {
		now := float64(time.Now().UnixMilli())
		w.log.Debug("answer", "page_ms", e.TM,
			"start_to_page_ms", e.TM["entry"]-float64(w.startSent.UnixMilli()),
			"page_to_go_ms", now-e.TM["sent"],
			"since_startworker_ms", time.Since(w.created).Milliseconds())
	}
	w.emit(wire.Event{Kind: wire.EventAnswer, Answer: e.SDP})
}

// finish ends the worker in its page (the page stays), releases its place
// and sends the last event.
func (w *worker) finish(end wire.Event) {
	p, g, tc := w.p, w.g, w.tc
	w.mu.Lock()
	w.ended = true
	w.mu.Unlock()
	p.mu.Lock()
	pg := w.pg
	p.mu.Unlock()
	if pg != nil && !w.pageEnded && !w.dead() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := g.ff.Conn().CallFunction(ctx, bidi.CallFunctionParams{
			FunctionDeclaration: "(id) => { gh.close(id); }",
			Context:             pg.tab,
			Args:                []any{bidi.StringArg(w.req.WorkerID)},
		})
		if err != nil && !w.dead() {
			w.log.Debug("close worker", "err", err)
		}
		cancel()
	}
	w.doneNegotiating()
	var drop *page
	p.mu.Lock()
	if g.byID[w.req.WorkerID] == w {
		delete(g.byID, w.req.WorkerID)
	}
	if pg != nil {
		if pg.ws[w.req.WorkerID] == w {
			delete(pg.ws, w.req.WorkerID)
		}
		pg.workers--
		// An empty page beyond the token's first one is closed.
		if pg.workers == 0 && !pg.closing && pg.tc == tc && len(tc.pages) > 1 {
			pg.closing = true
			tc.removePage(pg)
			drop = pg
		}
	}
	g.live--
	g.maybeRecycle()
	tc.workers--
	if tc.workers == 0 {
		tc.idleSince = time.Now()
		if tc.retired {
			g.dropRetired()
		}
	}
	delete(p.workers, w)
	p.mu.Unlock()
	if drop != nil {
		p.dropPage(g, drop)
	}
	g.wake()
	if end.Err != nil {
		w.log.Debug("worker ended", "errno", int(end.Err.Errno), "reason", end.Err.Reason)
	} else {
		w.log.Debug("worker ended", "reason", end.EndReason)
	}
	w.emit(end)
	close(w.events)
	close(w.done)
}

// doneNegotiating lets refills go on once no worker negotiates.
func (w *worker) doneNegotiating() {
	w.p.mu.Lock()
	if !w.negotiated {
		w.negotiated = true
		w.g.negotiating--
	}
	w.p.mu.Unlock()
	w.g.wake()
}

// loopbackCandidate reports whether an ICE candidate line has a loopback
// address.
func loopbackCandidate(c string) bool {
	f := strings.Fields(strings.TrimPrefix(c, "a="))
	if len(f) < 8 {
		return false
	}
	a := f[4]
	return a == "::1" || strings.HasPrefix(a, "127.")
}
