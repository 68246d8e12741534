package gecko

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/geckohost/geckohost/gecko/bidi"
	"github.com/geckohost/geckohost/host/wire"
)

// PoolOptions configure a Pool. The zero value works: one browser found on
// PATH, 4 warm slots, 150 workers at most.
type PoolOptions struct {
	// Firefox configures each browser launch. CameraOrigins is set by the
	// pool to the shell page's origin (needed for ICE on loopback).
	Firefox FirefoxOptions
	// Browsers is how many Firefox processes to run; 0 means 1.
	Browsers int
	// MaxWorkersPerBrowser caps live workers per browser; 0 means 150.
	MaxWorkersPerBrowser int
	// Warm is how many workers each loaded shell page keeps pre-spawned
	// (a bootstrap Worker plus a peer connection, refilled by the page
	// itself); 0 means 4, negative means none. One page hosts up to 50
	// workers of one token. With Warm > 0 each browser also keeps one
	// generic page loaded in a fresh user context, taken by the next new
	// token (its first hello then needs no page load), and pre-loads a
	// token's next page before its pages are full. Negative Warm: no
	// generic page either, so a token's first hello waits for a page
	// (about 0.5 s).
	Warm int
	// WorkerIdle ends a worker whose data channel carried no message for
	// this long; 0 means 10 minutes, negative means never.
	WorkerIdle time.Duration
	// TokenIdle removes a token's user context (its storage) from a browser
	// once the token has had no worker there for this long; 0 means 2 min.
	TokenIdle time.Duration
	// RecycleAfter gives a token a fresh user context once its current one
	// has started this many workers; 0 means 500, negative means never.
	// Firefox keeps about 36 KB of every peer connection a content process
	// ever had until that process exits (measured with Firefox ESR 153),
	// and each user context has its own content process: the old context
	// is removed, with its storage and its process, once its last worker
	// ends.
	RecycleAfter int
	// RecycleBrowserAfter replaces a browser once it has started this many
	// workers and none is running; 0 means 10000, negative means never.
	// It bounds whatever Firefox's parent process keeps of past workers
	// (measured with Firefox ESR 153: 100 live workers stayed at 550-610
	// MiB PSS over 5000 workers, so this is a safety net). The replacement
	// is launched while the old browser goes on serving; it takes every
	// new worker once its pages are loaded, and the old one is closed when
	// its last worker ends. No session is cut. A browser that always runs
	// workers is not replaced.
	RecycleBrowserAfter int
	// ICEServers are stun:/turn: URLs for the workers' peer connections.
	ICEServers []string
	// ICELoopback makes workers gather and accept loopback candidates only
	// (tests, clients on the same machine).
	ICELoopback bool
	// FetchTimeout bounds fetching a worker source; 0 means 10 s.
	FetchTimeout time.Duration
	// MaxSourceBytes bounds a worker source; 0 means 4 MiB.
	MaxSourceBytes int64
	// Logger gets the pool's logs (and Firefox's, unless Firefox.Logger is
	// set); nil discards them.
	Logger *slog.Logger
}

const (
	shellChannel    = "gh"
	refillersPerBrs = 2
	backoffMin      = 250 * time.Millisecond
	backoffMax      = 10 * time.Second
	backoffResetRun = 30 * time.Second
	callTimeout     = 10 * time.Second
	startTimeout    = 40 * time.Second // gh.start: the host's 302 comes first
	refillHold      = time.Second
	// workersPerPage is how many workers one shell page hosts.
	workersPerPage = 50
	// pageSpare: a token's next page is pre-loaded once fewer free places
	// than this remain in its pages.
	pageSpare = 10
)

// Pool is the gecko engine: it supervises headless Firefox processes, keeps
// shell pages loaded (one or a few per token user context, each hosting up
// to 50 workers, with pre-spawned workers) and starts workers in them.
// It satisfies host.Engine.
type Pool struct {
	opts  PoolOptions
	log   *slog.Logger
	fetch SourceFetcher
	tr    *http.Transport

	ctx    context.Context // pool lifetime, cancelled by Close
	cancel context.CancelFunc

	mu       sync.Mutex
	started  bool
	closed   bool
	shell    *shellServer
	launcher *Launcher
	browsers []*browser
	workers  map[*worker]struct{}
	readyCh  chan struct{} // closed when the first browser has a warm slot
	firstErr error

	supWG     sync.WaitGroup // supervisors (and their refillers)
	workerWG  sync.WaitGroup // worker goroutines
	closeMu   sync.Mutex
	closeDone bool // guarded by closeMu

	abandon     chan struct{} // closed when Close gives up waiting for event readers
	abandonOnce sync.Once
}

