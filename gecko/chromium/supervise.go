package chromium

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/target"
	"github.com/geckohost/geckohost/gecko/core"
	"github.com/geckohost/geckohost/gecko/egress"
)

// browser is one supervised Chromium slot of the pool; gen is the running
// process (nil while down).
type browser struct {
	p        *Pool
	idx      int
	log      *slog.Logger
	gen      *generation // guarded by p.mu
	closeCtx context.Context
	closeErr error
	restarts int // times its browser died and was restarted (p.mu)
}

// generation is one launched Chromium with its pages and workers.
type generation struct {
	b       *browser
	bp      *browserProc
	dead    chan struct{} // closed when the process is gone
	wakeCh  chan struct{}
	generic []*page // loaded pages in fresh browser contexts, for new tokens
	pending int     // generic pages being made
	tokens  map[int64]*tokenCtx
	retired []*tokenCtx    // replaced token contexts still running workers
	pages   map[*page]bool // every loaded page
	idents  core.Identities[cdp.BrowserContextID, *egress.Identity]
	byID    map[string]*worker
	// recycleCh tells watch that the browser has started
	// RecycleBrowserAfter workers and runs none.
	recycleCh chan struct{}
	served    int
	live      int
	// negotiating counts workers between StartWorker and connected (page
	// loads that are not urgent wait while it is non-zero, as in gecko).
	negotiating int
	lastJob     time.Time
	ready       bool
	wg          sync.WaitGroup

	// Containment (contain.go), guarded by p.mu; makeMu serialises page
	// loads in new browser contexts (to tell their renderer's pid).
	makeMu     sync.Mutex
	procs      map[cdp.BrowserContextID]*rendererProc
	guardCh    chan struct{}
	crashes    atomic.Int64
	limitKills atomic.Int64
}

// generations returns b's running generation (none while down). Caller
// holds p.mu.
func (b *browser) generations() []*generation {
	if b.gen == nil {
		return nil
	}
	return []*generation{b.gen}
}

// wake wakes g's refiller.
func (g *generation) wake() { core.Wake(g.wakeCh) }

// alive reports whether g has not been stopped.
func (g *generation) alive() bool { return !core.IsClosed(g.dead) }

// launchArgs are the flags a Pool adds to Chromium's defaults: the
// default context's proxy (one that refuses everything, loopback
// included), and loopback ICE (always, as Firefox's workers gather
// loopback candidates: an offline client still connects over loopback).
func (p *Pool) launchArgs() []string {
	args := []string{"--proxy-server=socks5://" + p.global.Addr().String(), "--proxy-bypass-list=<-loopback>",
		// A spare renderer, started ahead for the next page, would
		// hide which process a new browser context's page runs in
		// (contain.go).
		"--disable-features=SpareRendererForSitePerProcess",
		"--allow-loopback-in-peer-connection"}
	return args
}

// supervise runs the slot's Chromium until the pool closes, restarting it
// with backoff (core.Supervisor).
func (b *browser) supervise(failed chan<- error) {
	p := b.p
	defer p.supWG.Done()
	sup := core.Supervisor{Name: "chromium", Log: b.log, Failed: failed,
		BackoffMin: backoffMin, BackoffMax: backoffMax, BackoffReset: backoffResetRun}
	core.Supervise(p.ctx, sup, func(ctx context.Context) (*browserProc, error) {
		return launch(ctx, p.opts.Chromium, p.launchArgs(), p.opts.Chromium.Logger.With("browser", b.idx))
	}, b.serve)
}

// serve installs a generation of bp, watches it and stops it.
func (b *browser) serve(bp *browserProc) (core.End, error) {
	p := b.p
	g := b.install(bp)
	end := b.watch(g)
	b.stop(g)
	switch end {
	case core.Recycled:
		b.log.Info("replacing chromium", "pid", bp.PID())
	case core.Died:
		p.mu.Lock()
		b.restarts++
		p.mu.Unlock()
	}
	return end, nil
}

