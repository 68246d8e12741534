package host

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/geckohost/geckohost/host/wire"
	"github.com/geckohost/geckohost/store"
)

// Close codes the host uses after a worker-error frame: 1008 (policy
// violation) for the client's errors (1xx), 1001 (going away) for 304, and
// 1011 (internal error) for the worker's and the engine's errors (2xx, 3xx).
// After "connected" it closes with 1000.
const (
	closeClientError = websocket.StatusPolicyViolation
	closeGoingAway   = websocket.StatusGoingAway
	closeServerError = websocket.StatusInternalError
)

const (
	// writeFrameTimeout bounds one frame write to the client.
	writeFrameTimeout = 5 * time.Second
	// lookupTimeout bounds the token lookup.
	lookupTimeout = 5 * time.Second
	// workerCloseTimeout bounds Worker.Close when a session fails.
	workerCloseTimeout = 10 * time.Second
	// maxPendingCandidates bounds the client candidates queued before the
	// answer; more is a 103.
	maxPendingCandidates = 1000
)

// End reasons recorded in the session records (besides the engine's own,
// such as "worker-closed" and "idle").
const (
	endClientLeft = "client-left"
	endError      = "error"
	endShutdown   = "shutdown"
)

// session is one signaling WebSocket and, once it has one, its worker. The
// handler goroutine runs the negotiation; the pump goroutine drains the
// worker's events until it ends and then writes the final record.
type session struct {
	s      *Server
	remote string
	origin string

	mu        sync.Mutex
	id        string
	token     store.Token
	recorded  bool // the session has a record (from the hello on)
	counted   bool // counted in s.live
	source    string
	helloAt   time.Time
	answerAt  time.Time
	connectAt time.Time
	state     string
	errno     wire.Errno
	reason    string
	endReason string
	worker    Worker // set once connected (the handler owns it before)
	finished  bool
}

type readResult struct {
	frame wire.ClientFrame
	err   error // *wire.Error for a bad frame, else the connection's error
}

func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		http.Error(w, "geckohost is shutting down", http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	origin := r.Header.Get("Origin")
	if origin != "" && !s.originAllowed(r, origin) {
		s.log.Info("websocket refused: origin not allowed", "origin", origin, "remote", r.RemoteAddr)
		http.Error(w, "origin not allowed: start serve with --allow-origin "+origin, http.StatusForbidden)
		return
	}
	// The origin is checked above, with our own rules.
	hj := &hijackTracker{ResponseWriter: w}
	conn, err := websocket.Accept(hj, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		s.log.Debug("websocket accept", "remote", r.RemoteAddr, "err", err)
		return
	}
	conn.SetReadLimit(s.opts.MaxFrame + 1) // we stop at MaxFrame+1 ourselves
	se := &session{s: s, remote: r.RemoteAddr, origin: origin, state: "negotiating"}
	se.run(r, conn, hj.conn)
}

// hijackTracker keeps the hijacked connection, so that a Shutdown that ran
// out of time can close it under a WebSocket close handshake that waits.
type hijackTracker struct {
	http.ResponseWriter
	conn net.Conn
}

// Hijack implements http.Hijacker.
func (h *hijackTracker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err == nil {
		h.conn = c
	}
	return c, rw, err
}

