package gecko

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/gecko/bidi"
	"github.com/geckohost/geckohost/gecko/core"
	"github.com/geckohost/geckohost/gecko/egress"
)

// shellEvent is the JSON the shell page sends on its channel (and returns
// from gh.start).
type shellEvent = core.ShellEvent

// pageMsg is one event from a worker's page.
type pageMsg struct {
	ev        shellEvent // from the shell's channel
	destroyed bool       // the page's tab is gone
}

// worker is one worker in a shell page: core.Worker (its negotiation and
// events; it implements engine.Worker) driven over BiDi, with its place
// in the pool. It is the core.Worker's Driver.
type worker struct {
	*core.Worker
	p   *Pool
	b   *browser
	g   *generation
	tc  *tokenCtx
	req engine.WorkerRequest
	log *slog.Logger

	// Guarded by p.mu.
	pg         *page // nil until the worker has a place in a page
	negotiated bool  // no longer counted in g.negotiating
}

func newWorker(p *Pool, b *browser, g *generation, tc *tokenCtx, pg *page, req engine.WorkerRequest) *worker {
	w := &worker{p: p, b: b, g: g, tc: tc, req: req, pg: pg, log: b.log.With("worker", req.WorkerID)}
	w.Worker = core.NewWorker(core.WorkerOptions{Request: req, Log: w.log, ICELoopback: p.opts.ICELoopback,
		MaxLifetime: p.opts.WorkerMaxLifetime, Dead: g.dead, Abandon: p.shut.Abandoned()}, w)
	return w
}

// run drives the worker from reservation to its end.
func (w *worker) run() {
	defer w.p.workerWG.Done()
	w.Run()
}

// requestClose asks the worker to end; the first reason wins.
func (w *worker) requestClose(reason engine.EndReason) { w.RequestClose(reason) }

// lose ends a worker whose content process died (or was killed for a
// limit): at once, its page is gone.
func (w *worker) lose(reason engine.EndReason, detail string) { w.Lose(reason, detail) }

// deliver queues an event of the worker's page (it runs on the BiDi read
// loop and never blocks).
func (w *worker) deliver(m pageMsg) {
	if m.destroyed {
		w.PageDestroyed()
		return
	}
	w.Deliver(m.ev)
}

// page is the worker's page (nil before it has one).
func (w *worker) page() *page {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.pg
}

// call calls fn(id, args...) in the worker's page over BiDi.
func (w *worker) call(ctx context.Context, pg *page, fn string, await bool, args ...string) (json.RawMessage, error) {
	as := []any{bidi.StringArg(w.req.WorkerID)}
	for _, a := range args {
		as = append(as, bidi.StringArg(a))
	}
	return w.g.ff.Conn().CallFunction(ctx, bidi.CallFunctionParams{FunctionDeclaration: fn, Context: pg.tab, Args: as, AwaitPromise: await})
}

// Place implements core.Driver.
func (w *worker) Place(ctx context.Context) (*egress.Identity, error) {
	pg, err := w.acquirePage(ctx)
	if err != nil {
		return nil, err
	}
	return w.g.identity(pg.uc), nil
}

// Start implements core.Driver.
func (w *worker) Start(ctx context.Context, offer, ice string) (string, error) {
	res, err := w.call(ctx, w.page(), "(id, code, url, offer, ice) => gh.start(id, code, url, offer, ice)", true,
		w.req.Code, w.req.Source, offer, ice)
	if err != nil {
		return "", err
	}
	raw, err := bidi.StringValue(res)
	if err != nil {
		return "", fmt.Errorf("unexpected start result %s", res)
	}
	return raw, nil
}

// StartError implements core.Driver: Firefox's reason is the page's.
func (w *worker) StartError(_ engine.Errno, reason string) string { return reason }

// AddCandidatesJSON implements core.Driver.
func (w *worker) AddCandidatesJSON(ctx context.Context, cs string) error {
	pg := w.page()
	if pg == nil {
		return errNoPage
	}
	_, err := w.call(ctx, pg, "(id, cs) => gh.addCandidates(id, cs)", true, cs)
	return err
}

// Quiesce implements core.Driver.
func (w *worker) Quiesce(ctx context.Context, reason engine.EndReason) (bool, error) {
	pg := w.page()
	if pg == nil {
		return false, nil
	}
	res, err := w.call(ctx, pg, "(id, reason) => gh.quiesce(id, reason)", false, string(reason))
	if err != nil {
		return false, err
	}
	ok, err := bidi.BoolValue(res)
	return err == nil && ok, nil
}

// Stop implements core.Driver.
func (w *worker) Stop(ctx context.Context) error {
	pg := w.page()
	if pg == nil {
		return nil
	}
	_, err := w.call(ctx, pg, "(id) => { gh.close(id); }", false)
	return err
}

// ConnLost implements core.Driver: the BiDi connection is closed.
func (w *worker) ConnLost(err error) bool {
	if errors.Is(err, bidi.ErrClosed) {
		return true
	}
	select {
	case <-w.g.ff.Conn().Done():
		return true
	default:
		return false
	}
}

// acquirePage returns the page the worker has a place in, waiting for (or
// loading) a new page of its token when every page is full.
func (w *worker) acquirePage(ctx context.Context) (*page, error) {
	p, g, tc := w.p, w.g, w.tc
	for {
		p.mu.Lock()
		if pg := w.pg; pg != nil {
			p.mu.Unlock()
			return pg, nil
		}
		if pg := tc.freePage(); pg != nil {
			pg.workers++
			w.pg = pg
			p.mu.Unlock()
			return pg, nil
		}
		fut := tc.making
		mine := fut == nil
		if mine {
			fut = &pageFut{done: make(chan struct{})}
			tc.making = fut
		}
		p.mu.Unlock()
		if mine {
			w.log.Debug("no free page: loading one")
			_ = g.makeTokenPage(tc, fut)
		}
		select {
		case <-fut.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for a worker page: %w", ctx.Err())
		}
		if fut.err != nil {
			return nil, fut.err
		}
	}
}

// Release implements core.Driver: the worker's place in its page, its
// token's and its browser's counts are given back; an empty page beyond
// the token's first one is closed.
func (w *worker) Release() {
	p, g, tc := w.p, w.g, w.tc
	var drop *page
	p.mu.Lock()
	if g.byID[w.req.WorkerID] == w {
		delete(g.byID, w.req.WorkerID)
	}
	if pg := w.pg; pg != nil {
		pg.workers--
		if pg.workers == 0 && !pg.closing && pg.tc == tc && len(tc.pages) > 1 {
			pg.closing = true
			tc.removePage(pg)
			drop = pg
		}
	}
	g.live--
	g.maybeRecycle()
	tc.workers--
	if tc.workers == 0 {
		tc.idleSince = time.Now()
		if tc.retired {
			g.dropRetired()
		}
	}
	p.mu.Unlock()
	if drop != nil {
		p.dropPage(g, drop)
	}
	g.wake()
}

// DoneNegotiating implements core.Driver: refills go on once no worker
// negotiates.
func (w *worker) DoneNegotiating() {
	w.p.mu.Lock()
	if !w.negotiated {
		w.negotiated = true
		w.g.negotiating--
	}
	w.p.mu.Unlock()
	w.g.wake()
}
