package host

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"time"

	"github.com/coder/websocket"

	"github.com/geckohost/geckohost/engine"
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
	// workerCloseTimeout bounds Worker.Close, and the wait for the worker's
	// last event after it.
	workerCloseTimeout = 10 * time.Second
	// maxCandidates bounds the client candidates of one session (queued
	// before the answer or not); more is a 103.
	maxCandidates = 1000
)

// negotiate runs hello → admission → source fetch → worker → relay, and
// returns once the session is over (its worker gone, or it never had one).
func (se *session) negotiate() {
	s := se.s
	hello, ok := se.waitHello()
	if !ok {
		return
	}
	se.id = newWorkerID()
	se.helloAt = time.Now()
	se.source = hello.Source
	se.clientICE.addSDP(hello.Offer, !se.localClient)
	se.setActive(stateNegotiating)

	tok, werr := s.authenticate(se.ctx, hello.Authorization)
	se.token = tok // a revoked or expired token is named in the record
	if werr != nil {
		// Past a burst of failures from one address, no record and no
		// log line (hellofail.go).
		se.quiet = s.hellos.failed(se.remote)
		se.recorded = !se.quiet
		if se.quiet {
			se.tarpit()
		}
		se.fail(werr)
		return
	}
	se.recorded = true
	se.save()
	u, werr := s.checkSource(se.r, tok, hello.Source)
	if werr != nil {
		se.fail(werr)
		return
	}
	if werr := checkOffer(hello.Offer); werr != nil {
		se.fail(werr)
		return
	}
	if werr := s.reserve(se.ctx, tok, se.id); werr != nil {
		se.fail(werr)
		return
	}
	se.counted = true

	answerDeadline := se.helloAt.Add(s.opts.AnswerTimeout)
	code, ok := se.fetchSource(tok, u, answerDeadline)
	if !ok {
		return
	}
	sctx, scancel := context.WithDeadline(se.ctx, answerDeadline)
	stopWatch := context.AfterFunc(s.stopCtx, scancel) // Shutdown cancels a waiting StartWorker
	w, ok := se.startWorker(sctx, engine.WorkerRequest{
		WorkerID: se.id, TokenID: tok.ID, TokenName: tok.Name, Source: hello.Source, Code: code, Offer: hello.Offer,
		ICEServers: s.iceServers(tok, true),
		Limits:     engine.Limits{Memory: tok.WorkerMemory, Lifetime: tok.WorkerLifetime},
	})
	stopWatch()
	scancel()
	if !ok {
		return
	}
	se.worker = w
	se.relay(answerDeadline)
	se.dropRelayPeers() // the worker ended (turnperm.go)
}

// fetchSource fetches the worker's code while it keeps reading the
// client's frames (candidates are kept for the relay, the cap applies) and
// watching for the client leaving, the answer deadline (302) and shutdown
// (304). ok is false when the session is over.
func (se *session) fetchSource(tok store.Token, u *url.URL, answerDeadline time.Time) (string, bool) {
	s := se.s
	fctx, cancel := context.WithDeadline(se.ctx, answerDeadline)
	defer cancel()
	type result struct {
		code string
		err  *engine.Error
	}
	done := make(chan result, 1)
	go func() {
		code, err := s.fetchSource(fctx, se.r, tok, u)
		done <- result{code, err}
	}()
	for {
		select {
		case res := <-done:
			if res.err != nil {
				if fctx.Err() != nil && time.Now().After(answerDeadline) {
					res.err = engine.Errorf(engine.GeckoTimeout, "no answer from the gecko within %s of the hello (fetching the source)", s.opts.AnswerTimeout)
				}
				se.fail(res.err)
				return "", false
			}
			return res.code, true
		case res := <-se.frames:
			if !se.clientFrame(res, &se.early, &se.candidates) {
				cancel()
				<-done
				return "", false
			}
		case <-s.stopCtx.Done():
			cancel()
			<-done
			se.fail(shuttingDown())
			return "", false
		case <-se.ctx.Done():
			<-done
			se.hardStop()
			return "", false
		}
	}
}

