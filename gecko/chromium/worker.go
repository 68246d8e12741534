package chromium

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/gecko"
	"github.com/geckohost/geckohost/gecko/egress"
)

// pageMsg is one event from a worker's page.
type pageMsg struct {
	ev        shellEvent // from the shell's channel
	destroyed bool       // the page's tab is gone
}

// shellEvent is the JSON the shell page sends on its channel (and returns
// from gh.start).
type shellEvent struct {
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

// worker is one worker in a shell page; it implements engine.Worker. Its
// run goroutine drives it from reservation to its end and is the only
// sender on events.
type worker struct {
	p   *Pool
	b   *browser
	g   *generation
	tc  *tokenCtx
	req engine.WorkerRequest
	log *slog.Logger

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

	// Guarded by p.mu.
	pg         *page // nil until the worker has a place in a page
	negotiated bool  // no longer counted in g.negotiating

	// Owned by the run goroutine.
	ident       *egress.Identity // its user context's egress identity, once it has a page
	refusedBase int64            // ident.Refused() when the worker started
	dropOrigin  func()           // ends the egress allowance of the worker's source origin
	pageEnded   bool             // the page ended the worker itself
	created     time.Time
	startSent   time.Time // when the start call was sent (debug timing)
	wg          sync.WaitGroup
}

func newWorker(p *Pool, b *browser, g *generation, tc *tokenCtx, pg *page, req engine.WorkerRequest) *worker {
	return &worker{
		p: p, b: b, g: g, tc: tc, req: req, pg: pg,
		log:     b.log.With("worker", req.WorkerID),
		created: time.Now(),
		events:  make(chan engine.Event, 32),
		inSig:   make(chan struct{}, 1),
		done:    make(chan struct{}),
		closeCh: make(chan struct{}),
	}
}

// Events implements engine.Worker.
func (w *worker) Events() <-chan engine.Event { return w.events }

// AddCandidates implements engine.Worker: one browser call hands the
// candidates to the worker's peer connection. In ICELoopback mode
// non-loopback candidates are left out.
func (w *worker) AddCandidates(ctx context.Context, cs []engine.Candidate) error {
	if w.p.opts.ICELoopback {
		cs = gecko.LoopbackCandidates(cs)
	}
	if len(cs) == 0 {
		return nil
	}
	w.p.mu.Lock()
	pg := w.pg
	w.p.mu.Unlock()
	if pg == nil {
		return fmt.Errorf("add client candidates: %w", errNoPage)
	}
	b, err := json.Marshal(cs)
	if err != nil {
		return fmt.Errorf("encode client candidates: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, err = pg.eval(cctx, "gh.addCandidates("+jsString(w.req.WorkerID)+", "+jsString(string(b))+")")
	if err != nil {
		return fmt.Errorf("add client candidates: %w", err)
	}
	return nil
}

// Close implements engine.Worker.
func (w *worker) Close(ctx context.Context) error {
	w.requestClose(engine.EndClosed)
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close worker: %w", ctx.Err())
	}
}

// requestClose asks the run goroutine to end the worker; the first
// reason wins.
func (w *worker) requestClose(reason engine.EndReason) { w.requestCloseWith(reason, "", false) }

// lose ends a worker whose content process died (or was killed for a
// limit): at once, its page is gone.
func (w *worker) lose(reason engine.EndReason, detail string) {
	w.requestCloseWith(reason, detail, true)
}

func (w *worker) requestCloseWith(reason engine.EndReason, detail string, lost bool) {
	w.closeOnce.Do(func() {
		w.mu.Lock()
		w.reason, w.detail, w.lost = reason, detail, lost
		w.mu.Unlock()
		close(w.closeCh)
	})
}

// closeReason is the reason of a requested close ("" if none).
func (w *worker) closeReason() engine.EndReason {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reason
}

// pageLost reports whether the worker's content process died.
func (w *worker) pageLost() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lost
}

// deliver queues an event of the worker's page (it runs on the BiDi read
// loop and never blocks).
func (w *worker) deliver(m pageMsg) {
	w.mu.Lock()
	w.inbox = append(w.inbox, m)
	w.mu.Unlock()
	select {
	case w.inSig <- struct{}{}:
	default:
	}
}

func (w *worker) emit(ev engine.Event) {
	select {
	case w.events <- ev:
	case <-w.p.abandon:
	}
}

// run drives the worker from reservation to its end.
func (w *worker) run() {
	defer w.p.workerWG.Done()
	ctx, cancel := context.WithCancel(context.Background())
	// The worker's lifetime is kept here, in Go: it outlives its page.
	lifetime := w.p.opts.WorkerMaxLifetime
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
		case <-w.g.dead:
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

func (w *worker) dead() bool {
	select {
	case <-w.g.dead:
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
func (w *worker) failure(what string, err error) engine.Event {
	lost := false
	select {
	case <-w.g.bp.Done():
		lost = true
	default:
	}
	if lost {
		select {
		case <-w.closeCh:
			return w.closedEvent()
		default:
		}
		// The CDP connection is gone: the browser died (or is being
		// killed); the supervisor notices it a moment later.
		t := time.NewTimer(2 * time.Second)
		select {
		case <-w.g.dead:
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
func (w *worker) closedEvent() engine.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	return ended(w.reason, w.detail)
}

// negotiate gets a page, starts the worker (its code came with the
// request: the front fetched it) and relays the page's events until the
// worker ends; it returns the EventEnded to send.
func (w *worker) negotiate(ctx context.Context) engine.Event {
	pg, err := w.acquirePage(ctx)
	if err != nil {
		return w.failure("opening a worker page", err)
	}
	// The worker may reach its own source origin (egress.Public), and its
	// refused requests are those of its user context from now on.
	if id := w.g.identity(pg.bc); id != nil {
		w.ident, w.refusedBase = id, id.Refused()
		w.dropOrigin = id.AllowOrigin(w.req.Source)
	}
	select {
	case <-w.closeCh:
		return w.closedEvent()
	default:
	}
	// The call returns the answer (or the start's error); the host bounds
	// the wait for it (302), startTimeout is only a backstop.
	cctx, cancel := context.WithTimeout(ctx, startTimeoutJS)
	w.startSent = time.Now()
	res, err := pg.eval(cctx, "gh.start("+jsString(w.req.WorkerID)+", "+jsString(w.req.Code)+", "+jsString(w.req.Source)+", "+
		jsString(w.offer())+", "+jsString(w.iceServersJSON())+")")
	cancel()
	if err != nil {
		return w.failure("starting the worker", err)
	}
	var e shellEvent
	if raw, err := unquote(res); err != nil || json.Unmarshal([]byte(raw), &e) != nil {
		return w.failure("starting the worker", fmt.Errorf("unexpected start result %s", res))
	}
	switch e.T {
	case "error":
		w.pageEnded = true
		if e.Errno == int(engine.SyntaxErrorInWorkerCode) {
			e.Reason = w.withParsePosition(pg, e.Reason)
		}
		return failedWith(&engine.Error{Errno: engine.Errno(e.Errno), Reason: e.Reason})
	case "answer":
		w.answered(e)
	}
	// "none": the page ended the worker during the start; its "end" event
	// (or the close that caused it) follows.
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

// relay turns the page's events into engine events until the worker ends.
// A close requested once the data channel is open ends the worker in
// order (see quiesce), within orderlyCloseTimeout.
func (w *worker) relay() engine.Event {
	closeCh := w.closeCh
	var orderly <-chan time.Time
	opened := false
	for {
		select {
		case <-w.inSig:
		case <-closeCh:
			closeCh = nil
			if !opened || w.pageLost() || !w.quiesce() {
				return w.closedEvent()
			}
			t := time.NewTimer(orderlyCloseTimeout)
			defer t.Stop()
			orderly = t.C
		case <-orderly:
			w.log.Debug("worker did not end in order in time: closed")
			return w.closedEvent()
		case <-w.p.abandon:
			return w.closedEvent()
		case <-w.g.dead:
			return ended(engine.EndBrowserDied, "")
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
					continue // the g.dead case reports it
				}
				return ended(engine.EndTabClosed, "")
			}
			switch e.T {
			case "cand":
				if e.C != nil {
					w.log.Debug("worker candidate", "candidate", e.C.Candidate)
					w.emit(engine.Event{Kind: engine.EventCandidate, Candidate: *e.C})
				}
			case "open":
				opened = true
				w.doneNegotiating()
				w.emit(engine.Event{Kind: engine.EventConnected})
			case "error":
				w.pageEnded = true
				return failedWith(&engine.Error{Errno: engine.Errno(e.Errno), Reason: e.Reason})
			case "end":
				w.pageEnded = true
				if r := engine.EndReason(e.Reason); r == w.closeReason() && e.Detail == "" {
					return w.closedEvent() // the end we asked for, with its detail
				}
				return ended(engine.EndReason(e.Reason), e.Detail)
			case "log":
				w.log.Debug("shell", "msg", e.Msg)
			}
		}
	}
}

// orderlyCloseTimeout bounds a connected worker's orderly end (the
// page's quiet wait, the worker's close and the channel's drain); past it
// the worker is closed at once.
const orderlyCloseTimeout = 7 * time.Second

// quiesce asks the page to end the connected worker in order: once its
// data channel has been quiet for 500 ms (at most 3 s), the worker is
// asked to close as an idle one is, so that what either side sent before
// is answered and delivered before the channel closes. The page then sends
// the worker's "end" with the requested reason. It reports whether the
// page took the request.
func (w *worker) quiesce() bool {
	w.p.mu.Lock()
	pg := w.pg
	w.p.mu.Unlock()
	w.mu.Lock()
	reason := w.reason
	w.mu.Unlock()
	if pg == nil || w.dead() {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	res, err := pg.eval(ctx, "gh.quiesce("+jsString(w.req.WorkerID)+", "+jsString(string(reason))+")")
	if err != nil {
		w.log.Debug("end the worker in order", "err", err)
		return false
	}
	return string(res) == "true"
}

// iceServersJSON is the request's ICE servers for gh.start: "" (the page's
// own configuration) when there are none or the engine gathers loopback
// candidates only.
func (w *worker) iceServersJSON() string {
	if len(w.req.ICEServers) == 0 || w.p.opts.ICELoopback {
		return ""
	}
	b, err := json.Marshal(w.req.ICEServers)
	if err != nil {
		return ""
	}
	return string(b)
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
	w.emit(engine.Event{Kind: engine.EventAnswer, Answer: w.answer(e.SDP)})
}

// finish ends the worker in its page (the page stays), releases its place
// and sends the last event.
func (w *worker) finish(end engine.Event) {
	p, g, tc := w.p, w.g, w.tc
	p.mu.Lock()
	pg := w.pg
	p.mu.Unlock()
	if pg != nil && !w.pageEnded && !w.dead() && !w.pageLost() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := pg.eval(ctx, "void gh.close("+jsString(w.req.WorkerID)+")")
		if err != nil && !w.dead() {
			w.log.Debug("close worker", "err", err)
		}
		cancel()
	}
	w.doneNegotiating()
	if w.ident != nil {
		end.EgressRefused = int(w.ident.Refused() - w.refusedBase)
		w.dropOrigin()
	}
	var drop *page
	p.mu.Lock()
	if g.byID[w.req.WorkerID] == w {
		delete(g.byID, w.req.WorkerID)
	}
	if pg != nil {
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
	}
	p.mu.Unlock()
	if drop != nil {
		p.dropPage(g, drop)
	}
	g.wake()
	if end.Err != nil {
		w.log.Debug("worker ended", "errno", int(end.Err.Errno), "reason", end.Err.Reason)
	} else {
		w.log.Debug("worker ended", "reason", end.Reason)
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
