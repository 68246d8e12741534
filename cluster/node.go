package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/engine"
)

// Load is what a node's own engine runs and can run.
type Load struct {
	// Browsers is the number of running browsers.
	Browsers int
	// Workers is the number of live workers (reserved or running).
	Workers int
	// Capacity is the most workers the engine runs at once.
	Capacity int
}

// Recorder receives a node's session records (its SQLite store).
type Recorder interface {
	SaveSession(ctx context.Context, s domain.Session) error
}

// Options configure a Node. Client, ID and Local are required; every
// other field's zero value works.
type Options struct {
	// Client is the connection to the cluster's Redis. The Node does not
	// close it.
	Client *Client
	// ID names the node (serve --node-id); unique among live nodes.
	ID string
	// Local is the node's own engine (the Firefox pool).
	Local engine.Engine
	// Load reports the local engine's load; nil means unknown (the node
	// then tries its own engine first and relays when it refuses).
	Load func() Load
	// Records receives the session records (the node's SQLite); nil: the
	// records go to the cluster's stream only.
	Records Recorder
	// Logger receives the node's logs; nil discards them.
	Logger *slog.Logger
	// Addr, Version and Engine (the name of the node's engine: "firefox",
	// "chromium") are published in the registry, for "geckohost nodes".
	Addr, Version, Engine string
	// Heartbeat is how often the node publishes its state; 0 means
	// DefaultHeartbeat.
	Heartbeat time.Duration
	// Stale is how long a silent node stays in the registry; 0 means
	// DefaultStale.
	Stale time.Duration
	// TokenCache is how long a token lookup is reused; 0 means
	// DefaultTokenCache, negative means never.
	TokenCache time.Duration
	// StreamMax caps the cluster's session stream (approximately); 0 means
	// DefaultStreamMax.
	StreamMax int64
}

// Node is one geckohost node in cluster mode. It is the host's token store
// (tokens in Redis) and session store (records in the node's SQLite and
// the cluster's stream), its Limiter (limits across the cluster), and
// through Engine its engine: it places each worker on this node or another
// and relays the signaling through Redis. It also runs the workers other
// nodes relay to it, and keeps its entry in the node registry.
//
// Create it with New, Start it, Drain it at SIGTERM, and Close it.
type Node struct {
	opts     Options
	c        *Client
	log      *slog.Logger
	tokens   *Tokens
	eng      *Engine
	instance string
	started  time.Time

	ctx    context.Context // the loops' and sessions' lifetime; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // loops and per-session goroutines

	healthy    atomic.Bool
	subscribed atomic.Bool
	draining   atomic.Bool
	healthErr  atomic.Pointer[error]
	kick       chan struct{} // capacity 1: heartbeat now
	kickRel    chan struct{} // capacity 1: remove the released counts now

	mu          sync.Mutex
	closed      bool
	stopped     bool // Close is waiting for the goroutines
	registered  bool // the node published its entry (Close removes it)
	startedLoop bool
	view        map[string]NodeInfo       // the other live nodes, from the last read
	pending     map[string]int            // workers placed per node since that read
	remotes     map[string]*remoteWorker  // workers of this node's clients running elsewhere, by worker id
	served      map[string]*served        // workers run for other nodes' clients, by front/worker id
	placed      map[string]placement      // worker id → where it runs (until its ended record)
	remoteOwned map[string]bool           // worker ids whose count the running node releases
	local       map[string]int64          // live workers on this node (own or relayed): worker id → token id
	reserved    map[string]map[string]int // worker id → the token's live workers per node, from Reserve
	releases    map[string]int64          // counts to remove: worker id → token id
	closes      map[string]string         // relay closes to retry: worker id → node
	negotiating int                       // sessions not connected yet (fronted or served)
	outSince    time.Time                 // first failed heartbeat of the current outage
	records     *mailbox[SessionRecord]   // ended sessions, for the stream
}

