package cluster

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/engine"
)

// served is a worker this node runs for another node's client: the
// serving side of the relay.
type served struct {
	n    *Node
	from string // the client's node
	sid  string // the worker id
	req  engine.WorkerRequest
	dl   time.Time // the front's answer deadline

	in  *mailbox[message]  // from dispatch: cands, close, detach; front-lost, stop
	out *mailbox[eventMsg] // to the front

	mu        sync.Mutex
	connected bool
	orphan    bool // the front is gone or detached: keep a connected worker, tell nobody
	counted   bool // counted in Node.negotiating
	w         engine.Worker
	closing   bool
	closers   sync.WaitGroup // the goroutine running w.Close
}

func servedKey(from, sid string) string { return from + "/" + sid }

// post hands a message to the session.
func (sv *served) post(m message) { sv.in.put(m) }

// serveStart takes a start message: the worker is started on the local
// engine unless the node is draining.
func (n *Node) serveStart(m message) {
	if m.Start == nil {
		return
	}
	sv := &served{n: n, from: m.From, sid: m.SID, in: newMailbox[message](), out: newMailbox[eventMsg](), counted: true,
		req: engine.WorkerRequest{WorkerID: m.SID, TokenID: m.Start.TokenID, TokenName: m.Start.TokenName, Source: m.Start.Source, Code: m.Start.Code, Offer: m.Start.Offer,
			Limits: engine.Limits{Memory: m.Start.MemoryLimit, Lifetime: time.Duration(m.Start.LifetimeMS) * time.Millisecond}},
		dl: time.UnixMilli(m.Start.Deadline)}
	key := servedKey(m.From, m.SID)
	n.mu.Lock()
	if _, dup := n.served[key]; dup {
		n.mu.Unlock()
		return
	}
	refuse := n.closed || n.draining.Load()
	if !refuse {
		n.served[key] = sv
		n.negotiating++
	}
	n.mu.Unlock()
	if refuse {
		n.reply(m.From, message{Type: msgRefused, SID: m.SID, Err: toErrMsg(engine.Errorf(engine.NoGeckoAvailable, "node %s is draining", n.opts.ID))})
		return
	}
	if !n.spawn(sv.run) {
		n.forgetServed(sv)
	}
}

func (n *Node) forgetServed(sv *served) {
	n.endNegotiation(&sv.counted, &sv.mu)
	n.mu.Lock()
	key := servedKey(sv.from, sv.sid)
	if n.served[key] == sv {
		delete(n.served, key)
	}
	n.mu.Unlock()
}

// startError is the refusal for a local StartWorker error.
func startError(node string, err error) *engine.Error {
	var we *engine.Error
	switch {
	case errors.As(err, &we):
		return we
	case errors.Is(err, engine.ErrClosed):
		return engine.Errorf(engine.NoGeckoAvailable, "node %s is stopping", node)
	case errors.Is(err, context.DeadlineExceeded):
		return engine.Errorf(engine.GeckoTimeout, "node %s did not start the worker in time", node)
	}
	return engine.Errorf(engine.NoGeckoAvailable, "node %s could not start the worker: %v", node, err)
}

// run starts the worker and relays until it ended.
func (sv *served) run() {
	n := sv.n
	defer n.forgetServed(sv)
	dl := sv.dl
	if dl.IsZero() || time.Until(dl) > time.Minute {
		dl = time.Now().Add(time.Minute)
	}
	ctx, cancel := context.WithDeadline(n.ctx, dl)
	w, err := n.opts.Local.StartWorker(ctx, sv.req)
	cancel()
	if err != nil {
		n.reply(sv.from, message{Type: msgRefused, SID: sv.sid, Err: startErrMsg(n.opts.ID, err)})
		return
	}
	sv.mu.Lock()
	sv.w = w
	sv.mu.Unlock()
	// The worker runs here: its count is this node's.
	n.trackLocal(sv.req.WorkerID, sv.req.TokenID)
	defer n.untrackLocal(sv.req.WorkerID, sv.req.TokenID, true)
	pctx, pcancel := context.WithTimeout(n.ctx, opTimeout)
	err = n.c.rdb.HSet(pctx, keyLive(sv.req.TokenID), sv.req.WorkerID, n.opts.ID).Err()
	var got int64
	if err == nil {
		got, err = n.send(pctx, sv.from, message{Type: msgStarted, SID: sv.sid})
	}
	pcancel()
	if err != nil || got == 0 {
		n.log.Warn("relayed worker: the client's node cannot be told; closing it", "node", n.opts.ID, "worker", sv.sid, "from", sv.from, "err", err)
		sv.closeWorker()
	}

	pubDone := make(chan struct{})
	stopPub := make(chan struct{})
	go func() {
		defer close(pubDone)
		sv.publish(stopPub)
	}()
	cands := newMailbox[[]engine.Candidate]()
	applyDone := make(chan struct{})
	stopApply := make(chan struct{})
	go func() {
		defer close(applyDone)
		sv.apply(cands, stopApply)
	}()
	sv.relay(w, cands)
	close(stopApply)
	<-applyDone
	close(stopPub)
	<-pubDone
	sv.closers.Wait()
}

