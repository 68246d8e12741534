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

// phase is where a session is in its one loop (session.loop).
type phase int

const (
	phaseHello     phase = iota // waiting for the client-hello
	phaseFetching               // fetching the worker's source
	phaseQueued                 // waiting in the hello queue for a browser
	phaseStarting               // Engine.StartWorker is running
	phaseRelaying               // the worker exists, not yet connected
	phaseConnected              // "connected" sent; the worker's events are read for the record
)

// loopState is what the session loop waits for. It is the loop's alone.
type loopState struct {
	phase                             phase
	helloT, answerT, connectT, queueT alarm
	closeT                            alarm // armed once the worker is asked to close
	answerDeadline                    time.Time
	req                               engine.WorkerRequest
	cancel                            context.CancelFunc // ends the fetch or StartWorker in flight
	fetched                           chan fetchResult   // the fetch in flight, if any
	started                           chan startResult   // the StartWorker in flight, if any
	ticket                            *ticket            // the hello's place in the queue
	noCapacity                        error              // the engine's last capacity refusal
	events                            <-chan engine.Event
	answered, ended                   bool
	pending                           []engine.Candidate // client candidates not yet applied
	candidates                        int                // client candidates read
	apply                             chan []engine.Candidate
	applied                           chan struct{} // closed when the applier returns
	stopApply                         context.CancelFunc
}

type fetchResult struct {
	code string
	err  *engine.Error
	late bool // the fetch's context had ended
}

type startResult struct {
	w    engine.Worker
	err  error
	late bool // StartWorker's context had ended
}

// alarm is a timer the loop selects on: C is nil while it is not armed.
type alarm struct {
	t *time.Timer
	C <-chan time.Time
}

func (a *alarm) set(d time.Duration) {
	a.stop()
	a.t = time.NewTimer(d)
	a.C = a.t.C
}

func (a *alarm) stop() {
	if a.t != nil {
		a.t.Stop()
		a.t, a.C = nil, nil
	}
}

// loop is the session's one loop, from the accept to the worker's end:
// client frames, timers, the fetch's and the engine's results, worker
// events, stop and hard stop are all handled here, by phase. It returns
// once the session is over and nothing it started is in flight.
func (se *session) loop() {
	s, ls := se.s, &se.ls
	ls.helloT.set(s.opts.HelloTimeout)
	defer se.stopLoop()
	stop := s.stopCtx.Done()
	for !se.over() {
		select {
		case ls.applyC(se) <- ls.pending:
			ls.pending = nil
		case res := <-se.frames:
			se.onFrame(res)
		case res := <-ls.fetched:
			se.onFetched(res)
		case <-ls.turn(se):
			se.start()
		case res := <-ls.started:
			se.onStarted(res)
		case ev, ok := <-ls.events:
			se.onEvent(ev, ok)
		case <-ls.helloT.C:
			se.end(failure(engine.Errorf(engine.InvalidMessage, "no client-hello within %s", s.opts.HelloTimeout)))
		case <-ls.queueT.C:
			se.end(failure(se.queueTimedOut()))
		case <-ls.answerT.C:
			se.end(ending{kind: endNoAnswer})
		case <-ls.connectT.C:
			se.end(ending{kind: endNotConnected})
		case <-ls.closeT.C:
			s.log.Warn("worker did not end after close", "worker", se.id)
			return
		case <-stop:
			stop = nil
			se.end(ending{kind: endStop})
		case <-se.ctx.Done():
			// Shutdown ran out of time: stop waiting for the engine.
			se.end(ending{kind: endHardStop})
			return
		}
	}
}

// over reports whether the loop is done: the end is decided, no fetch or
// StartWorker is in flight, and the worker (if any) sent its last event.
func (se *session) over() bool {
	ls := &se.ls
	return se.endReason != "" && ls.fetched == nil && ls.started == nil && ls.events == nil
}