// Unwrap returns the wrapped ResponseWriter (for http.ResponseController).
func (h *hijackTracker) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// originAllowed reports whether a browser client's Origin may connect: the
// server's own origin, or one matching an --allow-origin pattern.
func (s *Server) originAllowed(r *http.Request, origin string) bool {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if strings.EqualFold(origin, scheme+"://"+r.Host) {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Path != "" && u.Path != "/" {
		return false
	}
	return matchAny(s.allowOrigins, u)
}

// readLoop reads client frames and hands them to the handler until the
// connection fails or a frame is bad.
func (se *session) readLoop(ctx context.Context, conn *websocket.Conn, out chan<- readResult) {
	max := se.s.opts.MaxFrame
	for {
		var res readResult
		typ, r, err := conn.Reader(ctx)
		if err != nil {
			res.err = err
		} else if data, err := io.ReadAll(io.LimitReader(r, max+1)); err != nil {
			res.err = err
		} else if int64(len(data)) > max {
			res.err = wire.Errorf(wire.InvalidMessage, "frame larger than %d bytes", max)
		} else if typ != websocket.MessageText {
			res.err = wire.Errorf(wire.InvalidMessage, "binary frame; frames are JSON text")
		} else {
			res.frame, res.err = wire.ParseClientFrame(data)
		}
		select {
		case out <- res:
		case <-ctx.Done():
			return
		}
		if res.err != nil {
			return
		}
	}
}

// negotiation is the handler's state for one session.
type negotiation struct {
	se     *session
	conn   *websocket.Conn
	ctx    context.Context
	frames chan readResult
	worker Worker
	events chan wire.Event
	// handlerDone tells the pump to stop handing events to the handler.
	handlerDone chan struct{}
	doneOnce    sync.Once
}

// stopHandingEvents closes handlerDone (once).
func (n *negotiation) stopHandingEvents() {
	n.doneOnce.Do(func() { close(n.handlerDone) })
}

func (se *session) run(r *http.Request, conn *websocket.Conn, netConn net.Conn) {
	s := se.s
	ctx, cancel := context.WithCancel(s.ctx)
	// When Shutdown runs out of time (s.ctx cancelled), close the TCP
	// connection: a close handshake may otherwise wait for seconds.
	stopForce := func() bool { return false }
	if netConn != nil {
		stopForce = context.AfterFunc(ctx, func() { _ = netConn.Close() })
	}
	n := &negotiation{se: se, conn: conn, ctx: ctx, frames: make(chan readResult), handlerDone: make(chan struct{})}
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		se.readLoop(ctx, conn, n.frames)
	}()
	defer func() {
		n.stopHandingEvents()
		stopForce()
		cancel()
		_ = conn.CloseNow() // no-op after a Close
		readers.Wait()
	}()
	n.negotiate(r)
}

// negotiate runs hello → auth → source → limit → worker → relay.
func (n *negotiation) negotiate(r *http.Request) {
	se, s := n.se, n.se.s
	hello, ok := n.waitHello()
	if !ok {
		return
	}
	se.mu.Lock()
	se.id = newWorkerID()
	se.helloAt = time.Now()
	se.source = hello.Source
	se.recorded = true
	se.mu.Unlock()
	se.save()

	tok, werr := s.authenticate(n.ctx, hello.Authorization)
	se.mu.Lock()
	se.token = tok // a revoked or expired token is named in the record
	se.mu.Unlock()
	if werr != nil {
		n.fail(werr)
		return
	}

	if werr := s.checkSource(r, tok, hello.Source); werr != nil {
		n.fail(werr)
		return
	}
	if werr := s.reserve(se); werr != nil {
		n.fail(werr)
		return
	}

	answerDeadline := se.helloAt.Add(s.opts.AnswerTimeout)
	sctx, scancel := context.WithDeadline(n.ctx, answerDeadline)
	stopWatch := context.AfterFunc(s.stopCtx, scancel) // Shutdown cancels a waiting StartWorker
	w, err := s.opts.Engine.StartWorker(sctx, wire.WorkerRequest{
		WorkerID: se.id, TokenID: tok.ID, TokenName: tok.Name, Source: hello.Source, Offer: hello.Offer,
	})
	stopWatch()
	scancel()
	if err != nil {
		if s.stopCtx.Err() != nil && !errors.As(err, new(*wire.Error)) {
			n.fail(wire.Errorf(wire.ShuttingDown, "geckohost is shutting down"))
			return
		}
		n.fail(engineError(err, s.opts.AnswerTimeout))
		return
	}
	n.worker = w
	n.events = make(chan wire.Event)
	s.wg.Add(1) // the handler holds a count, so this cannot race Wait
	go func() {
		defer s.wg.Done()
		se.pump(w, n.events, n.handlerDone)
	}()
	n.relay(answerDeadline)
}