// NewPool returns a Pool configured by opts; nothing is started until Start.
func NewPool(opts PoolOptions) *Pool {
	if opts.Browsers <= 0 {
		opts.Browsers = 1
	}
	if opts.MaxWorkersPerBrowser <= 0 {
		opts.MaxWorkersPerBrowser = 150
	}
	if opts.Warm == 0 {
		opts.Warm = 4
	} else if opts.Warm < 0 {
		opts.Warm = 0
	}
	if opts.WorkerIdle == 0 {
		opts.WorkerIdle = 10 * time.Minute
	}
	if opts.RecycleAfter == 0 {
		opts.RecycleAfter = 500
	}
	if opts.RecycleBrowserAfter == 0 {
		opts.RecycleBrowserAfter = 10000
	}
	if opts.TokenIdle <= 0 {
		opts.TokenIdle = 2 * time.Minute
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Worker tabs live in per-token user contexts; Firefox 153 isolates
	// permissions by user context, so the shell's camera permission (granted
	// for the default context, needed for loopback ICE) would be missing.
	prefs := map[string]any{"permissions.isolateBy.userContext": false}
	maps.Copy(prefs, opts.Firefox.Prefs)
	opts.Firefox.Prefs = prefs
	if opts.Firefox.Logger == nil {
		opts.Firefox.Logger = log
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.IdleConnTimeout = 30 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	return &Pool{
		opts:    opts,
		log:     log,
		fetch:   SourceFetcher{Client: &http.Client{Transport: tr}, Timeout: opts.FetchTimeout, MaxBytes: opts.MaxSourceBytes},
		tr:      tr,
		ctx:     ctx,
		cancel:  cancel,
		workers: map[*worker]struct{}{},
		readyCh: make(chan struct{}),
		abandon: make(chan struct{}),
	}
}

// Start starts the shell server, the browsers and their warm slots. It
// returns once the first browser is ready with a warm slot, or with the
// error of the first failed launch when every browser failed to start (the
// pool keeps retrying in the background until Close).
func (p *Pool) Start(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return fmt.Errorf("start pool: %w", ErrPoolClosed)
	}
	if p.started {
		p.mu.Unlock()
		return fmt.Errorf("start pool: %w", ErrPoolStarted)
	}
	p.started = true
	shell, err := startShellServer(p.log.With("component", "shell"))
	if err != nil {
		p.mu.Unlock()
		return fmt.Errorf("start pool: %w", err)
	}
	p.shell = shell
	// One launcher for every browser and restart: after the first launch
	// it builds a template profile, so later launches start faster.
	fopts := p.opts.Firefox
	fopts.CameraOrigins = append(slices.Clone(fopts.CameraOrigins), shell.Origin())
	p.launcher = NewLauncher(fopts)
	failed := make(chan error, p.opts.Browsers)
	for i := range p.opts.Browsers {
		b := &browser{p: p, idx: i, log: p.log.With("browser", i)}
		p.browsers = append(p.browsers, b)
		p.supWG.Add(1)
		go b.supervise(failed)
	}
	p.mu.Unlock()

	var first error
	for n := 0; ; {
		select {
		case <-p.readyCh:
			return nil
		case err := <-failed:
			if first == nil {
				first = err
			}
			if n++; n == p.opts.Browsers {
				return fmt.Errorf("start pool: %w", first)
			}
		case <-ctx.Done():
			return fmt.Errorf("start pool: %w", ctx.Err())
		}
	}
}

// Ready returns nil when a browser is up, else an error saying why not.
func (p *Pool) Ready() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return ErrPoolClosed
	case !p.started:
		return ErrPoolNotStarted
	}
	for _, b := range p.browsers {
		if b.gen != nil {
			return nil
		}
	}
	return ErrNoBrowser
}