// stopLoop waits for what the loop started: the fetch or StartWorker in
// flight (a worker it returns is closed), the queue place, the applier.
func (se *session) stopLoop() {
	ls := &se.ls
	se.stopWork()
	if ls.fetched != nil {
		<-ls.fetched
	}
	if ls.started != nil {
		if res := <-ls.started; res.w != nil {
			se.adopt(res.w)
			se.endWorker()
		}
	}
	for _, a := range []*alarm{&ls.helloT, &ls.answerT, &ls.connectT, &ls.queueT, &ls.closeT} {
		a.stop()
	}
	if ls.apply != nil {
		close(ls.apply)
		ls.stopApply()
		<-ls.applied
	}
	if se.worker != nil {
		se.dropRelayPeers() // the worker ended (turnperm.go)
	}
}

// stopWork cancels the fetch or StartWorker in flight and leaves the queue.
func (se *session) stopWork() {
	if se.ls.cancel != nil {
		se.ls.cancel()
	}
	se.leaveQueue()
}

// onFrame handles one client frame (or the read's failure).
func (se *session) onFrame(res readResult) {
	if se.ls.phase != phaseHello {
		se.clientFrame(res)
		return
	}
	se.ls.helloT.stop()
	switch {
	case res.err != nil:
		se.readFailed(res.err)
	case res.frame.Kind != wire.FrameHello:
		se.end(failure(engine.Errorf(engine.InvalidMessage, "the first frame must be a client-hello, got %s", res.frame.Kind)))
	default:
		se.admit(res.frame.Hello)
	}
}

// admit runs the hello's checks (admit.go) and starts fetching the source.
func (se *session) admit(hello wire.ClientHello) {
	s := se.s
	se.id = newWorkerID()
	se.helloAt = time.Now()
	se.source = hello.Source
	se.clientICE.browser = se.origin != ""
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
		se.end(failure(werr))
		return
	}
	se.recorded = true
	se.save()
	u, werr := s.checkSource(se.r, tok, hello.Source)
	if werr == nil {
		werr = checkOffer(hello.Offer)
	}
	if werr == nil {
		werr = s.reserve(se.ctx, tok, se.id)
	}
	if werr != nil {
		se.end(failure(werr))
		return
	}
	se.counted = true
	offer := se.deferOfferCandidates(hello.Offer)
	se.ls.answerDeadline = se.helloAt.Add(s.opts.AnswerTimeout)
	se.ls.answerT.set(s.opts.AnswerTimeout)
	se.ls.req = engine.WorkerRequest{
		WorkerID: se.id, TokenID: tok.ID, TokenName: tok.Name, Source: hello.Source, Offer: offer,
		ICEServers: s.iceServers(tok, true),
		Limits:     engine.Limits{Memory: tok.WorkerMemory, Lifetime: tok.WorkerLifetime},
	}
	se.fetch(u)
}

// fetch fetches the worker's code in a goroutine; the loop goes on reading
// the client's frames (candidates are kept for the worker).
func (se *session) fetch(u *url.URL) {
	ls := &se.ls
	ctx, cancel := context.WithDeadline(se.ctx, ls.answerDeadline)
	done := make(chan fetchResult, 1)
	ls.phase, ls.cancel, ls.fetched = phaseFetching, cancel, done
	s, r, tok := se.s, se.r, se.token
	go func() {
		code, err := s.fetchSource(ctx, r, tok, u)
		done <- fetchResult{code: code, err: err, late: ctx.Err() != nil}
	}()
}

// onFetched takes the fetch's result: the engine is asked for the worker
// (or the hello queues behind others already waiting).
func (se *session) onFetched(res fetchResult) {
	ls := &se.ls
	ls.fetched = nil
	ls.cancel()
	switch {
	case se.endReason != "":
		return
	case res.err != nil && res.late && !time.Now().Before(ls.answerDeadline):
		se.end(ending{kind: endNoAnswer, while: "fetching the source"})
		return
	case res.err != nil:
		se.end(failure(res.err))
		return
	}
	ls.req.Code = res.code
	if q := se.s.queue; q.enabled() && q.busy() {
		se.queueUp()
		return
	}
	se.start()
}

