package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/geckohost/geckohost/engine"
)

// errNotListening: the chosen node is not subscribed to its channel (it is
// gone or restarting); the hello goes to the next node.
var errNotListening = errors.New("node not listening")

// remoteWorker is, on the client's node, a worker running on another node:
// an engine.Worker whose events arrive over the relay.
type remoteWorker struct {
	n    *Node
	node string // the node running the worker
	sid  string // the worker id

	reply  chan message // the first answer: started or refused (capacity 1)
	in     *mailbox[message]
	events chan engine.Event
	done   chan struct{} // closed when loop returns (events closed)

	lostOnce sync.Once
	lost     chan struct{} // closed when the node left the registry
	lostWhy  error

	closeOnce sync.Once
	kill      chan struct{} // closed to abandon the worker
	killOnce  sync.Once

	mu        sync.Mutex
	connected bool
	ended     bool
	counted   bool // counted in Node.negotiating
}

func (n *Node) newRemote(node, sid string) *remoteWorker {
	return &remoteWorker{n: n, node: node, sid: sid, reply: make(chan message, 1), in: newMailbox[message](),
		events: make(chan engine.Event), done: make(chan struct{}), lost: make(chan struct{}), kill: make(chan struct{})}
}

// post hands a relay message to the worker (from dispatch).
func (rw *remoteWorker) post(m message) {
	if m.Type == msgStarted || m.Type == msgRefused {
		select {
		case rw.reply <- m:
		default:
		}
		return
	}
	rw.in.put(m)
}

// markLost tells the worker its node is gone.
func (rw *remoteWorker) markLost(why error) {
	rw.lostOnce.Do(func() {
		rw.lostWhy = why
		close(rw.lost)
	})
}

// startRemote asks node to run req and returns the worker once it exists.
// Errors that let another node be tried: errNotListening, a refusal with
// 301 or 304. A node that leaves the registry after it got the request
// lost the worker (engine.ErrWorkerLost).
func (n *Node) startRemote(ctx context.Context, node string, req engine.WorkerRequest) (engine.Worker, error) {
	rw := n.newRemote(node, req.WorkerID)
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, fmt.Errorf("start worker: %w", engine.ErrClosed)
	}
	n.remotes[req.WorkerID] = rw
	n.mu.Unlock()
	forget := func() {
		n.mu.Lock()
		if n.remotes[req.WorkerID] == rw {
			delete(n.remotes, req.WorkerID)
		}
		n.mu.Unlock()
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(30 * time.Second)
	}
	got, err := n.send(ctx, node, message{Type: msgStart, SID: req.WorkerID, Start: &startMsg{
		TokenID: req.TokenID, TokenName: req.TokenName, Source: req.Source, Code: req.Code, Offer: req.Offer, Deadline: deadline.UnixMilli(),
		MemoryLimit: req.Limits.Memory, LifetimeMS: req.Limits.Lifetime.Milliseconds()}})
	if err != nil {
		forget()
		return nil, err
	}
	if got == 0 {
		forget()
		return nil, fmt.Errorf("relay to node %s: %w", node, errNotListening)
	}
	select {
	case m := <-rw.reply:
		if m.Type == msgRefused {
			forget()
			if m.Err == nil {
				return nil, engine.Errorf(engine.NoGeckoAvailable, "node %s refused the worker", node)
			}
			return nil, m.Err.refusal()
		}
	case <-rw.lost:
		// The node took the request and died: the worker died with it.
		forget()
		return nil, fmt.Errorf("start worker on node %s: %w: the node running it is gone: %v", node, engine.ErrWorkerLost, rw.lostWhy)
	case <-ctx.Done():
		forget()
		n.closeRemote(node, req.WorkerID)
		return nil, fmt.Errorf("start worker on node %s: %w", node, ctx.Err())
	}
	n.mu.Lock()
	n.placed[req.WorkerID] = placement{node: node, engine: n.view[node].Engine}
	n.remoteOwned[req.WorkerID] = true
	n.pending[node]++
	n.negotiating++
	rw.counted = true
	n.mu.Unlock()
	if !n.spawn(rw.loop) {
		n.endNegotiation(&rw.counted, &rw.mu)
		forget()
		n.closeRemote(node, req.WorkerID)
		return nil, fmt.Errorf("start worker: %w", engine.ErrClosed)
	}
	return rw, nil
}

// closeRemote tells node to close a worker, now or, when Redis does not
// take it, from the heartbeat loop later.
func (n *Node) closeRemote(node, sid string) {
	n.spawn(func() {
		if _, err := n.send(n.ctx, node, message{Type: msgClose, SID: sid}); err != nil {
			n.mu.Lock()
			n.closes[sid] = node
			n.mu.Unlock()
		}
	})
}

// retryCloses sends the relay closes that failed.
func (n *Node) retryCloses(ctx context.Context) {
	n.mu.Lock()
	todo := make(map[string]string, len(n.closes))
	for sid, node := range n.closes {
		if _, ok := n.view[node]; ok {
			todo[sid] = node
		}
		delete(n.closes, sid) // a node that left has no worker to close
	}
	n.mu.Unlock()
	for sid, node := range todo {
		if _, err := n.send(ctx, node, message{Type: msgClose, SID: sid}); err != nil {
			n.mu.Lock()
			n.closes[sid] = node
			n.mu.Unlock()
		}
	}
}