// Close ends every worker, then every browser and the shell server, and
// waits for all of them (bounded by ctx; past it, browsers are killed).
func (p *Pool) Close(ctx context.Context) error {
	p.closeMu.Lock()
	defer p.closeMu.Unlock()
	if p.closeDone {
		return nil
	}
	defer func() { p.closeDone = true }()
	p.mu.Lock()
	p.closed = true
	ws := make([]*worker, 0, len(p.workers))
	for w := range p.workers {
		ws = append(ws, w)
	}
	p.mu.Unlock()
	for _, w := range ws {
		w.requestClose(reasonShutdown)
	}
	waited := make(chan struct{})
	go func() { p.workerWG.Wait(); close(waited) }()
	var errs []error
	select {
	case <-waited:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("wait for workers: %w", ctx.Err()))
		p.abandonOnce.Do(func() { close(p.abandon) })
	}
	// Supervisors close their browsers with ctx; a dead browser also ends
	// every worker still waiting.
	p.mu.Lock()
	for _, b := range p.browsers {
		b.closeCtx = ctx
	}
	p.mu.Unlock()
	p.cancel()
	if ctx.Err() != nil {
		p.abandonOnce.Do(func() { close(p.abandon) })
	}
	p.supWG.Wait()
	<-waited
	p.tr.CloseIdleConnections()
	if p.launcher != nil {
		if err := p.launcher.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if p.shell != nil {
		if err := p.shell.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	p.mu.Lock()
	for _, b := range p.browsers {
		if b.closeErr != nil {
			errs = append(errs, b.closeErr)
		}
	}
	p.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close pool: %w", err)
	}
	return nil
}

// StartWorker reserves a place for req in a shell page of a browser and
// returns at once; the worker then fetches its source, runs it and reports
// on Events. Errors: 304 after Close, 301 when no browser is up or all are
// full.
func (p *Pool) StartWorker(ctx context.Context, req wire.WorkerRequest) (wire.Worker, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, wire.Errorf(wire.ShuttingDown, "the gecko pool is shutting down")
	}
	if !p.started {
		return nil, wire.Errorf(wire.NoGeckoAvailable, "the gecko pool is not started")
	}
	b := p.pickBrowser(req.TokenID)
	if b == nil {
		for _, x := range p.browsers {
			if x.gen != nil {
				return nil, wire.Errorf(wire.NoGeckoAvailable, "every browser runs %d workers (--max-workers-per-browser)", p.opts.MaxWorkersPerBrowser)
			}
		}
		return nil, wire.Errorf(wire.NoGeckoAvailable, "no browser is running (starting or restarting)")
	}
	g := b.gen
	tc := g.tokens[req.TokenID]
	if tc != nil && p.opts.RecycleAfter > 0 && tc.served >= p.opts.RecycleAfter && tc.making == nil && tc.placed() == tc.workers {
		g.retire(tc)
		tc = nil
	}
	if tc == nil {
		tc = &tokenCtx{id: req.TokenID}
		if len(g.generic) > 0 {
			// The generic page's fresh user context becomes the token's.
			pg := g.generic[0]
			g.generic = g.generic[1:]
			pg.tc = tc
			tc.uc = pg.uc
			tc.pages = append(tc.pages, pg)
		}
		g.tokens[req.TokenID] = tc
	}
	pg := tc.freePage()
	if pg != nil {
		pg.workers++
	}
	tc.workers++
	tc.served++
	g.served++
	g.live++
	g.negotiating++
	w := newWorker(p, b, g, tc, pg, req)
	p.workers[w] = struct{}{}
	p.workerWG.Add(1)
	go w.run()
	g.wake()
	return w, nil
}

// pickBrowser returns the browser for token: the one holding its user
// context, else the least loaded running browser with room. Caller holds
// p.mu.
func (p *Pool) pickBrowser(token int64) *browser {
	var best *browser
	for _, b := range p.browsers {
		g := b.gen
		if g == nil || g.live >= p.opts.MaxWorkersPerBrowser {
			continue
		}
		if g.tokens[token] != nil {
			return b // the token's user context (its storage) is here
		}
		if best == nil || g.live < best.gen.live {
			best = b
		}
	}
	return best
}

// shellConfig is what gh.init gets.
type shellConfig struct {
	IceServers []string `json:"iceServers,omitempty"`
	Loopback   bool     `json:"loopback"`
	IdleMs     int64    `json:"idleMs"`
	Warm       int      `json:"warm"`
}