// relay reads the worker's events (to the publisher) and the front's
// messages until the worker ended.
func (sv *served) relay(w engine.Worker, cands *mailbox[[]engine.Candidate]) {
	n := sv.n
	events := w.Events()
	var last engine.Event
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				sv.ended(last)
				return
			}
			last = ev
			switch ev.Kind {
			case engine.EventConnected:
				sv.mu.Lock()
				sv.connected = true
				sv.mu.Unlock()
				n.endNegotiation(&sv.counted, &sv.mu)
			case engine.EventEnded:
				n.endNegotiation(&sv.counted, &sv.mu)
			}
			sv.out.put(toEventMsg(ev))
		case <-sv.in.signal():
			for _, m := range sv.in.take() {
				sv.handle(m, cands)
			}
		}
	}
}

// handle applies one message from the front (or the node).
func (sv *served) handle(m message, cands *mailbox[[]engine.Candidate]) {
	sv.mu.Lock()
	connected, orphan := sv.connected, sv.orphan
	sv.mu.Unlock()
	switch m.Type {
	case msgCands:
		if !orphan && len(m.Cands) > 0 {
			cands.put(m.Cands)
		}
	case msgClose:
		if !orphan {
			sv.closeWorker()
		}
	case msgDetach, msgFrontLost:
		if connected {
			sv.mu.Lock()
			if !sv.orphan {
				sv.n.log.Info("relayed worker goes on without its client's node", "node", sv.n.opts.ID, "worker", sv.sid, "from", sv.from, "why", m.Type)
			}
			sv.orphan = true
			sv.mu.Unlock()
			return
		}
		sv.mu.Lock()
		sv.orphan = true
		sv.mu.Unlock()
		sv.closeWorker()
	case msgStop:
		sv.closeWorker()
	}
}

// closeWorker closes the worker from a goroutine of its own (the relay
// loop goes on reading its events).
func (sv *served) closeWorker() {
	sv.mu.Lock()
	if sv.closing || sv.w == nil {
		sv.mu.Unlock()
		return
	}
	sv.closing = true
	w := sv.w
	sv.mu.Unlock()
	sv.closers.Add(1)
	go func() {
		defer sv.closers.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.Close(ctx); err != nil {
			sv.n.log.Warn("close relayed worker", "node", sv.n.opts.ID, "worker", sv.sid, "err", err)
		}
	}()
}

// apply applies the front's candidates in order.
func (sv *served) apply(cands *mailbox[[]engine.Candidate], stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-cands.signal():
		}
		for _, batch := range cands.take() {
			sv.mu.Lock()
			w := sv.w
			sv.mu.Unlock()
			ctx, cancel := context.WithTimeout(sv.n.ctx, 10*time.Second)
			if err := w.AddCandidates(ctx, batch); err != nil {
				sv.n.log.Debug("add relayed candidates", "node", sv.n.opts.ID, "worker", sv.sid, "err", err)
			}
			cancel()
		}
	}
}

// publish sends the worker's events to the front, in order, each batch
// once the previous was taken. While Redis is unreachable it retries; a
// front that left the registry gets nothing more. After stop it sends
// what is left, for a bounded time.
func (sv *served) publish(stop <-chan struct{}) {
	n := sv.n
	var giveUp time.Time
	for {
		stopping := false
		select {
		case <-sv.out.signal():
		case <-stop:
			stopping = true
		}
		evs := sv.out.take()
		for len(evs) > 0 {
			sv.mu.Lock()
			orphan := sv.orphan
			sv.mu.Unlock()
			if orphan {
				break
			}
			got, err := n.send(n.ctx, sv.from, message{Type: msgEvents, SID: sv.sid, Events: evs})
			if err == nil && got > 0 {
				break
			}
			if err == nil && !n.alive(sv.from) {
				sv.post(message{Type: msgFrontLost})
				break
			}
			if stopping && giveUp.IsZero() {
				giveUp = time.Now().Add(10 * time.Second)
			}
			if n.ctx.Err() != nil || !giveUp.IsZero() && time.Now().After(giveUp) {
				n.log.Warn("relayed worker events lost", "node", n.opts.ID, "worker", sv.sid, "from", sv.from, "err", err)
				break
			}
			select {
			case <-n.ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			evs = append(evs, sv.out.take()...)
		}
		if stopping {
			return
		}
	}
}

// ended handles the worker's end: an orphan's end is recorded in the
// cluster's stream (its client's node cannot record it).
func (sv *served) ended(last engine.Event) {
	sv.mu.Lock()
	orphan, connected := sv.orphan, sv.connected
	sv.mu.Unlock()
	if !orphan || !connected {
		return
	}
	reason := string(last.Reason)
	if last.Kind != engine.EventEnded || reason == "" {
		reason = string(engine.EndWorkerClosed)
	}
	rec := SessionRecord{Front: sv.from, Session: domain.Session{
		WorkerID: sv.sid, TokenID: sv.req.TokenID, TokenName: sv.req.TokenName, Source: sv.req.Source,
		State: domain.StateEnded, Ended: time.Now(), EndReason: reason, NodeID: sv.n.opts.ID, Engine: sv.n.opts.Engine}}
	if last.Err != nil {
		rec.Errno, rec.Reason = int(last.Err.Errno), last.Err.Reason
	}
	sv.n.records.put(rec)
}