// New checks opts and returns a Node; nothing runs until Start.
func New(opts Options) (*Node, error) {
	if opts.Client == nil || opts.ID == "" || opts.Local == nil {
		return nil, fmt.Errorf("new cluster node: Client, ID and Local are required: %w", ErrBadOptions)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = DefaultHeartbeat
	}
	if opts.Stale <= 0 {
		opts.Stale = DefaultStale
	}
	if opts.StreamMax <= 0 {
		opts.StreamMax = DefaultStreamMax
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	n := &Node{
		opts: opts, c: opts.Client, log: opts.Logger, instance: hex.EncodeToString(b[:]), started: time.Now(),
		kick: make(chan struct{}, 1), kickRel: make(chan struct{}, 1),
		view: map[string]NodeInfo{}, pending: map[string]int{}, remotes: map[string]*remoteWorker{},
		served: map[string]*served{}, placed: map[string]placement{}, remoteOwned: map[string]bool{},
		local: map[string]int64{}, reserved: map[string]map[string]int{}, releases: map[string]int64{},
		closes: map[string]string{}, records: newMailbox[SessionRecord](),
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.tokens = opts.Client.Tokens()
	n.tokens.CacheTTL = opts.TokenCache
	n.eng = &Engine{n: n}
	return n, nil
}

// ID returns the node id.
func (n *Node) ID() string { return n.opts.ID }

// Engine returns the node's engine: an engine.Engine that places each
// worker on this node or another.
func (n *Node) Engine() *Engine { return n.eng }

// Start registers the node (it fails with ErrNodeIDInUse when a live node
// has the same id, and with ErrUnreachable when Redis does not answer),
// subscribes to its relay channel, and starts the heartbeat, registry,
// release and stream loops. Close stops them.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	if n.closed || n.startedLoop {
		n.mu.Unlock()
		return fmt.Errorf("start cluster node: %w", ErrClosed)
	}
	n.startedLoop = true
	n.mu.Unlock()
	nodes, _, err := n.c.readNodes(ctx, n.opts.Stale)
	if err != nil {
		return fmt.Errorf("start cluster node %s: %w", n.opts.ID, err)
	}
	for _, ni := range nodes {
		if ni.ID == n.opts.ID && ni.Instance != n.instance {
			return fmt.Errorf("start cluster node %s: a live node (started %s, heartbeat %v ago) has this id; give each node its own --node-id: %w",
				n.opts.ID, ni.Started.Local().Format(time.DateTime), ni.Age.Round(time.Millisecond), ErrNodeIDInUse)
		}
	}
	if err := n.c.heartbeat(ctx, n.info()); err != nil {
		return fmt.Errorf("start cluster node %s: %w", n.opts.ID, err)
	}
	n.mu.Lock()
	n.registered = true
	n.mu.Unlock()
	subscribed := make(chan struct{})
	n.wg.Add(4)
	go n.subscribeLoop(subscribed)
	go n.heartbeatLoop()
	go n.viewLoop()
	go n.streamLoop()
	select {
	case <-subscribed:
	case <-ctx.Done():
		err = ctx.Err()
	case <-time.After(5 * time.Second):
		err = unreachable("subscribe", context.DeadlineExceeded)
	}
	if err != nil {
		n.mu.Lock()
		n.stopped = true
		n.mu.Unlock()
		n.cancel()
		n.wg.Wait()
		return fmt.Errorf("start cluster node %s: subscribe: %w", n.opts.ID, err)
	}
	n.refreshView()
	n.healthy.Store(true)
	n.log.Info("cluster node started", "node", n.opts.ID, "redis", n.c.String())
	return nil
}

// Ready returns nil when the node can take a hello: Redis answers, the
// node is not draining and its own engine is ready.
func (n *Node) Ready() error {
	switch {
	case n.draining.Load():
		return fmt.Errorf("node %s is draining", n.opts.ID)
	case !n.healthy.Load():
		if p := n.healthErr.Load(); p != nil {
			return fmt.Errorf("%s: %w", unreachableReason, *p)
		}
		return errors.New(unreachableReason)
	}
	return n.opts.Local.Ready()
}

// Drain makes the node stop taking workers: it is published as draining
// (no node routes a worker to it), its own clients' hellos are relayed to
// other nodes, and relayed requests are refused. It returns once no
// session it takes part in is still negotiating, or when ctx ends.
func (n *Node) Drain(ctx context.Context) error {
	if !n.draining.Swap(true) {
		n.log.Info("cluster node draining", "node", n.opts.ID)
	}
	n.heartbeatNow()
	if neg, err := n.waitZero(ctx, 20*time.Millisecond, func() int { return n.negotiating }); err != nil {
		return fmt.Errorf("drain node %s: %d sessions still negotiating: %w", n.opts.ID, neg, err)
	}
	return nil
}