func (p *Pool) shellConfigJSON() string {
	c := shellConfig{IceServers: p.opts.ICEServers, Loopback: p.opts.ICELoopback, Warm: p.opts.Warm}
	if p.opts.WorkerIdle > 0 {
		c.IdleMs = p.opts.WorkerIdle.Milliseconds()
	}
	b, _ := json.Marshal(c)
	return string(b)
}

// makePage opens a tab in user context uc, loads the shell and initialises
// it (its warm workers spawned). The page is registered in g.pages (for its
// events) before it is initialised.
func (p *Pool) makePage(ctx context.Context, g *generation, uc string) (*page, error) {
	conn := g.ff.Conn()
	tab, err := conn.CreateTab(ctx, uc)
	if err != nil {
		return nil, fmt.Errorf("create tab: %w", err)
	}
	pg := &page{tab: tab, uc: uc, ws: map[string]*worker{}}
	p.mu.Lock()
	g.pages[tab] = pg
	p.mu.Unlock()
	if err := conn.Navigate(ctx, tab, p.shell.URL()); err != nil {
		p.dropPage(g, pg)
		return nil, fmt.Errorf("load worker shell: %w", err)
	}
	res, err := conn.CallFunction(ctx, bidi.CallFunctionParams{
		FunctionDeclaration: "(ch, cfg) => gh.init(ch, JSON.parse(cfg))",
		Context:             tab,
		Args:                []any{bidi.ChannelArg(shellChannel), bidi.StringArg(p.shellConfigJSON())},
		AwaitPromise:        true,
	})
	if err != nil {
		p.dropPage(g, pg)
		return nil, fmt.Errorf("init worker shell: %w", err)
	}
	if n, err := bidi.NumberValue(res); err == nil {
		p.mu.Lock()
		pg.warm = max(pg.warm, int(n))
		p.mu.Unlock()
	}
	return pg, nil
}