// waitHello waits for the client-hello. ok is false when the session is
// over (an error was sent or the client left).
func (se *session) waitHello() (wire.ClientHello, bool) {
	s := se.s
	t := time.NewTimer(s.opts.HelloTimeout)
	defer t.Stop()
	select {
	case res := <-se.frames:
		if res.err != nil {
			se.readFailed(res.err)
			return wire.ClientHello{}, false
		}
		if res.frame.Kind != wire.FrameHello {
			se.fail(engine.Errorf(engine.InvalidMessage, "the first frame must be a client-hello, got %s", res.frame.Kind))
			return wire.ClientHello{}, false
		}
		return res.frame.Hello, true
	case <-t.C:
		se.fail(engine.Errorf(engine.InvalidMessage, "no client-hello within %s", s.opts.HelloTimeout))
	case <-s.stopCtx.Done():
		se.fail(shuttingDown())
	case <-se.ctx.Done():
		se.hardStop()
	}
	return wire.ClientHello{}, false
}

// relay is the session's one loop once it has a worker: it relays the
// worker's events to the client (answer, candidates, connected) and the
// client's candidates to the worker, enforces the timeouts, and then keeps
// reading the worker's events until it ends, for the record. It returns
// when the worker is gone.
func (se *session) relay(answerDeadline time.Time) {
	s := se.s
	events := se.worker.Events()
	answerT := time.NewTimer(time.Until(answerDeadline))
	defer answerT.Stop()
	var connectT, closeT <-chan time.Time

	// One queue of client candidates: pending, handed to the applier as a
	// batch whenever it is idle, once the worker has answered.
	apply := make(chan []engine.Candidate)
	actx, acancel := context.WithCancel(se.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for batch := range apply {
			if err := se.worker.AddCandidates(actx, batch); err != nil {
				s.log.Debug("add client candidates", "worker", se.id, "count", len(batch), "err", err)
			}
		}
	}()
	defer func() {
		close(apply)
		acancel()
		<-done
	}()

	pending, candidates := se.early, se.candidates // those sent while queued
	se.early = nil
	answered, connected, ended := false, false, false
	stop := s.stopCtx.Done()
	for {
		var applyC chan []engine.Candidate
		if answered && !se.closing && len(pending) > 0 {
			applyC = apply
		}
		if se.closing && closeT == nil {
			t := time.NewTimer(workerCloseTimeout + time.Second)
			defer t.Stop()
			closeT = t.C
		}
		select {
		case applyC <- pending:
			pending = nil
		case res := <-se.frames:
			se.clientFrame(res, &pending, &candidates)
		case ev, ok := <-events:
			if !ok {
				if !ended { // closed without EventEnded
					se.workerEnded(engine.Event{Kind: engine.EventEnded, Reason: "worker-gone"}, connected)
				}
				return
			}
			switch ev.Kind {
			case engine.EventAnswer:
				if answered || se.closing {
					continue
				}
				answered = true
				answerT.Stop()
				se.answerAt = time.Now()
				se.countAnswer()
				se.state = stateAnswered
				se.save()
				se.workerICE.addSDP(ev.Answer, !se.localClient)
				se.addRelayPeers(ev.Answer)
				answer := ev.Answer
				if !se.localClient {
					answer = dropLoopbackCandidates(answer)
				}
				if !se.send(wire.NewWorkerHello(se.id, answer)) {
					continue
				}
				t := time.NewTimer(s.opts.ConnectTimeout)
				defer t.Stop()
				connectT = t.C
			case engine.EventCandidate:
				se.addRelayPeer(ev.Candidate.Candidate)
				if se.workerICE.add(ev.Candidate.Candidate, !se.localClient) && !se.localClient {
					continue
				}
				if !se.closing && !connected {
					se.send(wire.NewWorkerCandidate(se.id, ev.Candidate))
				}
			case engine.EventConnected:
				if connected || se.closing {
					continue
				}
				connected = true
				connectT = nil
				pending = nil // ICE is done: late client candidates are dropped
				se.connected()
			case engine.EventEnded:
				ended = true
				se.egressRefused = ev.EgressRefused
				se.workerEnded(ev, connected)
			}
		case <-answerT.C:
			if !answered && !se.closing {
				se.fail(engine.Errorf(engine.GeckoTimeout, "no answer from the gecko within %s of the hello", s.opts.AnswerTimeout))
			}
		case <-connectT:
			if !connected && !se.closing {
				se.fail(engine.Errorf(engine.GeckoTimeout, "not connected within %s of the answer", s.opts.ConnectTimeout))
			}
		case <-stop:
			stop = nil
			switch {
			case connected:
				se.setEnd(engine.EndShutdown, 0, "")
				se.endWorker()
			case !se.closing:
				se.fail(shuttingDown())
			}
		case <-closeT:
			s.log.Warn("worker did not end after close", "worker", se.id)
			return
		case <-se.ctx.Done():
			// Shutdown ran out of time: stop waiting for the engine.
			se.hardStop()
			return
		}
	}
}

