package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/geckohost/geckohost/engine"
)

// maxAttempts bounds how many nodes one hello is offered to.
const maxAttempts = 3

// Engine is a Node's engine.Engine: it runs each worker on the node whose
// Local engine suits it, this one or another, and relays the other's
// events. Routing, for a hello taken by this node:
//
//  1. the node with most of the token's live workers, while it has room
//     (affinity: a token's workers share one browser's storage);
//  2. this node, when the token has no live worker elsewhere and it has
//     room;
//  3. the least loaded ready node with room (workers / capacity).
//
// A node that refuses (full: 301, stopping) or is not listening is skipped
// for the next, up to three nodes. Draining nodes get no workers.
type Engine struct {
	n *Node
}

var _ engine.Engine = (*Engine)(nil)

// Ready implements engine.Engine: nil when Redis answers, the node is not
// draining and its own engine is ready.
func (e *Engine) Ready() error { return e.n.Ready() }

// StartWorker implements engine.Engine. It fails with a 301 "cluster store
// unreachable" while Redis does not answer, with a 301 and
// engine.ErrNoCapacity when every node is full or starting (host's queue
// then tries again), and with engine.ErrClosed once the node is closed.
func (e *Engine) StartWorker(ctx context.Context, req engine.WorkerRequest) (engine.Worker, error) {
	n := e.n
	n.mu.Lock()
	closed := n.closed
	tokenNodes, ok := n.reserved[req.WorkerID]
	delete(n.reserved, req.WorkerID)
	n.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("start worker: %w", engine.ErrClosed)
	}
	if !n.healthy.Load() {
		return nil, n.unhealthyError("start worker")
	}
	if !ok {
		var err error
		if tokenNodes, err = n.tokenNodes(ctx, req.TokenID, req.WorkerID); err != nil {
			return nil, err
		}
	}
	plan := n.route(tokenNodes)
	n.log.Debug("route a worker", "node", n.opts.ID, "worker", req.WorkerID, "token", req.TokenName, "token_nodes", tokenNodes, "plan", plan)
	if len(plan) == 0 {
		return nil, engine.NoCapacity("no node can take the worker: every node is full, draining or starting")
	}
	var errs []error
	capacity := true // every refusal may pass by itself
	for _, node := range plan {
		var (
			w   engine.Worker
			err error
		)
		if node == n.opts.ID {
			w, err = n.startLocal(ctx, req)
		} else {
			w, err = n.startRemote(ctx, node, req)
		}
		if err == nil {
			return w, nil
		}
		if ctx.Err() != nil || !retryable(err) {
			return nil, err
		}
		n.log.Debug("node refused a worker", "node", n.opts.ID, "worker", req.WorkerID, "to", node, "err", err)
		errs = append(errs, fmt.Errorf("%s: %w", node, err))
		if !errors.Is(err, engine.ErrNoCapacity) && !errors.Is(err, errNotListening) {
			capacity = false
		}
	}
	why := errors.Join(errs...).Error()
	switch {
	case capacity:
		return nil, engine.NoCapacity("no node has room for the worker (%s)", strings.ReplaceAll(why, "\n", "; "))
	case len(errs) == 1:
		return nil, errs[0]
	}
	return nil, engine.Errorf(engine.NoGeckoAvailable, "no node could take the worker (%s)", strings.ReplaceAll(why, "\n", "; "))
}

// retryable reports whether another node may take a worker this error
// refused.
func retryable(err error) bool {
	var we *engine.Error
	if errors.As(err, &we) {
		return we.Errno == engine.NoGeckoAvailable && !errors.Is(err, ErrUnreachable) || we.Errno == engine.ShuttingDown
	}
	return errors.Is(err, errNotListening)
}

// candidate is one node as routing sees it.
type candidate struct {
	id      string
	info    NodeInfo
	self    bool
	workers int // the token's live workers there
}