// dropPage forgets a page and closes its tab (bounded).
func (p *Pool) dropPage(g *generation, pg *page) {
	p.mu.Lock()
	pg.closing = true
	if g.pages[pg.tab] == pg {
		delete(g.pages, pg.tab)
	}
	p.mu.Unlock()
	select {
	case <-g.dead:
		return
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.ff.Conn().CloseContext(ctx, pg.tab); err != nil {
		g.b.log.Debug("close tab", "err", err)
	}
}

// page is a tab with the worker shell loaded; it hosts up to
// workersPerPage workers of one token (none while generic).
type page struct {
	tab     string // browsing context id
	uc      string // user context id
	tc      *tokenCtx
	workers int                // places reserved (guarded by p.mu)
	warm    int                // pre-spawned workers ready in the page
	ws      map[string]*worker // started workers by id
	closing bool
}

// pageFut is a token page being made; workers that need a page wait on it.
type pageFut struct {
	done chan struct{}
	err  error
}

// tokenCtx is a token's user context in one browser generation.
type tokenCtx struct {
	id        int64
	uc        string // "" until the token's first page exists
	pages     []*page
	making    *pageFut // the page being made, if any
	workers   int
	served    int  // workers started in this user context
	retired   bool // replaced (RecycleAfter): removed once workers is 0
	idleSince time.Time
}

// placed counts the workers that have a place in tc's pages (the others
// wait for a page). Caller holds p.mu.
func (tc *tokenCtx) placed() int {
	n := 0
	for _, pg := range tc.pages {
		n += pg.workers
	}
	return n
}

// freePage returns the first page of tc with a free place. Caller holds
// p.mu.
func (tc *tokenCtx) freePage() *page {
	for _, pg := range tc.pages {
		if !pg.closing && pg.workers < workersPerPage {
			return pg
		}
	}
	return nil
}

// free counts the free places in tc's pages. Caller holds p.mu.
func (tc *tokenCtx) free() int {
	n := 0
	for _, pg := range tc.pages {
		if !pg.closing {
			n += workersPerPage - pg.workers
		}
	}
	return n
}

// removePage takes pg out of tc's pages. Caller holds p.mu.
func (tc *tokenCtx) removePage(pg *page) {
	tc.pages = slices.DeleteFunc(tc.pages, func(x *page) bool { return x == pg })
}

// browser is one supervised Firefox slot of the pool; gen is the running
// process (nil while down).
type browser struct {
	p        *Pool
	idx      int
	log      *slog.Logger
	gen      *generation   // guarded by p.mu
	next     *generation   // a replacement loading its pages (p.mu)
	old      []*generation // replaced, closed once their workers end (p.mu)
	closeCtx context.Context
	closeErr error
}

// generation is one launched Firefox with its pages and workers.
type generation struct {
	b       *browser
	ff      *Firefox
	dead    chan struct{} // closed when the process is gone
	wakeCh  chan struct{}
	generic []*page // loaded pages in fresh user contexts, for new tokens
	pending int     // generic pages being made
	tokens  map[int64]*tokenCtx
	retired []*tokenCtx   // replaced token contexts still running workers
	dropCh  chan struct{} // wakes watch to remove retired contexts
	// recycleCh tells watch that the browser has started
	// RecycleBrowserAfter workers and runs none.
	recycleCh chan struct{}
	served    int                // workers started
	pages     map[string]*page   // by tab
	byID      map[string]*worker // started workers by worker id
	live      int
	// negotiating counts workers between StartWorker and connected (or
	// their end). While it is non-zero, page loads that are not urgent
	// wait (up to refillHold): opening a tab keeps Firefox's parent
	// process busy and delays the BiDi calls of a negotiation by 50-200 ms.
	negotiating int
	lastJob     time.Time
	wg          sync.WaitGroup
}

// retire replaces tc (RecycleAfter): the token's next worker gets a fresh
// user context, and watch removes tc once its last worker has ended.
// Caller holds p.mu.
func (g *generation) retire(tc *tokenCtx) {
	delete(g.tokens, tc.id)
	tc.retired = true
	g.retired = append(g.retired, tc)
	g.b.log.Debug("recycling a token's user context", "token", tc.id, "served", tc.served)
	if tc.workers == 0 {
		g.dropRetired()
	}
}

// maybeRecycle tells watch to replace the browser once it has started
// RecycleBrowserAfter workers and runs none. Caller holds p.mu.
func (g *generation) maybeRecycle() {
	p := g.b.p
	if p.opts.RecycleBrowserAfter > 0 && g.served >= p.opts.RecycleBrowserAfter && g.live == 0 && g.b.gen == g && g.b.next == nil {
		select {
		case g.recycleCh <- struct{}{}:
		default:
		}
	}
}

// dropRetired wakes watch to remove the retired contexts without workers.
func (g *generation) dropRetired() {
	select {
	case g.dropCh <- struct{}{}:
	default:
	}
}

// alive reports whether g has not been stopped.
func (g *generation) alive() bool {
	select {
	case <-g.dead:
		return false
	default:
		return true
	}
}

func (g *generation) wake() {
	select {
	case g.wakeCh <- struct{}{}:
	default:
	}
}

func (b *browser) supervise(failed chan<- error) {
	p := b.p
	defer p.supWG.Done()
	backoff := backoffMin
	reported := false
	for {
		t0 := time.Now()
		ff, err := p.launcher.Launch(p.ctx)
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			b.log.Error("firefox did not start", "err", err, "retry_in", backoff)
			if !reported {
				reported = true
				failed <- err
			}
			if !sleepCtx(p.ctx, backoff) {
				return
			}
			backoff = min(backoff*2, backoffMax)
			continue
		}
		b.log.Info("firefox started", "pid", ff.PID(), "took", time.Since(t0).Round(time.Millisecond))
		reported = true
		g := &generation{
			b:         b,
			ff:        ff,
			dead:      make(chan struct{}),
			wakeCh:    make(chan struct{}, 1),
			dropCh:    make(chan struct{}, 1),
			recycleCh: make(chan struct{}, 1),
			tokens:    map[int64]*tokenCtx{},
			pages:     map[string]*page{},
			byID:      map[string]*worker{},
		}
		ff.Conn().OnEvent(g.onEvent)
		subCtx, cancel := context.WithTimeout(p.ctx, callTimeout)
		err = ff.Conn().Subscribe(subCtx, []string{"script.message", "log.entryAdded", "browsingContext.contextDestroyed"}, nil)
		cancel()
		if err != nil {
			b.log.Error("subscribe to firefox events", "err", err)
			b.stop(g)
			if !sleepCtx(p.ctx, backoff) {
				return
			}
			backoff = min(backoff*2, backoffMax)
			continue
		}
		p.mu.Lock()
		// A replacement (RecycleBrowserAfter) stands by, loading its
		// pages, while the old browser serves.
		standby := b.gen != nil
		if standby {
			b.next = g
		} else {
			b.gen = g
			if p.opts.Warm == 0 {
				p.markReady()
			}
		}
		p.mu.Unlock()
		for range refillersPerBrs {
			g.wg.Add(1)
			go g.refill()
		}
		g.wake()
		if standby {
			b.takeOver(g)
		}
		switch b.watch(g) {
		case watchClosed:
			b.stop(g)
			return
		case watchRecycle:
			// g goes on serving until the replacement is up, then
			// drains.
			p.mu.Lock()
			b.old = append(b.old, g)
			started := g.served
			p.mu.Unlock()
			b.log.Info("replacing firefox", "pid", ff.PID(), "workers_started", started)
			p.supWG.Add(1)
			go b.drain(g)
			continue
		}
		b.stop(g)
		if time.Since(t0) > backoffResetRun {
			backoff = backoffMin
		}
		b.log.Info("restarting firefox", "in", backoff)
		if !sleepCtx(p.ctx, backoff) {
			return
		}
		backoff = min(backoff*2, backoffMax)
	}
}