// waitHello waits for the client-hello. ok is false when the session is
// over (an error was sent or the client left).
func (n *negotiation) waitHello() (wire.ClientHello, bool) {
	s := n.se.s
	t := time.NewTimer(s.opts.HelloTimeout)
	defer t.Stop()
	select {
	case res := <-n.frames:
		if res.err != nil {
			n.readFailed(res.err)
			return wire.ClientHello{}, false
		}
		if res.frame.Kind != wire.FrameHello {
			n.fail(wire.Errorf(wire.InvalidMessage, "the first frame must be a client-hello, got %s", res.frame.Kind))
			return wire.ClientHello{}, false
		}
		return res.frame.Hello, true
	case <-t.C:
		n.fail(wire.Errorf(wire.InvalidMessage, "no client-hello within %s", s.opts.HelloTimeout))
	case <-s.stopping:
		n.fail(wire.Errorf(wire.ShuttingDown, "geckohost is shutting down"))
	case <-n.ctx.Done():
		n.hardStop()
	}
	return wire.ClientHello{}, false
}

// relay passes ICE both ways until connected or a failure.
func (n *negotiation) relay(answerDeadline time.Time) {
	se, s := n.se, n.se.s
	answerTimer := time.NewTimer(time.Until(answerDeadline))
	defer answerTimer.Stop()
	var connectC <-chan time.Time

	apply := make(chan wire.Candidate)
	actx, acancel := context.WithCancel(n.ctx)
	var appliers sync.WaitGroup
	appliers.Add(1)
	go func() {
		defer appliers.Done()
		for c := range apply {
			if err := n.worker.AddCandidate(actx, c); err != nil {
				s.log.Debug("add client candidate", "worker", se.id, "candidate", c.Candidate, "err", err)
			}
		}
	}()
	defer func() {
		close(apply)
		acancel()
		appliers.Wait()
	}()

	var pending []wire.Candidate
	answered := false
	for {
		var applyC chan wire.Candidate
		var next wire.Candidate
		if answered && len(pending) > 0 {
			applyC, next = apply, pending[0]
		}
		select {
		case applyC <- next:
			pending = pending[1:]
		case res := <-n.frames:
			if res.err != nil {
				n.readFailed(res.err)
				return
			}
			if res.frame.Kind != wire.FrameCandidate {
				n.fail(wire.Errorf(wire.InvalidMessage, "unexpected %s after the client-hello", res.frame.Kind))
				return
			}
			if len(pending) >= maxPendingCandidates {
				n.fail(wire.Errorf(wire.InvalidMessage, "more than %d ICE candidates queued", maxPendingCandidates))
				return
			}
			pending = append(pending, res.frame.Candidate)
		case ev := <-n.events:
			switch ev.Kind {
			case wire.EventAnswer:
				if answered {
					continue
				}
				answered = true
				answerTimer.Stop()
				se.mu.Lock()
				se.answerAt = time.Now()
				se.state = "answered"
				se.mu.Unlock()
				se.save()
				if !n.send(wire.NewWorkerHello(se.id, ev.Answer)) {
					return
				}
				ct := time.NewTimer(s.opts.ConnectTimeout)
				defer ct.Stop()
				connectC = ct.C
			case wire.EventCandidate:
				if !n.send(wire.NewWorkerCandidate(se.id, ev.Candidate)) {
					return
				}
			case wire.EventConnected:
				n.connected()
				return
			case wire.EventEnded:
				if ev.Err != nil {
					n.fail(ev.Err)
					return
				}
				why := ev.EndReason
				if why == "" {
					why = "no reason given"
				}
				e := wire.Errorf(wire.GeckoCrashed, "the worker ended before it was connected (%s)", why)
				se.setEnd(why, e.Errno, e.Reason)
				n.fail(e)
				return
			}
		case <-answerTimer.C:
			n.fail(wire.Errorf(wire.GeckoTimeout, "no answer from the gecko within %s of the hello", s.opts.AnswerTimeout))
			return
		case <-connectC:
			n.fail(wire.Errorf(wire.GeckoTimeout, "not connected within %s of the answer", s.opts.ConnectTimeout))
			return
		case <-s.stopping:
			n.fail(wire.Errorf(wire.ShuttingDown, "geckohost is shutting down"))
			return
		case <-n.ctx.Done():
			n.hardStop()
			return
		}
	}
}