// start runs Engine.StartWorker in a goroutine (bounded by the answer
// deadline; the loop goes on reading the client's frames).
func (se *session) start() {
	ls := &se.ls
	ctx, cancel := context.WithDeadline(se.ctx, ls.answerDeadline)
	done := make(chan startResult, 1)
	ls.phase, ls.cancel, ls.started = phaseStarting, cancel, done
	eng, req := se.s.opts.Engine, ls.req
	go func() {
		w, err := eng.StartWorker(ctx, req)
		done <- startResult{w: w, err: err, late: ctx.Err() != nil}
	}()
}

// onStarted takes StartWorker's result: the worker, a wait in the queue
// (no capacity), or the session's end.
func (se *session) onStarted(res startResult) {
	ls, q := &se.ls, se.s.queue
	ls.started = nil
	ls.cancel()
	switch {
	case res.w != nil:
		se.queueStarted()
		se.adopt(res.w)
		if se.endReason != "" {
			se.endWorker() // the session ended meanwhile
		}
	case se.endReason != "":
	case q.enabled() && errors.Is(res.err, engine.ErrNoCapacity) && !res.late:
		ls.noCapacity = res.err
		if ls.ticket == nil {
			se.queueUp()
			return
		}
		ls.phase = phaseQueued
		q.full(ls.ticket)
	default:
		se.queueStarted()
		se.end(ending{kind: endStartFailed, startErr: res.err})
	}
}

// adopt makes w the session's worker and starts the applier of client
// candidates.
func (se *session) adopt(w engine.Worker) {
	ls := &se.ls
	se.worker = w
	ls.phase, ls.events = phaseRelaying, w.Events()
	apply, done := make(chan []engine.Candidate), make(chan struct{})
	ctx, cancel := context.WithCancel(se.ctx)
	ls.apply, ls.applied, ls.stopApply = apply, done, cancel
	log, id := se.s.log, se.id
	go func() {
		defer close(done)
		for batch := range apply {
			if err := w.AddCandidates(ctx, batch); err != nil {
				log.Debug("add client candidates", "worker", id, "count", len(batch), "err", err)
			}
		}
	}()
}

// applyC is the applier's channel when client candidates are pending and
// the worker has answered; else nil.
func (ls *loopState) applyC(se *session) chan []engine.Candidate {
	if ls.apply != nil && ls.answered && !se.closing && len(ls.pending) > 0 {
		return ls.apply
	}
	return nil
}

// onEvent relays one worker event (ok false: its channel closed).
func (se *session) onEvent(ev engine.Event, ok bool) {
	ls := &se.ls
	if !ok {
		ls.events = nil
		if !ls.ended { // closed without EventEnded
			se.end(ending{kind: endWorker, ev: engine.Event{Kind: engine.EventEnded, Reason: engine.EndWorkerGone}})
		}
		return
	}
	switch ev.Kind {
	case engine.EventAnswer:
		se.onAnswer(ev.Answer)
	case engine.EventCandidate:
		se.addRelayPeer(ev.Candidate.Candidate)
		if se.workerICE.add(ev.Candidate.Candidate, !se.localClient) && !se.localClient {
			return
		}
		if !se.closing && ls.phase != phaseConnected {
			se.send(wire.NewWorkerCandidate(se.id, ev.Candidate))
		}
	case engine.EventConnected:
		if ls.phase == phaseConnected || se.closing {
			return
		}
		ls.phase = phaseConnected
		ls.connectT.stop()
		// Client candidates read before this are still handed over (the
		// protocol drops none); none come after it: the WebSocket closes.
		se.connected()
	case engine.EventEnded:
		ls.ended = true
		se.egressRefused = ev.EgressRefused
		se.end(ending{kind: endWorker, ev: ev})
	}
}