// waitZero polls count (called with n.mu held) every interval until it is
// 0; when ctx ends first it returns the last count and ctx's error.
func (n *Node) waitZero(ctx context.Context, every time.Duration, count func() int) (int, error) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n.mu.Lock()
		left := count()
		n.mu.Unlock()
		if left == 0 {
			return 0, nil
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return left, ctx.Err()
		}
	}
}

// Close stops the node: the workers it runs for other nodes are closed, it
// leaves the registry, the pending counts and session records are written
// (within ctx), and every goroutine is waited for.
func (n *Node) Close(ctx context.Context) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.draining.Store(true)
	var svs []*served
	for _, sv := range n.served {
		svs = append(svs, sv)
	}
	var rws []*remoteWorker
	for _, rw := range n.remotes {
		rws = append(rws, rw)
	}
	n.mu.Unlock()
	for _, sv := range svs {
		sv.post(message{Type: msgStop})
	}
	for _, rw := range rws {
		rw.markLost(errors.New("the node is closing"))
	}
	// The sessions end by themselves (their workers are closed); wait
	// for them within ctx.
	var err error
	if werr := n.waitSessions(ctx); werr != nil {
		err = werr
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	n.flushReleases(fctx)
	n.flushRecords(fctx)
	n.mu.Lock()
	registered := n.registered
	n.mu.Unlock()
	if registered {
		if derr := n.c.deregister(fctx, n.opts.ID); derr != nil {
			n.log.Warn("leave the node registry", "node", n.opts.ID, "err", derr)
		}
	}
	n.mu.Lock()
	n.stopped = true // no goroutine is spawned after this
	n.mu.Unlock()
	n.cancel()
	n.wg.Wait()
	n.log.Info("cluster node stopped", "node", n.opts.ID)
	return err
}

// waitSessions waits until no served or remote session is left.
func (n *Node) waitSessions(ctx context.Context) error {
	if left, err := n.waitZero(ctx, 10*time.Millisecond, func() int { return len(n.served) + len(n.remotes) }); err != nil {
		return fmt.Errorf("close node %s: %d relayed sessions left: %w", n.opts.ID, left, err)
	}
	return nil
}

// load returns the local engine's load.
func (n *Node) load() (Load, bool) {
	if n.opts.Load == nil {
		return Load{}, false
	}
	return n.opts.Load(), true
}

// info is the node's registry entry now.
func (n *Node) info() NodeInfo {
	ld, _ := n.load()
	state := StateReady
	switch {
	case n.draining.Load():
		state = StateDraining
	case n.opts.Local.Ready() != nil:
		state = StateNotReady
	}
	n.mu.Lock()
	relayed, neg := len(n.served), n.negotiating
	n.mu.Unlock()
	return NodeInfo{ID: n.opts.ID, State: state, Addr: n.opts.Addr, Version: n.opts.Version, Engine: n.opts.Engine,
		Browsers: ld.Browsers, Workers: ld.Workers, Capacity: ld.Capacity, Relayed: relayed, Negotiating: neg,
		Started: n.started.UTC(), Instance: n.instance}
}

// placement is the node running a worker and that node's engine (what its
// session record names).
type placement struct{ node, engine string }

// heartbeatNow asks the heartbeat loop to publish at once.
func (n *Node) heartbeatNow() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// releaseNow asks the heartbeat loop to remove the released counts.
func (n *Node) releaseNow() {
	select {
	case n.kickRel <- struct{}{}:
	default:
	}
}

// setHealth records the outcome of a heartbeat (or of the relay
// subscription): one failure makes the node unready and its new hellos
// 301 until a heartbeat succeeds again. Other commands failing fail only
// their own session.
func (n *Node) setHealth(err error) {
	if err == nil {
		if n.subscribed.Load() && !n.healthy.Swap(true) {
			n.log.Info("cluster store reachable again", "node", n.opts.ID)
		}
		return
	}
	n.healthErr.Store(&err)
	if n.healthy.Swap(false) {
		n.log.Error("cluster store unreachable", "node", n.opts.ID, "err", err)
	}
}