// connected sends "connected", closes the WebSocket normally and leaves the
// worker to its pump.
func (n *negotiation) connected() {
	se, s := n.se, n.se.s
	se.mu.Lock()
	se.connectAt = time.Now()
	if se.answerAt.IsZero() {
		se.answerAt = se.connectAt
	}
	se.state = "connected"
	se.mu.Unlock()
	se.save()
	// Hand the worker over before telling the client: from now on only
	// Shutdown or the worker's own end stops it, and its pump records that.
	s.mu.Lock()
	closing := s.closing
	se.mu.Lock()
	se.worker = n.worker
	se.mu.Unlock()
	s.mu.Unlock()
	if !n.send(wire.NewConnected(se.id)) {
		return
	}
	_ = n.conn.Close(websocket.StatusNormalClosure, "")
	if closing {
		se.setEnd(endShutdown, 0, "")
		n.closeWorker()
	}
}

// send writes one frame; false means the client is gone (the session was
// ended "client-left" and the worker closed).
func (n *negotiation) send(v any) bool {
	b, err := json.Marshal(v)
	if err == nil {
		ctx, cancel := context.WithTimeout(n.ctx, writeFrameTimeout)
		err = n.conn.Write(ctx, websocket.MessageText, b)
		cancel()
	}
	if err != nil {
		n.se.s.log.Debug("write frame", "worker", n.se.id, "err", err)
		n.se.setEnd(endClientLeft, 0, "")
		_ = n.conn.CloseNow()
		n.closeWorker()
		n.se.finishIfNoWorker(n.worker)
		return false
	}
	return true
}

// readFailed handles a read error: a bad frame (103) or the client leaving.
func (n *negotiation) readFailed(err error) {
	var we *wire.Error
	if errors.As(err, &we) {
		n.fail(we)
		return
	}
	n.se.s.log.Debug("client left", "worker", n.se.id, "remote", n.se.remote, "err", err)
	n.se.setEnd(endClientLeft, 0, "")
	_ = n.conn.CloseNow()
	n.closeWorker()
	n.se.finishIfNoWorker(n.worker)
}

// fail sends the one worker-error, closes the WebSocket and the worker.
func (n *negotiation) fail(e *wire.Error) {
	se := n.se
	end := endError
	if e.Errno == wire.ShuttingDown {
		end = endShutdown
	}
	se.setEnd(end, e.Errno, e.Reason)
	se.mu.Lock()
	id := se.id
	se.mu.Unlock()
	b, err := json.Marshal(wire.NewWorkerError(id, e))
	if err == nil {
		ctx, cancel := context.WithTimeout(n.ctx, writeFrameTimeout)
		err = n.conn.Write(ctx, websocket.MessageText, b)
		cancel()
	}
	if err == nil {
		code := closeServerError
		switch {
		case e.Errno == wire.ShuttingDown:
			code = closeGoingAway
		case e.Errno < 200:
			code = closeClientError
		}
		_ = n.conn.Close(code, e.Errno.String())
	} else {
		_ = n.conn.CloseNow()
	}
	n.closeWorker()
	se.finishIfNoWorker(n.worker)
}

// hardStop ends the session at once (Shutdown ran out of time).
func (n *negotiation) hardStop() {
	n.se.setEnd(endShutdown, wire.ShuttingDown, "geckohost stopped")
	_ = n.conn.CloseNow()
	n.closeWorker()
	n.se.finishIfNoWorker(n.worker)
}

// closeWorker closes the worker, if any; its pump records the end.
func (n *negotiation) closeWorker() {
	if n.worker == nil {
		return
	}
	// The pump must not wait for the handler while Close waits for the pump.
	n.stopHandingEvents()
	ctx, cancel := context.WithTimeout(n.se.s.ctx, workerCloseTimeout)
	defer cancel()
	if err := n.worker.Close(ctx); err != nil {
		n.se.s.log.Warn("close worker", "worker", n.se.id, "err", err)
	}
}