// takeOver waits (bounded) until the standby generation g has its generic
// page loaded, then makes it the browser's current generation.
func (b *browser) takeOver(g *generation) {
	p := b.p
	deadline := time.Now().Add(2 * callTimeout)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		ok := len(g.generic) > 0 || p.opts.Warm == 0
		p.mu.Unlock()
		if ok || !sleepCtx(p.ctx, 20*time.Millisecond) {
			break
		}
		if g.ff.Err() != nil {
			break
		}
	}
	p.mu.Lock()
	b.next = nil
	b.gen = g
	p.mu.Unlock()
	b.log.Info("firefox replaced", "pid", g.ff.PID())
}

// watchEnd says why watch returned.
type watchEnd int

const (
	watchDied    watchEnd = iota // the browser died
	watchClosed                  // the pool is closing
	watchRecycle                 // the browser is to be replaced
)

// watch waits until the browser dies, the pool closes or the browser is
// to be replaced (it has started RecycleBrowserAfter workers and runs
// none), removing idle and retired token user contexts meanwhile.
func (b *browser) watch(g *generation) watchEnd {
	p := b.p
	tick := time.NewTicker(min(p.opts.TokenIdle/4, 10*time.Second))
	defer tick.Stop()
	for {
		select {
		case <-g.ff.Done():
			b.log.Error("firefox died", "err", g.ff.Err())
			return watchDied
		case <-p.ctx.Done():
			return watchClosed
		case <-g.recycleCh:
			return watchRecycle
		case <-g.dropCh:
			b.dropIdleTokens(g)
		case <-tick.C:
			b.dropIdleTokens(g)
		}
	}
}

// drain keeps a replaced generation running until its replacement is up
// and its last worker has ended (or it dies, or the pool closes), then
// stops it.
func (b *browser) drain(g *generation) {
	p := b.p
	defer p.supWG.Done()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		p.mu.Lock()
		done := b.gen != g && g.live == 0
		p.mu.Unlock()
		if done {
			break
		}
		select {
		case <-g.ff.Done():
			b.log.Error("replaced firefox died", "err", g.ff.Err())
		case <-p.ctx.Done():
		case <-g.dropCh:
			b.dropIdleTokens(g)
			continue
		case <-tick.C:
			continue
		}
		break
	}
	b.stop(g)
	p.mu.Lock()
	b.old = slices.DeleteFunc(b.old, func(x *generation) bool { return x == g })
	p.mu.Unlock()
	b.log.Info("replaced firefox closed", "pid", g.ff.PID())
}

