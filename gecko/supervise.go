package gecko

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/geckohost/geckohost/gecko/core"
	"github.com/geckohost/geckohost/gecko/egress"
)

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
	restarts int // times its browser died and was restarted (p.mu)
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
	served    int                                       // workers started
	pages     map[string]*page                          // by tab
	idents    core.Identities[string, *egress.Identity] // egress identities by user context
	undoDeny  func()                                    // lets the BiDi port be reached again once the browser is gone
	byID      map[string]*worker                        // its workers by id, from StartWorker to their end
	// ready: its first page is loaded (or Warm is 0), so a new token's
	// first worker need not wait for one.
	ready bool
	live  int
	// negotiating counts workers between StartWorker and connected (or
	// their end). While it is non-zero, page loads that are not urgent
	// wait (up to refillHold): opening a tab keeps Firefox's parent
	// process busy and delays the BiDi calls of a negotiation by 50-200 ms.
	negotiating int
	lastJob     time.Time
	wg          sync.WaitGroup

	// Containment (contain.go), guarded by p.mu.
	realms map[string]*page        // the shell pages by their realm
	procs  map[string]*contentProc // the user contexts' content processes
	killed map[string]*contentProc // killed by the guard, pages being ended
	lost   []*page                 // pages whose process died, to end
	// guardCh wakes the guard; crashes and limitKills count content
	// processes that died and that the guard killed.
	guardCh    chan struct{}
	stopping   bool // stop runs: its pages and processes go by our hand
	crashes    atomic.Int64
	limitKills atomic.Int64
}

// generations returns b's running generations: the current one, a
// replacement loading and replaced ones draining. Caller holds p.mu.
func (b *browser) generations() []*generation {
	var gs []*generation
	if b.gen != nil {
		gs = append(gs, b.gen)
	}
	if b.next != nil {
		gs = append(gs, b.next)
	}
	for _, g := range b.old {
		if g != b.gen {
			gs = append(gs, g)
		}
	}
	return gs
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
		core.Wake(g.recycleCh)
	}
}

// dropRetired wakes watch to remove the retired contexts without workers.
func (g *generation) dropRetired() { core.Wake(g.dropCh) }

// alive reports whether g has not been stopped.
func (g *generation) alive() bool { return !core.IsClosed(g.dead) }

// wake wakes g's refillers.
func (g *generation) wake() { core.Wake(g.wakeCh) }

// supervise runs the slot's Firefox until the pool closes, restarting it
// with backoff (core.Supervisor).
func (b *browser) supervise(failed chan<- error) {
	p := b.p
	defer p.supWG.Done()
	sup := core.Supervisor{Name: "firefox", Log: b.log, Failed: failed,
		BackoffMin: backoffMin, BackoffMax: backoffMax, BackoffReset: backoffResetRun}
	core.Supervise(p.ctx, sup, p.launcher.Launch, b.serve)
}

// serve makes a generation of ff, installs it (taking over from the one it
// replaces) and watches it; then it stops it, or, to replace it, lets it
// drain.
func (b *browser) serve(ff *Firefox) (core.End, error) {
	p := b.p
	g := b.newGeneration(ff)
	if err := b.subscribe(g); err != nil {
		b.log.Error("subscribe to firefox events", "err", err)
		b.stop(g)
		return core.Died, err
	}
	standby := b.install(g)
	if standby {
		b.takeOver(g)
	}
	end := b.watch(g)
	switch end {
	case core.Closed:
		b.stop(g)
	case core.Recycled:
		// g goes on serving until the replacement is up, then
		// drains.
		p.mu.Lock()
		b.old = append(b.old, g)
		started := g.served
		p.mu.Unlock()
		b.log.Info("replacing firefox", "pid", ff.PID(), "workers_started", started)
		p.supWG.Add(1)
		go b.drain(g)
	default:
		b.stop(g)
		p.mu.Lock()
		b.restarts++
		p.mu.Unlock()
	}
	return end, nil
}

// newGeneration is a generation for the launched ff, its BiDi events
// routed to it.
func (b *browser) newGeneration(ff *Firefox) *generation {
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
		undoDeny:  b.p.denyBiDi(ff),
		realms:    map[string]*page{},
		procs:     map[string]*contentProc{},
		killed:    map[string]*contentProc{},
		guardCh:   make(chan struct{}, 1),
	}
	ff.Conn().OnEvent(g.onEvent)
	return g
}

// subscribe asks g's Firefox for the events the pool follows.
func (b *browser) subscribe(g *generation) error {
	ctx, cancel := context.WithTimeout(b.p.ctx, callTimeout)
	defer cancel()
	return g.ff.Conn().Subscribe(ctx, []string{"script.message", "log.entryAdded", "browsingContext.contextDestroyed",
		"script.realmCreated", "script.realmDestroyed"}, nil)
}

// install makes g the browser's current generation, or its standby while
// another serves (a replacement: RecycleBrowserAfter), and starts its
// refillers and guard. It reports whether g stands by.
func (b *browser) install(g *generation) (standby bool) {
	p := b.p
	p.mu.Lock()
	standby = b.gen != nil
	if standby {
		b.next = g
	} else {
		b.gen = g
		if p.opts.Warm == 0 {
			p.markReady(g)
		}
	}
	p.mu.Unlock()
	for range refillersPerBrs {
		g.wg.Add(1)
		go g.refill()
	}
	g.wg.Add(1)
	go g.guard()
	g.wake()
	return standby
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

// watch waits until the browser dies, the pool closes or the browser is
// to be replaced (it has started RecycleBrowserAfter workers and runs
// none), removing idle and retired token user contexts meanwhile.
func (b *browser) watch(g *generation) core.End {
	return core.Watch{Name: "firefox", Log: b.log, Done: g.ff.Done(), Err: g.ff.Err, Recycle: g.recycleCh,
		Tidy: func() { b.dropIdleTokens(g) }, Drop: g.dropCh, TokenIdle: b.p.opts.TokenIdle}.Run(b.p.ctx)
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
	for _, tc := range core.TakeIdle(g.tokens, &g.retired, p.opts.TokenIdle) {
		forget(tc)
	}
	p.mu.Unlock()
	for _, uc := range drop {
		ctx, cancel := context.WithTimeout(p.ctx, callTimeout)
		if err := g.removeUserContext(ctx, uc); err != nil {
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
	g.stopping = true
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
	g.closeIdentities()
	g.undoDeny()
}

// sleepCtx waits for d or until ctx ends; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool { return core.Sleep(ctx, d) }