// pump drains the worker's events: it hands them to the handler while the
// handler negotiates, then keeps reading until the worker ends, and writes
// the final record.
func (se *session) pump(w Worker, out chan<- wire.Event, handlerDone <-chan struct{}) {
	defer se.finish()
	events := w.Events()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				// Closed without EventEnded: tell a negotiating handler.
				ev = wire.Event{Kind: wire.EventEnded, EndReason: "worker-gone"}
			}
			if ev.Kind == wire.EventEnded && se.connectedWorker() != nil {
				// While negotiating, the handler records the failure.
				if ev.Err != nil {
					se.setEnd(endError, ev.Err.Errno, ev.Err.Reason)
				} else {
					reason := ev.EndReason
					if reason == "" {
						reason = "worker-closed"
					}
					se.setEnd(reason, 0, "")
				}
			}
			select {
			case out <- ev:
			case <-handlerDone:
			}
			if !ok {
				return
			}
		case <-se.s.ctx.Done():
			// Shutdown ran out of time: stop waiting for the engine.
			se.setEnd(endShutdown, 0, "")
			return
		}
	}
}

// connectedWorker returns the worker once the session is connected.
func (se *session) connectedWorker() Worker {
	se.mu.Lock()
	defer se.mu.Unlock()
	return se.worker
}

// setEnd records why the session ends; the first call wins.
func (se *session) setEnd(reason string, errno wire.Errno, why string) {
	se.mu.Lock()
	defer se.mu.Unlock()
	if se.endReason != "" {
		return
	}
	se.endReason = reason
	se.errno = errno
	se.reason = why
}

// record returns the session's record; the caller holds se.mu.
func (se *session) recordLocked() store.Session {
	rec := store.Session{
		WorkerID:   se.id,
		TokenID:    se.token.ID,
		TokenName:  se.token.Name,
		Source:     se.source,
		RemoteAddr: se.remote,
		Origin:     se.origin,
		Engine:     se.s.opts.EngineName,
		State:      se.state,
		Errno:      int(se.errno),
		Reason:     se.reason,
		Created:    se.helloAt,
		Answered:   se.answerAt,
		Connected:  se.connectAt,
	}
	return rec
}

// save queues the current record, once the hello was read.
func (se *session) save() {
	se.mu.Lock()
	if !se.recorded {
		se.mu.Unlock()
		return
	}
	rec := se.recordLocked()
	se.mu.Unlock()
	se.s.rec.save(rec)
}

// finishIfNoWorker finishes a session that never got a worker (a session
// with one is finished by its pump).
func (se *session) finishIfNoWorker(w Worker) {
	if w == nil {
		se.finish()
	}
}

// finish writes the final record, releases the token's worker count, and
// logs the session's one info line. Only the first call does anything.
func (se *session) finish() {
	s := se.s
	se.mu.Lock()
	if se.finished {
		se.mu.Unlock()
		return
	}
	se.finished = true
	if se.endReason == "" {
		se.endReason = endError
	}
	se.state = "ended"
	rec := se.recordLocked()
	rec.Ended = time.Now()
	rec.EndReason = se.endReason
	recorded, counted, id := se.recorded, se.counted, se.id
	se.mu.Unlock()

	if recorded {
		s.rec.save(rec)
	}
	s.mu.Lock()
	if counted {
		if s.live[rec.TokenID]--; s.live[rec.TokenID] <= 0 {
			delete(s.live, rec.TokenID)
		}
	}
	delete(s.sessions, se)
	s.mu.Unlock()
	if id == "" {
		return // no hello: nothing worth a line
	}
	attrs := []any{"worker", id, "token", rec.TokenName, "errno", rec.Errno, "end", rec.EndReason}
	if rec.Errno != 0 {
		attrs = append(attrs, "reason", rec.Reason)
	}
	if !rec.Answered.IsZero() {
		attrs = append(attrs, "hello_to_answer", rec.Answered.Sub(rec.Created))
	}
	if !rec.Connected.IsZero() {
		attrs = append(attrs, "answer_to_connected", rec.Connected.Sub(rec.Answered))
	}
	attrs = append(attrs, "total", rec.Ended.Sub(rec.Created))
	s.log.Info("session ended", attrs...)
}

// reserve counts a live worker for the session's token and records its
// start for the token's rate limit, unless the token is at its MaxWorkers
// or its Rate (then it returns the 105, and counts nothing). It also
// registers the session for Shutdown.
func (s *Server) reserve(se *session) *wire.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	se.mu.Lock()
	defer se.mu.Unlock()
	tok := se.token
	if tok.MaxWorkers > 0 && s.live[tok.ID] >= tok.MaxWorkers {
		return wire.Errorf(wire.LimitReached, "token %q already has its maximum of %d concurrent workers", tok.Name, tok.MaxWorkers)
	}
	if ok, wait := s.rate.allow(tok.ID, tok.Rate, s.now()); !ok {
		return rateLimitError(tok, wait)
	}
	s.live[tok.ID]++
	se.counted = true
	s.sessions[se] = struct{}{}
	return nil
}

