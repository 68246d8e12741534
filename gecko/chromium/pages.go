package chromium

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/cdp/jsonv2"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/gecko/core"
)

// shellConfigJSON is what the shell page's gh.init gets (gecko's, with
// the engine named).
func (p *Pool) shellConfigJSON() string {
	return core.ShellConfig{Engine: "chromium", IceServers: p.opts.ICEServers, Loopback: p.opts.ICELoopback, Warm: p.opts.Warm,
		Capacity: workersPerPage, IdleMs: p.opts.WorkerIdle.Milliseconds(), BusyMs: p.opts.WorkerBusyLimit.Milliseconds()}.JSON()
}

// page is a tab with the worker shell loaded; it hosts up to
// workersPerPage workers of one token (none while generic).
type page struct {
	bc      cdp.BrowserContextID
	ctx     context.Context // the tab's chromedp context
	cancel  context.CancelFunc
	t       *chromedp.Target
	tc      *tokenCtx
	workers int  // places reserved (p.mu)
	warm    int  // pre-spawned workers ready (p.mu)
	closing bool // (p.mu)
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

// tokenCtx is a token's browser context in one browser generation.
type tokenCtx struct {
	id        int64
	bc        cdp.BrowserContextID // "" until the token's first page exists
	pages     []*page
	making    *pageFut
	workers   int
	served    int
	retired   bool
	idleSince time.Time
	limits    engine.Limits
}

// tokenFor returns the token's context in g, making a new one (from the
// generic page, when there is one) when it has none or its context is
// due for recycling. Caller holds p.mu.
func (g *generation) tokenFor(token int64) *tokenCtx {
	p := g.b.p
	tc := g.tokens[token]
	if tc != nil && p.opts.RecycleAfter > 0 && tc.served >= p.opts.RecycleAfter && tc.making == nil && tc.placed() == tc.workers {
		delete(g.tokens, token)
		tc.retired = true
		g.retired = append(g.retired, tc)
		tc = nil
	}
	if tc != nil {
		return tc
	}
	tc = &tokenCtx{id: token}
	if len(g.generic) > 0 {
		pg := g.generic[0]
		g.generic = g.generic[1:]
		g.lastJob = time.Now()
		pg.tc = tc
		tc.bc = pg.bc
		tc.pages = append(tc.pages, pg)
	}
	g.tokens[token] = tc
	return tc
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

// markReady marks g ready and lets Start return. Caller holds p.mu.
func (p *Pool) markReady(g *generation) {
	g.ready = true
	core.CloseOnce(p.readyCh)
}

// shellURL is the shell page's URL for browser context bc.
func (p *Pool) shellURL(bc cdp.BrowserContextID) string {
	return p.shell.URL() + "?bc=" + url.QueryEscape(string(bc))
}

// makePage opens a tab in browser context bc, loads the shell and
// initialises it. Its events are read by a goroutine of g's until the tab
// is closed.
func (p *Pool) makePage(ctx context.Context, g *generation, bc cdp.BrowserContextID) (*page, error) {
	tctx, tcancel := chromedp.NewContext(g.bp.ctx, chromedp.WithExistingBrowserContext(bc))
	pg := &page{bc: bc, ctx: tctx, cancel: tcancel}
	fail := func(what string, err error) (*page, error) {
		tcancel()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	// The first Do binds the tab's life to its context: tctx itself,
	// closed (cancelled) if ctx ends first.
	stopTab := context.AfterFunc(ctx, tcancel)
	err := chromedp.Do(tctx)
	if !stopTab() || err != nil {
		return fail("create tab", errors.Join(err, ctx.Err()))
	}
	cctx, cancel := context.WithCancel(tctx)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	pg.t = chromedp.FromContext(tctx).Target
	if _, err := cdp.Call(cctx, pg.t, target.SetAutoAttach, target.SetAutoAttachParams{AutoAttach: false}); err != nil {
		return fail("create tab", err)
	}
	if _, err := cdp.Call(cctx, pg.t, runtime.AddBinding, runtime.AddBindingParams{Name: bindingName}); err != nil {
		return fail("add shell binding", err)
	}
	calls, stopCalls := pg.t.Subscribe(runtime.BindingCalled.Method)
	crashed, stopCrashed := pg.t.Subscribe("Inspector.targetCrashed")
	g.wg.Add(1)
	go g.pageEvents(pg, calls, crashed, func() { stopCalls(); stopCrashed() })
	p.mu.Lock()
	g.pages[pg] = true
	p.mu.Unlock()
	if err := p.grant(cctx, g, pg); err != nil {
		p.dropPage(g, pg)
		return nil, err
	}
	loaded := func() {}
	if id := g.identity(bc); id != nil {
		loaded = id.ExpectShell()
	}
	err = chromedp.Do(cctx, chromedp.Navigate(p.shellURL(bc)))
	loaded()
	if err != nil {
		p.dropPage(g, pg)
		return nil, fmt.Errorf("load worker shell: %w", err)
	}
	raw, err := pg.eval(cctx, "gh.init(globalThis."+bindingName+", JSON.parse("+jsString(p.shellConfigJSON())+"))")
	if err != nil {
		p.dropPage(g, pg)
		return nil, fmt.Errorf("init worker shell: %w", err)
	}
	if n, err := strconv.Atoi(string(raw)); err == nil {
		p.mu.Lock()
		pg.warm = max(pg.warm, n)
		p.mu.Unlock()
	}
	return pg, nil
}

// dropPage forgets a page and closes its tab.
func (p *Pool) dropPage(g *generation, pg *page) {
	p.mu.Lock()
	pg.closing = true
	delete(g.pages, pg)
	p.mu.Unlock()
	pg.cancel() // closes the tab (bounded by chromedp), ends pageEvents
}

// pageEvents routes the events of pg's tab until it is closed: the
// shell's binding calls and a renderer crash.
func (g *generation) pageEvents(pg *page, calls, crashed <-chan jsonv2.Value, stop func()) {
	defer g.wg.Done()
	defer stop()
	for {
		select {
		case raw, ok := <-calls:
			if !ok {
				return
			}
			var ev runtime.EventBindingCalled
			if json.Unmarshal(raw, &ev) != nil || ev.Name != bindingName {
				continue
			}
			g.onShellEvent(pg, ev.Payload)
		case _, ok := <-crashed:
			if !ok {
				return
			}
			g.rendererCrashed(pg)
		case <-pg.ctx.Done():
			return
		case <-g.dead:
			return
		}
	}
}

// onShellEvent routes one event of a shell page.
func (g *generation) onShellEvent(pg *page, payload string) {
	p := g.b.p
	var e shellEvent
	if err := json.Unmarshal([]byte(payload), &e); err != nil {
		g.b.log.Debug("bad shell event", "err", err)
		return
	}
	if e.ID == "" {
		switch e.T {
		case "warm":
			p.mu.Lock()
			pg.warm = e.N
			p.mu.Unlock()
		case "log":
			g.b.log.Debug("shell", "msg", e.Msg)
		}
		return
	}
	p.mu.Lock()
	w := g.byID[e.ID]
	p.mu.Unlock()
	if w == nil {
		return
	}
	w.deliver(pageMsg{ev: e})
}

// eval evaluates expr in the page (awaiting a promise) and returns its
// value as JSON.
func (pg *page) eval(ctx context.Context, expr string) ([]byte, error) {
	yes := true
	res, err := cdp.Call(ctx, pg.t, runtime.Evaluate, runtime.EvaluateParams{Expression: expr, AwaitPromise: &yes, ReturnByValue: &yes})
	if err != nil {
		return nil, err
	}
	if d := res.ExceptionDetails; d != nil {
		msg := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			msg = d.Exception.Description
		}
		return nil, fmt.Errorf("%w: %s", errScript, msg)
	}
	if res.Result == nil {
		return nil, nil
	}
	return []byte(res.Result.Value), nil
}

// errScript is wrapped by the error of a page call that threw.
var errScript = errors.New("shell script error")

// jsString is s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