// onAnswer records the worker's answer and sends the worker-hello.
func (se *session) onAnswer(answer string) {
	ls := &se.ls
	if ls.answered || se.closing {
		return
	}
	ls.answered = true
	ls.answerT.stop()
	se.answerAt = time.Now()
	se.countAnswer()
	se.state = stateAnswered
	se.save()
	se.workerICE.addSDP(answer, !se.localClient)
	se.addRelayPeers(answer)
	if !se.localClient {
		answer = dropLoopbackCandidates(answer)
	}
	if se.send(wire.NewWorkerHello(se.id, answer)) {
		ls.connectT.set(se.s.opts.ConnectTimeout)
	}
}

// clientFrame handles a client frame after the hello: a candidate is kept
// for the worker, anything else ends the session.
func (se *session) clientFrame(res readResult) {
	ls := &se.ls
	switch {
	case res.err != nil:
		se.readFailed(res.err)
	case res.frame.Kind != wire.FrameCandidate:
		se.end(failure(engine.Errorf(engine.InvalidMessage, "unexpected %s after the client-hello", res.frame.Kind)))
	case ls.candidates >= maxCandidates:
		se.end(failure(engine.Errorf(engine.InvalidMessage, "more than %d ICE candidates", maxCandidates)))
	default:
		ls.candidates++
		c := res.frame.Candidate
		// A client on another machine has no use for our loopback, nor the
		// worker for its: not passed on.
		if se.clientICE.add(c.Candidate, !se.localClient) && !se.localClient {
			return
		}
		ls.pending = append(ls.pending, c)
	}
}

// connected records the connection, sends "connected" and closes the
// WebSocket normally; the worker goes on peer to peer. When the server is
// stopping, the session ends (outcome decides how).
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
		se.end(ending{kind: endStop})
	}
}

// end ends the session for what happened, once (the first end wins):
// session.outcome decides the errno, end reason and close code; the client
// is told, the work in flight stopped and the worker closed.
func (se *session) end(what ending) {
	if se.endReason != "" {
		return
	}
	o := se.outcome(what)
	se.endReason, se.errno, se.reason = o.end, o.errno, o.reason
	ls := &se.ls
	for _, a := range []*alarm{&ls.helloT, &ls.answerT, &ls.connectT, &ls.queueT} {
		a.stop()
	}
	se.stopWork()
	se.tell(o)
	se.endWorker()
}

// tell sends the outcome's worker-error and closes the WebSocket with its
// code (drops it when the code is 0).
func (se *session) tell(o outcome) {
	if se.conn == nil {
		return
	}
	err := errors.New("no frame")
	if o.code != 0 {
		var b []byte
		b, err = json.Marshal(wire.NewWorkerError(se.id, &engine.Error{Errno: o.errno, Reason: o.reason}))
		if err == nil {
			ctx, cancel := context.WithTimeout(se.ctx, writeFrameTimeout)
			err = se.conn.Write(ctx, websocket.MessageText, b)
			cancel()
		}
	}
	if err == nil {
		_ = se.conn.Close(o.code, o.errno.String())
	} else {
		_ = se.conn.CloseNow()
	}
	se.dropConn()
}

// send writes one frame; false means the client is gone (the session
// ended "client-left").
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
		se.end(ending{kind: endClientLeft})
		return false
	}
	return true
}

// readFailed handles a read error: a bad frame (103) or the client leaving.
func (se *session) readFailed(err error) {
	var we *engine.Error
	if errors.As(err, &we) {
		se.end(failure(we))
		return
	}
	se.s.log.Debug("client left", "worker", se.id, "remote", se.remote, "err", err)
	se.end(ending{kind: endClientLeft})
}

// dropConn forgets the (closed) WebSocket: no more frames either way.
func (se *session) dropConn() {
	se.conn = nil
	se.frames = nil
}

// endWorker asks the worker, if any, to close, without waiting: the loop
// reads its last events meanwhile (for at most workerCloseTimeout and a
// second). run waits for the closing goroutine.
func (se *session) endWorker() {
	if se.worker == nil || se.closing {
		return
	}
	se.closing = true
	se.ls.closeT.set(workerCloseTimeout + time.Second)
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