// clientFrame handles a client frame after the hello: a candidate joins
// pending (counted in n), anything else ends the session. It returns false
// when the session failed or the client left.
func (se *session) clientFrame(res readResult, pending *[]engine.Candidate, n *int) bool {
	switch {
	case res.err != nil:
		se.readFailed(res.err)
	case res.frame.Kind != wire.FrameCandidate:
		se.fail(engine.Errorf(engine.InvalidMessage, "unexpected %s after the client-hello", res.frame.Kind))
	case *n >= maxCandidates:
		se.fail(engine.Errorf(engine.InvalidMessage, "more than %d ICE candidates", maxCandidates))
	default:
		*n++
		c := res.frame.Candidate
		// A client on another machine has no use for our loopback, nor the
		// worker for its: not passed on.
		if se.clientICE.add(c.Candidate, !se.localClient) && !se.localClient {
			return true
		}
		*pending = append(*pending, c)
		return true
	}
	return false
}

// connected records the connection, sends "connected" and closes the
// WebSocket normally; the worker goes on peer to peer. When the server is
// stopping, the worker is closed at once.
func (se *session) connected() {
	se.connectAt = time.Now()
	if se.answerAt.IsZero() {
		se.answerAt = se.connectAt
	}
	se.state = stateConnected
	se.countConnected()
	se.save()
	if !se.send(wire.NewConnected(se.id)) {
		return
	}
	_ = se.conn.Close(websocket.StatusNormalClosure, "")
	se.dropConn()
	if se.s.stopCtx.Err() != nil {
		se.setEnd(engine.EndShutdown, 0, "")
		se.endWorker()
	}
}

// workerEnded records the worker's end: after "connected" its reason; before,
// the client is told why with the errno host decides (endedError).
func (se *session) workerEnded(ev engine.Event, connected bool) {
	if connected || se.closing {
		if ev.Err != nil {
			se.setEnd(engine.EndError, ev.Err.Errno, ev.Err.Reason)
		} else {
			reason := ev.Reason
			if reason == "" {
				reason = engine.EndWorkerClosed
			}
			se.setEnd(reason, 0, "")
		}
		return
	}
	e := endedError(ev, &se.workerICE, &se.clientICE)
	reason := ev.Reason
	switch {
	case ev.Err != nil || reason == "":
		reason = engine.EndError
	case e.Errno == engine.ShuttingDown:
		reason = engine.EndShutdown
	}
	se.setEnd(reason, e.Errno, e.Reason)
	se.fail(e) // its Close returns at once: the worker is gone
}

// send writes one frame; false means the client is gone (the session was
// ended "client-left" and the worker closed).
func (se *session) send(v any) bool {
	if se.conn == nil {
		return false
	}
	b, err := json.Marshal(v)
	if err == nil {
		ctx, cancel := context.WithTimeout(se.ctx, writeFrameTimeout)
		err = se.conn.Write(ctx, websocket.MessageText, b)
		cancel()
	}
	if err != nil {
		se.s.log.Debug("write frame", "worker", se.id, "err", err)
		se.clientLeft()
		return false
	}
	return true
}

// readFailed handles a read error: a bad frame (103) or the client leaving.
func (se *session) readFailed(err error) {
	var we *engine.Error
	if errors.As(err, &we) {
		se.fail(we)
		return
	}
	se.s.log.Debug("client left", "worker", se.id, "remote", se.remote, "err", err)
	se.clientLeft()
}

// clientLeft ends a session whose client is gone.
func (se *session) clientLeft() {
	se.setEnd(engine.EndClientLeft, 0, "")
	if se.conn != nil {
		_ = se.conn.CloseNow()
		se.dropConn()
	}
	se.endWorker()
}

