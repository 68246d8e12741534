package gecko

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/gecko/core"
	"github.com/geckohost/geckohost/gecko/egress"
	"github.com/geckohost/geckohost/gecko/shell"
)

// NoWarm is PoolOptions.Warm for no pre-spawned worker and no generic page
// (the zero Warm is the default, 4).
const NoWarm = -1

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
	// itself); 0 means 4, NoWarm (or any negative) means none. One page hosts up to 50
	// workers of one token. With Warm > 0 each browser also keeps one
	// generic page loaded in a fresh user context, taken by the next new
	// token (its first hello then needs no page load), and pre-loads a
	// token's next page before its pages are full. NoWarm: no
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
	// Egress is where workers may connect (serve --worker-egress,
	// --worker-allow); the zero value is egress.Public with nothing else
	// allowed. Every request of a browser goes through the pool's egress
	// proxy; each user context (each token's) has a listener of its own,
	// so refusals are counted per context (engine.Event.EgressRefused).
	Egress egress.Policy
	// WorkerMemory bounds the memory (anonymous resident, bytes) of each
	// user context's content process: the token's workers in one browser
	// share it. Past it the process is killed and its workers end with
	// engine.EndMemoryLimit. 0 means 512 MiB, negative means none. A
	// token's engine.Limits.Memory overrides it.
	WorkerMemory int64
	// WorkerMaxLifetime ends each worker this long after it started
	// (engine.EndLifetime); 0 means 24 hours, negative means never. A
	// token's engine.Limits.Lifetime overrides it.
	WorkerMaxLifetime time.Duration
	// WorkerStorage is each token's storage quota in bytes (IndexedDB,
	// Cache API: writes past it fail with QuotaExceededError in the
	// worker); 0 means 256 MiB, negative means Firefox's own. It is a
	// browser-wide setting (Firefox's quota group limit is a fifth of its
	// temporary storage limit, which is set to five times this), so the
	// profile's storage stays under five times it.
	WorkerStorage int64
	// WorkerBusyLimit ends a worker that does not return to its event
	// loop for this long (a busy loop: engine.EndCPULimit); 0 means 30 s,
	// negative means never.
	WorkerBusyLimit time.Duration
	// Logger gets the pool's logs (and Firefox's, unless Firefox.Logger is
	// set); nil discards them.
	Logger *slog.Logger
}

// Defaults of PoolOptions' limits.
const (
	DefaultWorkerMemory      = 512 << 20
	DefaultWorkerMaxLifetime = 24 * time.Hour
	DefaultWorkerBusyLimit   = 30 * time.Second
	DefaultWorkerStorage     = 256 << 20
)

