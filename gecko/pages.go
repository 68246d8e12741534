package gecko

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/gecko/bidi"
	"github.com/geckohost/geckohost/gecko/core"
)

// shellConfigJSON is what the shell page's gh.init gets.
func (p *Pool) shellConfigJSON() string {
	return core.ShellConfig{IceServers: p.opts.ICEServers, Loopback: p.opts.ICELoopback, Warm: p.opts.Warm, Capacity: workersPerPage,
		IdleMs: p.opts.WorkerIdle.Milliseconds(), BusyMs: p.opts.WorkerBusyLimit.Milliseconds()}.JSON()
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
	pg := &page{tab: tab, uc: uc}
	p.mu.Lock()
	g.pages[tab] = pg
	p.mu.Unlock()
	loaded := func() {}
	if id := g.identity(uc); id != nil {
		loaded = id.ExpectShell() // the egress proxy lets this navigation through
	}
	err = conn.Navigate(ctx, tab, p.shellURL(uc))
	loaded()
	if err != nil {
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
	realm   string // the shell's realm (script.realmCreated)
	tc      *tokenCtx
	workers int // places reserved (guarded by p.mu)
	warm    int // pre-spawned workers ready in the page
	closing bool
}

// Reserved counts the places reserved in pg. Caller holds p.mu.
func (pg *page) Reserved() int { return pg.workers }

// Closing reports whether pg is going. Caller holds p.mu.
func (pg *page) Closing() bool { return pg.closing }

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
	limits    engine.Limits // the token's own (from its latest request)
}

// Busy reports whether tc runs workers or has a page being made. Caller
// holds p.mu.
func (tc *tokenCtx) Busy() bool { return tc.workers > 0 || tc.making != nil }

// IdleSince is when tc's last worker ended. Caller holds p.mu.
func (tc *tokenCtx) IdleSince() time.Time { return tc.idleSince }

// placed counts the workers that have a place in tc's pages (the others
// wait for a page). Caller holds p.mu.
func (tc *tokenCtx) placed() int { return core.Placed(tc.pages) }

// freePage returns the first page of tc with a free place. Caller holds
// p.mu.
func (tc *tokenCtx) freePage() *page {
	pg, _ := core.FreePage(tc.pages, workersPerPage)
	return pg
}

// free counts the free places in tc's pages. Caller holds p.mu.
func (tc *tokenCtx) free() int { return core.Free(tc.pages, workersPerPage) }

// removePage takes pg out of tc's pages. Caller holds p.mu.
func (tc *tokenCtx) removePage(pg *page) {
	tc.pages = slices.DeleteFunc(tc.pages, func(x *page) bool { return x == pg })
}

// markReady marks g ready to take workers without loading a page first
// (Ready reports it) and lets Start return. Caller holds p.mu.
func (p *Pool) markReady(g *generation) {
	g.ready = true
	core.CloseOnce(p.readyCh)
}

// refill keeps g's generic page loaded and pre-loads the next page of
// tokens whose pages are nearly full, one page at a time.
func (g *generation) refill() {
	defer g.wg.Done()
	p := g.b.p
	core.Refill(p.ctx, core.Refiller{Log: g.b.log, Mu: &p.mu, Next: g.nextJob, Wake: g.wakeCh, Hold: refillHold,
		Dead: g.dead, Backoff: backoffMin})
}

// nextJob picks the next page to load: the generic page while there is
// none, then the next page of tokens running out of places (neither while
// workers negotiate, up to refillHold). Caller holds p.mu.
func (g *generation) nextJob() (load func() error) {
	p := g.b.p
	if p.ctx.Err() != nil || (g.b.gen != g && g.b.next != g) || p.opts.Warm == 0 {
		return nil
	}
	// A negotiation in flight holds every page load back, up to refillHold
	// since the last load began or the generic page was taken: loading one
	// (a new user context: a content process to start) slowed the first
	// session of the token that took the generic page by 100-400 ms.
	if g.negotiating > 0 && time.Since(g.lastJob) < refillHold {
		return nil
	}
	if len(g.generic)+g.pending == 0 {
		g.pending++
		g.lastJob = time.Now()
		return g.makeGeneric
	}
	for _, tc := range g.tokens {
		if tc.uc != "" && tc.making == nil && tc.workers > 0 && tc.free() < pageSpare &&
			len(tc.pages)*workersPerPage < p.opts.MaxWorkersPerBrowser {
			fut := &pageFut{done: make(chan struct{})}
			tc.making = fut
			g.lastJob = time.Now()
			return func() error { return g.makeTokenPage(tc, fut) }
		}
	}
	return nil
}

// makeGeneric loads a generic page in a fresh user context.
func (g *generation) makeGeneric() error {
	p := g.b.p
	ctx, cancel := context.WithTimeout(p.ctx, 2*callTimeout)
	defer cancel()
	uc, err := g.createUserContext(ctx)
	var pg *page
	if err == nil {
		pg, err = p.makePage(ctx, g, uc)
	}
	p.mu.Lock()
	g.pending--
	keep := err == nil && p.ctx.Err() == nil && (g.b.gen == g || g.b.next == g)
	if keep {
		g.generic = append(g.generic, pg)
		p.markReady(g)
	}
	p.mu.Unlock()
	if !keep && uc != "" {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = g.removeUserContext(rctx, uc)
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
		uc, err = g.createUserContext(ctx)
		if err == nil {
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
		_ = g.removeUserContext(rctx, created)
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
	case "script.realmCreated", "script.realmDestroyed":
		g.onRealm(ev.Method, ev.Params)
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
			for _, w := range g.byID {
				if w.pg == pg {
					ws = append(ws, w)
				}
			}
		}
		p.mu.Unlock()
		for _, w := range ws {
			w.deliver(pageMsg{destroyed: true})
		}
		g.wake()
	}
}