// endNegotiation uncounts a session from Node.negotiating, once.
func (n *Node) endNegotiation(counted *bool, mu *sync.Mutex) {
	mu.Lock()
	was := *counted
	*counted = false
	mu.Unlock()
	if was {
		n.mu.Lock()
		n.negotiating--
		n.mu.Unlock()
	}
}

// loop turns relay messages into events until the worker ended.
func (rw *remoteWorker) loop() {
	n := rw.n
	defer func() {
		n.endNegotiation(&rw.counted, &rw.mu)
		n.mu.Lock()
		if n.remotes[rw.sid] == rw {
			delete(n.remotes, rw.sid)
		}
		n.mu.Unlock()
		close(rw.events)
		close(rw.done)
	}()
	for {
		select {
		case <-rw.in.signal():
			for _, m := range rw.in.take() {
				if rw.handle(m) {
					return
				}
			}
		case <-rw.lost:
			rw.deliver(rw.lostEvent())
			return
		case <-rw.kill:
			return
		case <-n.ctx.Done():
			return
		}
	}
}

// handle applies one message; true when the worker ended.
func (rw *remoteWorker) handle(m message) bool {
	switch m.Type {
	case msgEvents:
		for _, em := range m.Events {
			ev, ok := em.event()
			if !ok {
				continue
			}
			if !rw.deliver(ev) || ev.Kind == engine.EventEnded {
				return true
			}
		}
	case msgGone:
		rw.deliver(engine.Event{Kind: engine.EventEnded, Reason: engine.EndBrowserDied,
			Detail: fmt.Sprintf("with the node running it: node %s does not know the worker (restarted?)", rw.node)})
		return true
	case msgDetached:
		rw.deliver(engine.Event{Kind: engine.EventEnded, Reason: engine.EndClosed, Detail: "detached from node " + rw.node})
		return true
	case msgCut:
		rw.deliver(engine.Event{Kind: engine.EventEnded, Reason: engine.EndClosed, Detail: "node " + rw.node + " unreachable"})
		return true
	}
	return false
}

// lostEvent is the end of a worker lost with its node: a fact (the
// browser died, with its node); host decides what the client is told.
func (rw *remoteWorker) lostEvent() engine.Event {
	why := "node " + rw.node + " is gone"
	if rw.lostWhy != nil {
		why = rw.lostWhy.Error()
	}
	return engine.Event{Kind: engine.EventEnded, Reason: engine.EndBrowserDied, Detail: "with the node running it: " + why}
}

// deliver hands ev to the host; false when the worker was abandoned.
func (rw *remoteWorker) deliver(ev engine.Event) bool {
	rw.mu.Lock()
	if rw.ended {
		rw.mu.Unlock()
		return false
	}
	switch ev.Kind {
	case engine.EventConnected:
		rw.connected = true
	case engine.EventEnded:
		rw.ended = true
	}
	rw.mu.Unlock()
	if ev.Kind == engine.EventConnected || ev.Kind == engine.EventEnded {
		rw.n.endNegotiation(&rw.counted, &rw.mu)
	}
	select {
	case rw.events <- ev:
		return true
	case <-rw.kill:
	case <-rw.n.ctx.Done():
	}
	return false
}

// Events implements engine.Worker.
func (rw *remoteWorker) Events() <-chan engine.Event { return rw.events }

// AddCandidates implements engine.Worker: the candidates are relayed to the
// worker's node, in order.
func (rw *remoteWorker) AddCandidates(ctx context.Context, cs []engine.Candidate) error {
	got, err := rw.n.send(ctx, rw.node, message{Type: msgCands, SID: rw.sid, Cands: cs})
	if err != nil {
		return fmt.Errorf("relay candidates: %w", err)
	}
	if got == 0 {
		return fmt.Errorf("relay candidates to node %s: %w", rw.node, errNotListening)
	}
	return nil
}

// Close implements engine.Worker. A connected worker is detached, not
// closed: it goes on peer to peer on its node (the host closes a connected
// worker only when it shuts down). A worker still negotiating is closed on
// its node; when that node cannot be reached the worker is given up here
// (and its node told later).
func (rw *remoteWorker) Close(ctx context.Context) error {
	n := rw.n
	rw.closeOnce.Do(func() {
		rw.mu.Lock()
		connected, ended := rw.connected, rw.ended
		rw.mu.Unlock()
		if ended {
			return
		}
		if connected {
			if _, err := n.send(ctx, rw.node, message{Type: msgDetach, SID: rw.sid}); err != nil {
				n.log.Warn("detach a relayed worker", "node", n.opts.ID, "worker", rw.sid, "on", rw.node, "err", err)
			}
			rw.in.put(message{Type: msgDetached})
			return
		}
		got, err := n.send(ctx, rw.node, message{Type: msgClose, SID: rw.sid})
		if err != nil || got == 0 {
			if err != nil {
				n.mu.Lock()
				n.closes[rw.sid] = rw.node
				n.mu.Unlock()
			}
			rw.in.put(message{Type: msgCut})
		}
	})
	select {
	case <-rw.done:
		return nil
	case <-ctx.Done():
		rw.killOnce.Do(func() { close(rw.kill) })
		<-rw.done
		return fmt.Errorf("close relayed worker %s on node %s: %w", rw.sid, rw.node, ctx.Err())
	}
}