const (
	shellChannel    = "gh"
	refillersPerBrs = 2
	backoffMin      = 250 * time.Millisecond
	backoffMax      = 10 * time.Second
	backoffResetRun = 30 * time.Second
	callTimeout     = core.CallTimeout
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
// It satisfies engine.Engine.
type Pool struct {
	opts PoolOptions
	log  *slog.Logger

	ctx    context.Context // pool lifetime, cancelled by Close
	cancel context.CancelFunc

	// mu guards the pool's state and everything below it: each browser's
	// generations, their pages and token contexts, and each worker's place
	// (worker.pg, worker.negotiated). A worker's own inbox and close reason
	// have the worker's lock. Nothing blocks while holding mu.
	mu       sync.Mutex
	started  bool
	closed   bool
	shell    *shell.Server
	egress   *egress.Proxy
	global   *egress.Identity // the default user context's (and Firefox's own) requests
	launcher *Launcher
	pacing   *core.Pacing // busy content processes (contain.go)
	browsers []*browser
	readyCh  chan struct{} // closed when the first browser has a warm slot
	firstErr error

	supWG    sync.WaitGroup // supervisors (and their refillers)
	workerWG sync.WaitGroup // worker goroutines
	shut     core.Shutdown
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
	if opts.WorkerMemory == 0 {
		opts.WorkerMemory = DefaultWorkerMemory
	}
	if opts.WorkerStorage == 0 {
		opts.WorkerStorage = DefaultWorkerStorage
	}
	if opts.WorkerBusyLimit == 0 {
		opts.WorkerBusyLimit = DefaultWorkerBusyLimit
	}
	if opts.WorkerMaxLifetime == 0 {
		opts.WorkerMaxLifetime = DefaultWorkerMaxLifetime
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
	prefs := map[string]any{"permissions.isolateBy.userContext": false,
		// Firefox caps the dedicated workers of one domain (512 by
		// default) and queues more silently: every worker of a browser
		// shares the shell page's origin, so the cap follows the pool's
		// capacity (each worker, plus each page's pre-spawned ones;
		// nested workers are refused).
		"dom.workers.maxPerDomain": maxPerDomain(opts.MaxWorkersPerBrowser, opts.Warm)}
	if opts.WorkerStorage > 0 {
		// In KiB; each group (a site in one user context: a token's
		// storage) gets a fifth of it.
		prefs["dom.quotaManager.temporaryStorage.fixedLimit"] = int(opts.WorkerStorage * 5 >> 10)
	}
	maps.Copy(prefs, opts.Firefox.Prefs)
	opts.Firefox.Prefs = prefs
	if opts.Firefox.Logger == nil {
		opts.Firefox.Logger = log
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Pool{
		opts:    opts,
		log:     log,
		ctx:     ctx,
		cancel:  cancel,
		readyCh: make(chan struct{}),
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
	sh, err := shell.Start(p.log.With("component", "shell"))
	if err != nil {
		p.mu.Unlock()
		return fmt.Errorf("start pool: %w", err)
	}
	p.shell = sh
	if err := p.startEgress(); err != nil {
		p.mu.Unlock()
		return fmt.Errorf("start pool: %w", err)
	}
	// One launcher for every browser and restart: after the first launch
	// it builds a template profile, so later launches start faster.
	fopts := p.opts.Firefox
	fopts.CameraOrigins = append(slices.Clone(fopts.CameraOrigins), sh.Origin())
	// The pool reads Firefox's process list (contain.go) in the browser's
	// privileged scope; only the BiDi session can, and workers cannot
	// reach it.
	fopts.Args = append(slices.Clone(fopts.Args), "--remote-allow-system-access")
	fopts.Prefs = maps.Clone(fopts.Prefs)
	maps.Copy(fopts.Prefs, proxyPrefs(p.global.Addr()))
	p.launcher = NewLauncher(fopts)
	p.pacing = core.NewPacing(p.log)
	failed := make(chan error, p.opts.Browsers)
	for i := range p.opts.Browsers {
		b := &browser{p: p, idx: i, log: p.log.With("browser", i)}
		p.browsers = append(p.browsers, b)
		p.supWG.Add(1)
		go b.supervise(failed)
	}
	p.mu.Unlock()
	return core.AwaitStart(ctx, p.readyCh, failed, p.opts.Browsers)
}

// Ready returns nil once a browser is up with its first worker page
// loaded (a new token's first hello then waits for no page load), else an
// error saying why not: ErrNoBrowser while none runs, ErrWarming while the
// running ones load their first page.
func (p *Pool) Ready() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return core.Ready(p.admission(), p.browsers, readyErrors)
}

// readyErrors are Ready's errors.
var readyErrors = core.ReadyErrors{Closed: ErrPoolClosed, NotStarted: ErrPoolNotStarted, NoBrowser: ErrNoBrowser, Warming: ErrWarming}

// admission is the pool's state as core.Admit sees it. Caller holds p.mu.
func (p *Pool) admission() core.Admission {
	return core.Admission{Engine: "gecko", Started: p.started, Closed: p.closed, MaxWorkers: p.opts.MaxWorkersPerBrowser}
}

// Current implements core.AdmitSlot. Caller holds p.mu.
func (b *browser) Current() (up, ready bool, live int) {
	if b.gen == nil {
		return false, false, 0
	}
	return true, b.gen.ready, b.gen.live
}

// Holds implements core.AdmitSlot. Caller holds p.mu.
func (b *browser) Holds(token int64) bool { return b.gen != nil && b.gen.tokens[token] != nil }

// Close ends every worker (a connected one in order, as engine.Worker.Close
// does), then every browser and the shell server, and
// waits for all of them (bounded by ctx; past it, browsers are killed).
func (p *Pool) Close(ctx context.Context) error {
	return core.Close(ctx, &p.shut, (*poolCloser)(p), &p.workerWG, &p.supWG)
}

// poolCloser is the Pool as core.Close closes it; its Lock and Unlock
// are p.mu's.
type poolCloser Pool

func (pc *poolCloser) Lock()   { pc.mu.Lock() }
func (pc *poolCloser) Unlock() { pc.mu.Unlock() }

// CloseSlots implements core.PoolCloser.
func (pc *poolCloser) CloseSlots() []*browser {
	pc.closed = true
	return pc.browsers
}

// Cancel implements core.PoolCloser.
func (pc *poolCloser) Cancel() { pc.cancel() }

// CloseRest implements core.PoolCloser: the CPU pacing, the launcher,
// the egress proxy and the shell server.
func (pc *poolCloser) CloseRest(ctx context.Context) []error {
	p := (*Pool)(pc)
	var errs []error
	p.pacing.Close()
	if p.launcher != nil {
		if err := p.launcher.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if p.egress != nil {
		if err := p.egress.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if p.shell != nil {
		if err := p.shell.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// Workers implements core.CloseSlot. Caller holds p.mu.
func (b *browser) Workers() []*core.Worker {
	var ws []*core.Worker
	for _, g := range b.generations() {
		for _, w := range g.byID {
			ws = append(ws, w.Worker)
		}
	}
	return ws
}

// CloseWith implements core.CloseSlot. Caller holds p.mu.
func (b *browser) CloseWith(ctx context.Context) { b.closeCtx = ctx }

// CloseErr implements core.CloseSlot. Caller holds p.mu.
func (b *browser) CloseErr() error { return b.closeErr }

// StartWorker reserves a place for req in a shell page of a browser and
// returns at once; the worker then runs req.Code and reports on Events. It
// fails with engine.ErrClosed after Close and with a 301
// (engine.NoGeckoAvailable, with engine.ErrNoCapacity) when no browser is
// up or every one is full.
func (p *Pool) StartWorker(ctx context.Context, req engine.WorkerRequest) (engine.Worker, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, err := core.Admit(p.admission(), p.browsers, req.TokenID)
	if err != nil {
		return nil, err
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
			g.lastJob = time.Now() // its refill waits for this negotiation (nextJob)
			pg.tc = tc
			tc.uc = pg.uc
			tc.pages = append(tc.pages, pg)
		}
		g.tokens[req.TokenID] = tc
	}
	tc.limits = req.Limits
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
	g.byID[req.WorkerID] = w
	p.workerWG.Add(1)
	go w.run()
	g.wake()
	return w, nil
}

// maxPerDomain is the dom.workers.maxPerDomain pref for a browser running
// at most capacity workers with warm pre-spawned ones per page: every
// worker, each page's warm ones (a page per worker at most), and a margin;
// never below Firefox's default of 512.
func maxPerDomain(capacity, warm int) int {
	return max(512, capacity*(1+warm)+64)
}