// dropIdleTokens removes the user contexts (tabs and storage) of tokens
// idle for TokenIdle and of retired contexts whose workers have all ended.
func (b *browser) dropIdleTokens(g *generation) {
	p := b.p
	var drop []string
	forget := func(tc *tokenCtx) {
		for _, pg := range tc.pages {
			pg.closing = true
			delete(g.pages, pg.tab)
		}
		if tc.uc != "" {
			drop = append(drop, tc.uc)
		}
	}
	p.mu.Lock()
	for id, tc := range g.tokens {
		if tc.workers == 0 && tc.making == nil && time.Since(tc.idleSince) >= p.opts.TokenIdle {
			delete(g.tokens, id)
			forget(tc)
		}
	}
	g.retired = slices.DeleteFunc(g.retired, func(tc *tokenCtx) bool {
		if tc.workers > 0 || tc.making != nil {
			return false
		}
		forget(tc)
		return true
	})
	p.mu.Unlock()
	for _, uc := range drop {
		ctx, cancel := context.WithTimeout(p.ctx, callTimeout)
		if err := g.ff.Conn().RemoveUserContext(ctx, uc); err != nil {
			b.log.Debug("remove user context", "err", err)
		}
		cancel()
	}
}

// stop marks g gone, ends its workers (they see g.dead), waits for its
// refillers and closes the process.
func (b *browser) stop(g *generation) {
	p := b.p
	p.mu.Lock()
	if b.gen == g {
		b.gen = nil
	}
	ctx := b.closeCtx
	p.mu.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}
	select {
	case <-g.ff.Done():
	default:
		// Pool closing: close the browser first so that refillers stop.
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		if err := g.ff.Close(cctx); err != nil {
			p.mu.Lock()
			b.closeErr = fmt.Errorf("close firefox %d: %w", b.idx, err)
			p.mu.Unlock()
		}
		cancel()
	}
	close(g.dead)
	g.wg.Wait()
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := g.ff.Close(cctx); err != nil && g.ff.Err() == nil {
		b.log.Debug("close firefox", "err", err)
	}
}

// refill keeps g's generic page loaded and pre-loads the next page of
// tokens whose pages are nearly full, one page at a time.
func (g *generation) refill() {
	defer g.wg.Done()
	p := g.b.p
	for {
		p.mu.Lock()
		job, tc, fut := g.nextJob()
		p.mu.Unlock()
		if !job {
			t := time.NewTimer(refillHold / 4)
			select {
			case <-g.wakeCh:
			case <-t.C:
			case <-g.dead:
				t.Stop()
				return
			case <-p.ctx.Done():
				t.Stop()
				return
			}
			t.Stop()
			continue
		}
		var err error
		if tc != nil {
			err = g.makeTokenPage(tc, fut)
		} else {
			err = g.makeGeneric()
		}
		if err != nil {
			select {
			case <-g.dead:
				return
			default:
			}
			if p.ctx.Err() != nil {
				return
			}
			g.b.log.Warn("load a shell page", "err", err)
			if !sleepCtx(p.ctx, backoffMin) {
				return
			}
		}
	}
}

// nextJob picks the next page to load: the generic page while there is
// none, then the next page of tokens running out of places (not while
// workers negotiate, up to refillHold). Caller holds p.mu.
func (g *generation) nextJob() (bool, *tokenCtx, *pageFut) {
	p := g.b.p
	if p.ctx.Err() != nil || (g.b.gen != g && g.b.next != g) || p.opts.Warm == 0 {
		return false, nil, nil
	}
	if len(g.generic)+g.pending == 0 {
		g.pending++
		g.lastJob = time.Now()
		return true, nil, nil
	}
	if g.negotiating > 0 && time.Since(g.lastJob) < refillHold {
		return false, nil, nil
	}
	for _, tc := range g.tokens {
		if tc.uc != "" && tc.making == nil && tc.workers > 0 && tc.free() < pageSpare &&
			len(tc.pages)*workersPerPage < p.opts.MaxWorkersPerBrowser {
			fut := &pageFut{done: make(chan struct{})}
			tc.making = fut
			g.lastJob = time.Now()
			return true, tc, fut
		}
	}
	return false, nil, nil
}