// install makes a generation of bp the browser's current one and starts
// its refiller and guard.
func (b *browser) install(bp *browserProc) *generation {
	p := b.p
	g := &generation{
		b: b, bp: bp,
		dead:      make(chan struct{}),
		wakeCh:    make(chan struct{}, 1),
		recycleCh: make(chan struct{}, 1),
		tokens:    map[int64]*tokenCtx{},
		pages:     map[*page]bool{},
		byID:      map[string]*worker{},
		procs:     map[cdp.BrowserContextID]*rendererProc{},
		guardCh:   make(chan struct{}, 1),
	}
	port, _ := core.URLPort(bp.wsURL)
	undo := p.egress.DenyPort(port)
	g.wg.Add(1)
	go func() { defer g.wg.Done(); <-g.dead; undo() }()
	p.mu.Lock()
	b.gen = g
	if p.opts.Warm == 0 {
		p.markReady(g)
	}
	p.mu.Unlock()
	g.wg.Add(2)
	go g.refill()
	go g.guard()
	g.wake()
	return g
}

// watch waits until the browser dies, the pool closes or the browser is
// to be replaced, removing idle token contexts meanwhile.
func (b *browser) watch(g *generation) core.End {
	return core.Watch{Name: "chromium", Log: b.log, Done: g.bp.Done(), Err: g.bp.Err, Recycle: g.recycleCh,
		Tidy: func() { b.dropIdleTokens(g) }, TokenIdle: b.p.opts.TokenIdle}.Run(b.p.ctx)
}

// maybeRecycle tells watch to replace the browser once it has started
// RecycleBrowserAfter workers and runs none. Caller holds p.mu.
func (g *generation) maybeRecycle() {
	p := g.b.p
	if p.opts.RecycleBrowserAfter > 0 && g.served >= p.opts.RecycleBrowserAfter && g.live == 0 {
		core.Wake(g.recycleCh)
	}
}

// dropIdleTokens removes the browser contexts (pages and storage) of
// tokens idle for TokenIdle and of retired contexts without workers.
func (b *browser) dropIdleTokens(g *generation) {
	p := b.p
	p.mu.Lock()
	drop := core.TakeIdle(g.tokens, &g.retired, p.opts.TokenIdle)
	p.mu.Unlock()
	for _, tc := range drop {
		g.dropContext(tc)
	}
}

// stop marks g gone, ends its workers (they see g.dead), closes the
// process and waits for g's goroutines.
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
	close(g.dead)
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	if err := g.bp.Close(cctx); err != nil {
		p.mu.Lock()
		b.closeErr = fmt.Errorf("close chromium %d: %w", b.idx, err)
		p.mu.Unlock()
	}
	cancel()
	g.wg.Wait()
	g.closeIdentities()
}

// createContext creates a browser context with an egress identity of its
// own: its proxy is the identity's listener, loopback included.
func (g *generation) createContext(ctx context.Context) (cdp.BrowserContextID, error) {
	p := g.b.p
	id, err := p.egress.NewIdentity(fmt.Sprintf("chromium %d", g.b.idx))
	if err != nil {
		return "", fmt.Errorf("create browser context: %w", err)
	}
	res, err := cdp.Call(ctx, g.bp.Browser(), target.CreateBrowserContext, target.CreateBrowserContextParams{
		ProxyServer: "socks5://" + id.Addr().String(), ProxyBypassList: "<-loopback>"})
	if err != nil {
		_ = id.Close()
		return "", fmt.Errorf("create browser context: %w", err)
	}
	g.idents.Add(res.BrowserContextID, id)
	return res.BrowserContextID, nil
}

// removeContext disposes of browser context bc (its pages and storage)
// and closes its egress identity.
func (g *generation) removeContext(bc cdp.BrowserContextID) {
	ctx, cancel := context.WithTimeout(g.b.p.ctx, 5*time.Second)
	defer cancel()
	if _, err := cdp.Call(ctx, g.bp.Browser(), target.DisposeBrowserContext, target.DisposeBrowserContextParams{BrowserContextID: bc}); err != nil && g.alive() {
		g.b.log.Debug("dispose browser context", "err", err)
	}
	p := g.b.p
	p.mu.Lock()
	delete(g.procs, bc)
	p.mu.Unlock()
	g.idents.Remove(bc)
}

// identity returns the egress identity of browser context bc (nil if none).
func (g *generation) identity(bc cdp.BrowserContextID) *egress.Identity { return g.idents.Get(bc) }

// closeIdentities closes every egress identity of g (the browser is gone).
func (g *generation) closeIdentities() { g.idents.CloseAll() }

// sleepCtx waits for d or until ctx ends; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool { return core.Sleep(ctx, d) }
