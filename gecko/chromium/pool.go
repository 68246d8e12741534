package chromium

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/gecko"
	"github.com/geckohost/geckohost/gecko/core"
	"github.com/geckohost/geckohost/gecko/egress"
	"github.com/geckohost/geckohost/gecko/shell"
)

// PoolOptions configure a Pool. The zero value works: one Chromium found
// by FindChromium, 4 warm slots, 150 workers at most. Every field but
// Chromium has the name, type, default and meaning of gecko.PoolOptions'
// field; where Chromium's mechanism differs, the field says so.
type PoolOptions struct {
	// Chromium configures each browser launch.
	Chromium Options
	// Browsers is how many Chromium processes to run; 0 means 1.
	Browsers int
	// MaxWorkersPerBrowser caps live workers per browser; 0 means 150.
	MaxWorkersPerBrowser int
	// Warm is how many workers each loaded shell page keeps pre-spawned;
	// 0 means 4, gecko.NoWarm (or any negative) means none. With Warm > 0
	// each browser also keeps one generic page loaded in a fresh browser
	// context, taken by the next new token.
	Warm int
	// WorkerIdle ends a worker whose data channel carried no message for
	// this long; 0 means 10 minutes, negative means never.
	WorkerIdle time.Duration
	// TokenIdle removes a token's browser context (its storage) from a
	// browser once the token has had no worker there for this long; 0
	// means 2 min.
	TokenIdle time.Duration
	// RecycleAfter gives a token a fresh browser context (and renderer
	// process) once its current one has started this many workers; 0
	// means 500, negative means never.
	RecycleAfter int
	// RecycleBrowserAfter replaces a browser once it has started this many
	// workers and none is running; 0 means 10000, negative means never.
	RecycleBrowserAfter int
	// ICEServers are stun:/turn: URLs for the workers' peer connections.
	ICEServers []string
	// ICELoopback makes workers gather and accept loopback candidates only
	// (Chromium always runs with --allow-loopback-in-peer-connection).
	ICELoopback bool
	// Egress is where workers may connect (serve --worker-egress,
	// --worker-allow); every browser context has a proxy listener of its
	// own (Target.createBrowserContext's proxyServer, loopback included).
	Egress egress.Policy
	// WorkerMemory bounds the memory (anonymous resident, bytes) of each
	// browser context's renderer process; past it the process is killed
	// and its workers end with engine.EndMemoryLimit. 0 means 512 MiB,
	// negative means none. A token's engine.Limits.Memory overrides it.
	WorkerMemory int64
	// WorkerMaxLifetime ends each worker this long after it started
	// (engine.EndLifetime); 0 means 24 hours, negative means never.
	WorkerMaxLifetime time.Duration
	// WorkerStorage is each token's storage quota in bytes (IndexedDB,
	// Cache API; Storage.overrideQuotaForOrigin for the shell's origin in
	// each browser context); 0 means 256 MiB, negative means Chromium's
	// own.
	WorkerStorage int64
	// WorkerBusyLimit ends a worker that does not return to its event
	// loop for this long (engine.EndCPULimit); 0 means 30 s, negative
	// means never.
	WorkerBusyLimit time.Duration
	// Logger gets the pool's logs (and Chromium's, unless
	// Chromium.Logger is set); nil discards them.
	Logger *slog.Logger
}

const (
	backoffMin      = 250 * time.Millisecond
	backoffMax      = 10 * time.Second
	backoffResetRun = 30 * time.Second
	callTimeout     = core.CallTimeout
	// workersPerPage is how many workers one shell page hosts.
	workersPerPage = 50
	// pageSpare: a token's next page is pre-loaded once fewer free places
	// than this remain in its pages.
	pageSpare = 10
	// bindingName is the CDP binding the shell page reports through.
	bindingName = "__ghEmit"
)

// Pool is the Chromium engine: it supervises headless Chromium processes,
// keeps shell pages loaded (per token, in the token's browser context,
// each hosting up to 50 workers, with pre-spawned workers) and starts
// workers in them. It satisfies engine.Engine.
type Pool struct {
	opts PoolOptions
	log  *slog.Logger

	ctx    context.Context // pool lifetime, cancelled by Close
	cancel context.CancelFunc

	// mu guards the pool's state and everything below it (generations,
	// pages, token contexts, workers' places). Nothing blocks holding it.
	mu      sync.Mutex
	started bool
	closed  bool
	shell   *shell.Server
	egress  *egress.Proxy
	// quiet refuses every request of the default browser context
	// (Chromium's own: it has no workers), through global.
	quiet    *egress.Proxy
	global   *egress.Identity
	browsers []*browser
	readyCh  chan struct{} // closed when the first browser has a warm page
	pacing   *core.Pacing  // busy renderers (contain.go)

	supWG    sync.WaitGroup // supervisors
	workerWG sync.WaitGroup // worker goroutines
	shut     core.Shutdown
}