// fail sends the one worker-error, closes the WebSocket and the worker.
func (se *session) fail(e *engine.Error) {
	end := engine.EndError
	if e.Errno == engine.ShuttingDown {
		end = engine.EndShutdown
	}
	se.setEnd(end, e.Errno, e.Reason)
	if se.conn != nil {
		b, err := json.Marshal(wire.NewWorkerError(se.id, e))
		if err == nil {
			ctx, cancel := context.WithTimeout(se.ctx, writeFrameTimeout)
			err = se.conn.Write(ctx, websocket.MessageText, b)
			cancel()
		}
		if err == nil {
			code := closeServerError
			switch {
			case e.Errno == engine.ShuttingDown:
				code = closeGoingAway
			case e.Errno < 200:
				code = closeClientError
			}
			_ = se.conn.Close(code, e.Errno.String())
		} else {
			_ = se.conn.CloseNow()
		}
		se.dropConn()
	}
	se.endWorker()
}

// hardStop ends the session at once (Shutdown ran out of time).
func (se *session) hardStop() {
	se.setEnd(engine.EndShutdown, engine.ShuttingDown, "geckohost stopped")
	if se.conn != nil {
		_ = se.conn.CloseNow()
		se.dropConn()
	}
	se.endWorker()
}

// dropConn forgets the (closed) WebSocket: no more frames either way.
func (se *session) dropConn() {
	se.conn = nil
	se.frames = nil
}

// endWorker asks the worker, if any, to close, without waiting: the relay
// loop reads its last events meanwhile. run waits for the closing goroutine.
func (se *session) endWorker() {
	if se.worker == nil || se.closing {
		return
	}
	se.closing = true
	w, s := se.worker, se.s
	se.closers.Add(1)
	go func() {
		defer se.closers.Done()
		ctx, cancel := context.WithTimeout(s.ctx, workerCloseTimeout)
		defer cancel()
		if err := w.Close(ctx); err != nil && s.ctx.Err() == nil {
			s.log.Warn("close worker", "worker", se.id, "err", err)
		}
	}()
}

// shuttingDown is the 304 a session gets when the host stops before it is
// connected: the one place that decides it.
func shuttingDown() *engine.Error {
	return engine.Errorf(engine.ShuttingDown, "geckohost is shutting down")
}

// engineError maps a StartWorker error to the client's error: 304 while
// the host stops (or the engine closed), a *engine.Error in the chain as
// is, a deadline as 302, else 301.
func (s *Server) engineError(err error) *engine.Error {
	var we *engine.Error
	switch {
	case errors.Is(err, engine.ErrClosed), s.stopCtx.Err() != nil && !errors.As(err, &we):
		return shuttingDown()
	case errors.As(err, &we):
		return we
	case errors.Is(err, context.DeadlineExceeded):
		return engine.Errorf(engine.GeckoTimeout, "no answer from the gecko within %s of the hello", s.opts.AnswerTimeout)
	}
	return engine.Errorf(engine.NoGeckoAvailable, "no gecko could take the worker: %v", err)
}

// endedError is what the client is told when its worker ended before it was
// connected; worker and client are the candidates each side offered (for
// a 305).
func endedError(ev engine.Event, worker, client *offered) *engine.Error {
	if ev.Err != nil {
		return ev.Err
	}
	detail := ""
	if ev.Detail != "" {
		detail = " " + ev.Detail
	}
	switch ev.Reason {
	case engine.EndShutdown:
		return shuttingDown()
	case engine.EndBrowserDied:
		return engine.Errorf(engine.GeckoCrashed, "the browser running the worker died%s (%s)", detail, ev.Reason)
	case engine.EndTabClosed:
		return engine.Errorf(engine.GeckoCrashed, "the worker's page was closed%s (%s)", detail, ev.Reason)
	case engine.EndContentCrashed:
		return engine.Errorf(engine.GeckoCrashed, "the browser's content process running the worker died%s (%s)", detail, ev.Reason)
	case engine.EndMemoryLimit, engine.EndCPULimit, engine.EndLifetime:
		return engine.Errorf(engine.WorkerLimitExceeded, "the worker went past a resource limit:%s (%s)", detail, ev.Reason)
	case engine.EndWorkerClosed:
		return engine.Errorf(engine.UncaughtExceptionInWorkerCode, "the worker closed itself before the data channel opened")
	case engine.EndICEFailed:
		return engine.Errorf(engine.PeerConnectionFailed, "%s", peerFailed(ev.Detail, worker, client))
	case engine.EndPeerClosed:
		return engine.Errorf(engine.GeckoTimeout, "the worker's peer connection ended before the data channel opened (%s)", ev.Reason)
	}
	why := string(ev.Reason)
	if why == "" {
		why = "no reason given"
	}
	return engine.Errorf(engine.GeckoCrashed, "the worker ended before it was connected (%s)%s", why, detail)
}