// heartbeatLoop publishes the node's state every Heartbeat (and at once
// when kicked), and retries the pending count releases and relay closes.
func (n *Node) heartbeatLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.opts.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		case <-n.kick:
		case <-n.kickRel:
			ctx, cancel := context.WithTimeout(n.ctx, opTimeout)
			n.flushReleases(ctx)
			cancel()
			continue
		}
		ctx, cancel := context.WithTimeout(n.ctx, opTimeout)
		err := n.c.heartbeat(ctx, n.info())
		if err == nil {
			n.afterOutage(ctx)
			n.flushReleases(ctx)
			n.retryCloses(ctx)
		} else {
			n.mu.Lock()
			if n.outSince.IsZero() {
				n.outSince = time.Now()
			}
			n.mu.Unlock()
		}
		cancel()
		n.setHealth(err)
	}
}

// afterOutage re-publishes this node's live workers once Redis is back
// after an outage long enough for other nodes to have dropped them.
func (n *Node) afterOutage(ctx context.Context) {
	n.mu.Lock()
	since := n.outSince
	n.outSince = time.Time{}
	n.mu.Unlock()
	if since.IsZero() || time.Since(since) < n.opts.Stale/2 {
		return
	}
	if err := n.reassertLive(ctx); err != nil {
		n.log.Warn("re-publish live workers", "node", n.opts.ID, "err", err)
	}
}

// viewLoop reads the registry every Heartbeat/2.
func (n *Node) viewLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.opts.Heartbeat / 2)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		n.refreshView()
	}
}

// refreshView reads the registry; the sessions relayed through a node that
// left it are told.
func (n *Node) refreshView() {
	ctx, cancel := context.WithTimeout(n.ctx, opTimeout)
	nodes, _, err := n.c.readNodes(ctx, n.opts.Stale)
	cancel()
	if err != nil {
		// The heartbeat decides the node's health; the last view stays.
		n.log.Debug("read the node registry", "node", n.opts.ID, "err", err)
		return
	}
	view := make(map[string]NodeInfo, len(nodes))
	self := false
	for _, ni := range nodes {
		if ni.ID != n.opts.ID {
			view[ni.ID] = ni
		} else if ni.Instance == n.instance {
			self = true
		}
	}
	n.mu.Lock()
	if !self && n.outSince.IsZero() {
		// This node was out (its heartbeats late): the others dropped its
		// live workers; the next heartbeat re-publishes them.
		n.outSince = time.Now().Add(-n.opts.Stale)
	}
	var gone []string
	for id := range n.view {
		if _, ok := view[id]; !ok {
			gone = append(gone, id)
		}
	}
	n.view = view
	clear(n.pending)
	var rws []*remoteWorker
	var svs []*served
	for _, rw := range n.remotes {
		if _, ok := view[rw.node]; !ok {
			rws = append(rws, rw)
		}
	}
	for _, sv := range n.served {
		if _, ok := view[sv.from]; !ok {
			svs = append(svs, sv)
		}
	}
	n.mu.Unlock()
	for _, id := range gone {
		n.log.Warn("cluster node out (no heartbeat)", "node", n.opts.ID, "out", id, "stale", n.opts.Stale)
	}
	for _, rw := range rws {
		rw.markLost(fmt.Errorf("node %s stopped answering (no heartbeat for %v)", rw.node, n.opts.Stale))
	}
	for _, sv := range svs {
		sv.post(message{Type: msgFrontLost})
	}
}

// alive reports whether node is in the last registry view (or is this
// node).
func (n *Node) alive(node string) bool {
	if node == n.opts.ID {
		return true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.view[node]
	return ok
}

// unhealthyError is the 301 for a hello while Redis is unreachable.
func (n *Node) unhealthyError(op string) error {
	if p := n.healthErr.Load(); p != nil {
		return unreachable(op, *p)
	}
	return unreachable(op, errors.New("no answer"))
}

// spawn runs f in a goroutine the node waits for at Close; false (f not
// run) once Close waits.
func (n *Node) spawn(f func()) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
	return true
}