// NewPool returns a Pool configured by opts; nothing is started until
// Start.
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
		opts.WorkerMemory = gecko.DefaultWorkerMemory
	}
	if opts.WorkerStorage == 0 {
		opts.WorkerStorage = gecko.DefaultWorkerStorage
	}
	if opts.WorkerBusyLimit == 0 {
		opts.WorkerBusyLimit = gecko.DefaultWorkerBusyLimit
	}
	if opts.WorkerMaxLifetime == 0 {
		opts.WorkerMaxLifetime = gecko.DefaultWorkerMaxLifetime
	}
	if opts.TokenIdle <= 0 {
		opts.TokenIdle = 2 * time.Minute
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Chromium.Logger == nil {
		opts.Chromium.Logger = log
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Pool{opts: opts, log: log, ctx: ctx, cancel: cancel, readyCh: make(chan struct{})}
}

// Start starts the shell server, the egress proxy, the browsers and their
// warm pages. It returns once the first browser is ready, or with the
// error of the first failed launch when every browser failed to start
// (the pool keeps retrying in the background until Close).
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
	if _, err := FindChromium(p.opts.Chromium.Path); err != nil {
		p.mu.Unlock()
		return fmt.Errorf("start pool: %w", err)
	}
	p.started = true
	sh, err := shell.Start(p.log.With("component", "shell"))
	if err != nil {
		p.mu.Unlock()
		return fmt.Errorf("start pool: %w", err)
	}
	p.shell = sh
	px, err := egress.New(egress.Options{Policy: p.opts.Egress, Shell: sh.Addr(), Logger: p.log.With("component", "egress")})
	if err == nil {
		p.egress = px
		// Chromium's own requests (component updates, variations:
		// Chromium makes some whatever its flags) go nowhere.
		p.quiet, err = egress.New(egress.Options{Policy: egress.Policy{Mode: egress.None}, Shell: sh.Addr(), Logger: p.log.With("component", "egress")})
	}
	if err == nil {
		p.global, err = p.quiet.NewIdentity("global")
	}
	if err != nil {
		p.mu.Unlock()
		return fmt.Errorf("start pool: start egress proxy: %w", err)
	}
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
// loaded, else an error saying why not: ErrNoBrowser while none runs,
// ErrWarming while the running ones load their first page.
func (p *Pool) Ready() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return core.Ready(p.admission(), p.browsers, readyErrors)
}

// readyErrors are Ready's errors.
var readyErrors = core.ReadyErrors{Closed: ErrPoolClosed, NotStarted: ErrPoolNotStarted, NoBrowser: ErrNoBrowser, Warming: ErrWarming}

// admission is the pool's state as core.Admit sees it. Caller holds p.mu.
func (p *Pool) admission() core.Admission {
	return core.Admission{Engine: "chromium", Started: p.started, Closed: p.closed, MaxWorkers: p.opts.MaxWorkersPerBrowser}
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
// does), then every browser, the egress proxy and the shell server, and
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

// CloseRest implements core.PoolCloser: the CPU pacing, the egress
// proxies and the shell server.
func (pc *poolCloser) CloseRest(ctx context.Context) []error {
	p := (*Pool)(pc)
	var errs []error
	p.pacing.Close()
	for _, px := range []*egress.Proxy{p.egress, p.quiet} {
		if px != nil {
			if err := px.Close(); err != nil {
				errs = append(errs, err)
			}
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
// returns at once; the worker then runs req.Code and reports on Events.
// It fails with engine.ErrClosed after Close and with a 301
// (engine.NoCapacity) when no browser is up or every one is full.
func (p *Pool) StartWorker(ctx context.Context, req engine.WorkerRequest) (engine.Worker, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, err := core.Admit(p.admission(), p.browsers, req.TokenID)
	if err != nil {
		return nil, err
	}
	g := b.gen
	tc := g.tokenFor(req.TokenID)
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