// makeGeneric loads a generic page in a fresh user context.
func (g *generation) makeGeneric() error {
	p := g.b.p
	ctx, cancel := context.WithTimeout(p.ctx, 2*callTimeout)
	defer cancel()
	uc, err := g.ff.Conn().CreateUserContext(ctx)
	var pg *page
	if err != nil {
		err = fmt.Errorf("create user context: %w", err)
	} else {
		pg, err = p.makePage(ctx, g, uc)
	}
	p.mu.Lock()
	g.pending--
	keep := err == nil && p.ctx.Err() == nil && (g.b.gen == g || g.b.next == g)
	if keep {
		g.generic = append(g.generic, pg)
		p.markReady()
	}
	p.mu.Unlock()
	if !keep && uc != "" {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = g.ff.Conn().RemoveUserContext(rctx, uc)
		cancel()
		if pg != nil {
			p.mu.Lock()
			delete(g.pages, pg.tab)
			p.mu.Unlock()
		}
	}
	return err
}

// makeTokenPage loads a page for tc (creating tc's user context first if
// it has none), adds it to tc's pages and completes fut.
func (g *generation) makeTokenPage(tc *tokenCtx, fut *pageFut) error {
	p := g.b.p
	ctx, cancel := context.WithTimeout(p.ctx, 2*callTimeout)
	defer cancel()
	p.mu.Lock()
	uc := tc.uc
	p.mu.Unlock()
	created := ""
	var err error
	if uc == "" {
		uc, err = g.ff.Conn().CreateUserContext(ctx)
		if err != nil {
			err = fmt.Errorf("create user context: %w", err)
		} else {
			created = uc
		}
	}
	var pg *page
	if err == nil {
		pg, err = p.makePage(ctx, g, uc)
	}
	p.mu.Lock()
	keep := err == nil && p.ctx.Err() == nil && g.alive() && g.tokens[tc.id] == tc
	if keep {
		if created != "" {
			tc.uc = created
			created = ""
		}
		pg.tc = tc
		tc.pages = append(tc.pages, pg)
	}
	tc.making = nil
	if err == nil && !keep {
		err = errors.New("the page is no longer wanted")
	}
	fut.err = err
	close(fut.done)
	p.mu.Unlock()
	if !keep && pg != nil {
		p.dropPage(g, pg)
	}
	if created != "" {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = g.ff.Conn().RemoveUserContext(rctx, created)
		cancel()
	}
	return err
}

// onEvent routes BiDi events; it runs on the BiDi read loop and must not
// block.
func (g *generation) onEvent(ev bidi.Event) {
	p := g.b.p
	switch ev.Method {
	case "script.message":
		m, err := bidi.ParseScriptMessage(ev.Params)
		if err != nil || m.Channel != shellChannel {
			return
		}
		data, err := bidi.StringValue(m.Data)
		if err != nil {
			return
		}
		var e shellEvent
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			g.b.log.Debug("bad shell event", "err", err)
			return
		}
		if e.ID == "" {
			switch e.T {
			case "warm":
				p.mu.Lock()
				if pg := g.pages[m.Source.Context]; pg != nil {
					pg.warm = e.N
				}
				p.mu.Unlock()
			case "log":
				g.b.log.Debug("shell", "context", m.Source.Context, "msg", e.Msg)
			}
			return
		}
		p.mu.Lock()
		w := g.byID[e.ID]
		p.mu.Unlock()
		if w == nil {
			g.b.log.Debug("shell event for no worker", "worker", e.ID, "t", e.T)
			return
		}
		w.deliver(pageMsg{ev: e})
	case "log.entryAdded":
		e, err := bidi.ParseLogEntry(ev.Params)
		if err != nil {
			return
		}
		g.b.log.Debug("page log", "context", e.Source.Context, "level", e.Level, "type", e.Type, "text", e.Text)
	case "browsingContext.contextDestroyed":
		var d struct {
			Context string `json:"context"`
		}
		if json.Unmarshal(ev.Params, &d) != nil {
			return
		}
		var ws []*worker
		p.mu.Lock()
		if pg := g.pages[d.Context]; pg != nil {
			delete(g.pages, d.Context)
			pg.closing = true
			if pg.tc != nil {
				pg.tc.removePage(pg)
			} else {
				g.generic = slices.DeleteFunc(g.generic, func(x *page) bool { return x == pg })
			}
			for _, w := range pg.ws {
				ws = append(ws, w)
			}
		}
		p.mu.Unlock()
		for _, w := range ws {
			w.deliver(pageMsg{destroyed: true})
		}
		g.wake()
	}
}

// markReady lets Start return. Caller holds p.mu.
func (p *Pool) markReady() {
	select {
	case <-p.readyCh:
	default:
		close(p.readyCh)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