// route returns the nodes to offer a worker to, best first.
func (n *Node) route(tokenNodes map[string]int) []string {
	self := n.opts.ID
	var cands []candidate
	if !n.draining.Load() && n.opts.Local.Ready() == nil {
		ni := NodeInfo{ID: self, State: StateReady, Workers: 0, Capacity: 1}
		if ld, ok := n.load(); ok {
			ni.Workers, ni.Capacity = ld.Workers, ld.Capacity
		}
		cands = append(cands, candidate{id: self, info: ni, self: true, workers: tokenNodes[self]})
	}
	elsewhere := false
	n.mu.Lock()
	for id, ni := range n.view {
		ni.Workers += n.pending[id]
		if tokenNodes[id] > 0 {
			elsewhere = true
		}
		cands = append(cands, candidate{id: id, info: ni, workers: tokenNodes[id]})
	}
	n.mu.Unlock()
	var plan []string
	add := func(id string) {
		if !slices.Contains(plan, id) && len(plan) < maxAttempts {
			plan = append(plan, id)
		}
	}
	// 1. Affinity.
	aff := slices.Clone(cands)
	slices.SortFunc(aff, func(a, b candidate) int {
		if c := cmp.Compare(b.workers, a.workers); c != 0 {
			return c
		}
		return compareLoad(a, b)
	})
	for _, c := range aff {
		// The registry's load figures may be a heartbeat old: the token's
		// node is asked even when they say it is full (it refuses with a
		// capacity 301 if it is, and the next node is asked).
		if c.workers > 0 && c.info.State == StateReady {
			add(c.id)
		}
	}
	// 2. This node, when the token has no live worker elsewhere.
	for _, c := range cands {
		if c.self && !elsewhere && c.info.room() {
			add(c.id)
		}
	}
	// 3. The least loaded.
	slices.SortFunc(cands, compareLoad)
	for _, c := range cands {
		if c.info.room() {
			add(c.id)
		}
	}
	return plan
}

// compareLoad orders nodes least loaded first; this node first on a tie.
func compareLoad(a, b candidate) int {
	if c := cmp.Compare(a.info.load(), b.info.load()); c != 0 {
		return c
	}
	if c := cmp.Compare(a.info.Workers, b.info.Workers); c != 0 {
		return c
	}
	if a.self != b.self {
		if a.self {
			return -1
		}
		return 1
	}
	return cmp.Compare(a.id, b.id)
}

// startLocal starts the worker on this node's engine.
func (n *Node) startLocal(ctx context.Context, req engine.WorkerRequest) (engine.Worker, error) {
	w, err := n.opts.Local.StartWorker(ctx, req)
	if err != nil {
		return nil, err
	}
	lw := &localWorker{n: n, w: w, id: req.WorkerID, tokenID: req.TokenID, events: make(chan engine.Event), counted: true}
	n.mu.Lock()
	n.placed[req.WorkerID] = placement{node: n.opts.ID, engine: n.opts.Engine}
	n.negotiating++
	n.mu.Unlock()
	n.trackLocal(req.WorkerID, req.TokenID)
	if !n.spawn(lw.loop) {
		n.endNegotiation(&lw.counted, &lw.mu)
		n.untrackLocal(req.WorkerID, req.TokenID, false)
		cctx, cancel := context.WithTimeout(context.Background(), workerCloseTimeout)
		defer cancel()
		_ = w.Close(cctx)
		return nil, fmt.Errorf("start worker: %w", engine.ErrClosed)
	}
	return lw, nil
}

// workerCloseTimeout bounds closing a worker the node gives up on.
const workerCloseTimeout = 10 * time.Second

// localWorker is a worker of this node's client on this node's engine: the
// engine's worker, watched for the node's negotiating count.
type localWorker struct {
	n       *Node
	w       engine.Worker
	id      string
	tokenID int64
	events  chan engine.Event

	mu      sync.Mutex
	counted bool
}

func (lw *localWorker) loop() {
	n := lw.n
	defer func() {
		n.endNegotiation(&lw.counted, &lw.mu)
		n.untrackLocal(lw.id, lw.tokenID, false)
		close(lw.events)
	}()
	for ev := range lw.w.Events() {
		if ev.Kind == engine.EventConnected || ev.Kind == engine.EventEnded {
			n.endNegotiation(&lw.counted, &lw.mu)
		}
		select {
		case lw.events <- ev:
		case <-n.ctx.Done():
			// The node closed under a host that stopped reading: close
			// the worker and drain its events until it ended.
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), workerCloseTimeout)
				defer cancel()
				_ = lw.w.Close(ctx)
			}()
			for range lw.w.Events() {
			}
			return
		}
	}
}

// Events implements engine.Worker.
func (lw *localWorker) Events() <-chan engine.Event { return lw.events }

// AddCandidates implements engine.Worker.
func (lw *localWorker) AddCandidates(ctx context.Context, cs []engine.Candidate) error {
	return lw.w.AddCandidates(ctx, cs)
}

// Close implements engine.Worker.
func (lw *localWorker) Close(ctx context.Context) error { return lw.w.Close(ctx) }