// authenticate checks the authorization field: 101 when it is not
// "Bearer <token>", 102 when the token is unknown, revoked or expired.
func (s *Server) authenticate(ctx context.Context, authorization string) (store.Token, *wire.Error) {
	scheme, secret, ok := strings.Cut(authorization, " ")
	secret = strings.TrimSpace(secret)
	if authorization == "" {
		return store.Token{}, wire.Errorf(wire.InvalidAuthorization, "missing authorization; send \"Bearer <token>\"")
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" || strings.ContainsAny(secret, " \t") {
		return store.Token{}, wire.Errorf(wire.InvalidAuthorization, "authorization must be \"Bearer <token>\"")
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	tok, err := s.opts.Store.LookupToken(ctx, secret)
	switch {
	case err == nil:
		return tok, nil
	case errors.Is(err, store.ErrNotFound):
		return store.Token{}, wire.Errorf(wire.InvalidToken, "unknown token")
	case errors.Is(err, store.ErrRevoked):
		return tok, wire.Errorf(wire.InvalidToken, "token revoked")
	case errors.Is(err, store.ErrExpired):
		return tok, wire.Errorf(wire.InvalidToken, "token expired")
	}
	s.log.Error("look up token", "err", err)
	return store.Token{}, wire.Errorf(wire.InvalidToken, "the token could not be checked (internal error)")
}

// checkSource returns a 104 unless the source is an http(s) URL allowed by
// the server (--allow-source or a bundled demo worker) and by the token.
func (s *Server) checkSource(r *http.Request, tok store.Token, source string) *wire.Error {
	shown := source
	if len(shown) > 200 {
		shown = shown[:200] + "..."
	}
	u, err := url.Parse(source)
	if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil ||
		(!strings.EqualFold(u.Scheme, "http") && !strings.EqualFold(u.Scheme, "https")) {
		return wire.Errorf(wire.SourceNotAllowed, "source %s is not allowed: it must be an absolute http:// or https:// URL", shown)
	}
	serverOK := s.isDemoWorker(r, u) || matchAny(s.allowSources, u)
	tokenOK := len(tok.Sources) == 0 || matchAny(tok.Sources, u)
	origin := originOf(u)
	switch {
	case serverOK && tokenOK:
		return nil
	case !serverOK && len(tok.Sources) == 0:
		return wire.Errorf(wire.SourceNotAllowed, "source %s is not allowed: start serve with --allow-source %s", shown, origin)
	case !serverOK:
		return wire.Errorf(wire.SourceNotAllowed, "source %s is not allowed: start serve with --allow-source %s (and the token's --source list must include it)", shown, origin)
	default:
		return wire.Errorf(wire.SourceNotAllowed, "source %s is not allowed for token %q: its --source list does not include %s", shown, tok.Name, origin)
	}
}

// isDemoWorker reports whether u is one of the bundled demo workers: on the
// server's own origin, under /workers/.
func (s *Server) isDemoWorker(r *http.Request, u *url.URL) bool {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if !strings.EqualFold(u.Scheme, scheme) || !strings.EqualFold(u.Host, r.Host) {
		return false
	}
	p := u.EscapedPath()
	return strings.HasPrefix(p, "/workers/") && strings.HasPrefix(path.Clean(p), "/workers/") &&
		!strings.Contains(strings.ToLower(p), "%2f") && !strings.Contains(strings.ToLower(p), "%2e")
}

// engineError maps a StartWorker error to the client's error: a *wire.Error
// in the chain as is, a deadline as 302, else 301.
func engineError(err error, answerTimeout time.Duration) *wire.Error {
	var we *wire.Error
	if errors.As(err, &we) {
		return we
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return wire.Errorf(wire.GeckoTimeout, "no answer from the gecko within %s of the hello", answerTimeout)
	}
	return wire.Errorf(wire.NoGeckoAvailable, "no gecko could take the worker: %v", err)
}
