package chromium

import (
	"context"
	"errors"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/geckohost/geckohost/gecko/core"
)

// refillHold: page loads that are not urgent wait this long at most while
// workers negotiate.
const refillHold = time.Second

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
	if p.ctx.Err() != nil || g.b.gen != g || p.opts.Warm == 0 || !g.alive() {
		return nil
	}
	if g.negotiating > 0 && time.Since(g.lastJob) < refillHold {
		return nil
	}
	if len(g.generic)+g.pending == 0 {
		g.pending++
		g.lastJob = time.Now()
		return g.makeGeneric
	}
	for _, tc := range g.tokens {
		if tc.bc != "" && tc.making == nil && tc.workers > 0 && tc.free() < pageSpare &&
			len(tc.pages)*workersPerPage < p.opts.MaxWorkersPerBrowser {
			fut := &pageFut{done: make(chan struct{})}
			tc.making = fut
			g.lastJob = time.Now()
			return func() error { return g.makeTokenPage(tc, fut) }
		}
	}
	return nil
}

// newContextPage creates a browser context and loads a page in it; page
// loads in new contexts are serialised so that the guard learns the new
// renderer's pid (contain.go).
func (g *generation) newContextPage(ctx context.Context) (cdp.BrowserContextID, *page, error) {
	g.makeMu.Lock()
	defer g.makeMu.Unlock()
	before := g.rendererPIDs()
	bc, err := g.createContext(ctx)
	if err != nil {
		return "", nil, err
	}
	pg, err := g.b.p.makePage(ctx, g, bc)
	if err != nil {
		g.removeContext(bc)
		return "", nil, err
	}
	g.learnRenderer(bc, before)
	return bc, pg, nil
}

// makeGeneric loads a generic page in a fresh browser context.
func (g *generation) makeGeneric() error {
	p := g.b.p
	ctx, cancel := context.WithTimeout(p.ctx, 2*callTimeout)
	defer cancel()
	bc, pg, err := g.newContextPage(ctx)
	p.mu.Lock()
	g.pending--
	keep := err == nil && p.ctx.Err() == nil && g.b.gen == g
	if keep {
		g.generic = append(g.generic, pg)
		p.markReady(g)
	}
	p.mu.Unlock()
	if err == nil && !keep {
		p.dropPage(g, pg)
		g.removeContext(bc)
	}
	return err
}

// makeTokenPage loads a page for tc (creating tc's browser context first
// if it has none), adds it to tc's pages and completes fut.
func (g *generation) makeTokenPage(tc *tokenCtx, fut *pageFut) error {
	p := g.b.p
	ctx, cancel := context.WithTimeout(p.ctx, 2*callTimeout)
	defer cancel()
	p.mu.Lock()
	bc := tc.bc
	p.mu.Unlock()
	var created cdp.BrowserContextID
	var pg *page
	var err error
	if bc == "" {
		created, pg, err = g.newContextPage(ctx)
	} else {
		pg, err = p.makePage(ctx, g, bc)
	}
	p.mu.Lock()
	keep := err == nil && p.ctx.Err() == nil && g.alive() && (g.tokens[tc.id] == tc || tc.retired)
	if keep {
		if created != "" {
			tc.bc = created
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
		g.removeContext(created)
	}
	return err
}

// dropContext closes tc's pages and disposes of its browser context.
func (g *generation) dropContext(tc *tokenCtx) {
	p := g.b.p
	p.mu.Lock()
	pages := tc.pages
	tc.pages = nil
	bc := tc.bc
	p.mu.Unlock()
	for _, pg := range pages {
		p.dropPage(g, pg)
	}
	if bc != "" {
		g.removeContext(bc)
	}
}
