package gecko

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"syscall"
	"time"

	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/gecko/bidi"
	"github.com/geckohost/geckohost/gecko/core"
	"github.com/geckohost/geckohost/internal/proc"
)

// Containment: every user context (a token's, or a generic page's) has a
// content process of its own in a browser. The guard of each generation
// watches those processes from Go:
//
//   - A content process that dies (a crash, the OOM killer, a kill, our
//     memory limit) is noticed at once: Firefox reports the shell page's
//     realm destroyed (script.realmDestroyed) the moment the process goes,
//     and the guard also polls each known process's pid. Every worker of
//     that process ends ("content-crashed", or the limit that killed it),
//     its pages are dropped and the token's next hello loads a new page
//     (in a new process).
//   - Memory: a content process whose anonymous resident memory goes past
//     its token's limit is killed (SIGKILL), which ends its workers with
//     "memory-limit".
//   - CPU: a content process that keeps a core busy is paced (core.Pacing:
//     a CPU cgroup of the lowest weight, else nice 19), so that a token's
//     busy workers cannot starve other tokens; it is moved back once quiet.
//
// The pid of a user context's content process comes from Firefox's own
// process list (ChromeUtils.requestProcInfo, in the browser's privileged
// scope, which --remote-allow-system-access opens to the BiDi session
// only): each shell page's URL names its user context.

const (
	// guardTick is how often the guard looks at the content processes.
	guardTick = 250 * time.Millisecond
	// mapEvery bounds how often the guard asks Firefox for its process
	// list while some user context's process is not known.
	mapEvery = time.Second
)

// contentProc is the content process of one user context in a generation.
// Guarded by p.mu.
type contentProc struct {
	uc   string
	id   proc.ID
	mem  int64         // anonymous resident memory, bytes, at the last look
	cpu  time.Duration // CPU time used so far
	pace core.PaceState
	// kill is why the guard killed it (memory-limit), with detail.
	kill       engine.EndReason
	killDetail string
}

// ContentInfo describes the content process of one user context of a
// browser (see BrowserInfo.Contents).
type ContentInfo = core.ContentInfo

// shellURL is the shell page's URL for user context uc (the URL names it,
// so that Firefox's process list tells which process runs it).
func (p *Pool) shellURL(uc string) string {
	return p.shell.URL() + "?uc=" + url.QueryEscape(uc)
}

// realmEvent is the params of script.realmCreated / realmDestroyed.
type realmEvent struct {
	Realm   string `json:"realm"`
	Context string `json:"context"`
	Origin  string `json:"origin"`
	Type    string `json:"type"`
}

// onRealm tracks the shell pages' realms: a page's realm that is destroyed
// while the page is not being closed by the pool means its content process
// died. It runs on the BiDi read loop and must not block.
func (g *generation) onRealm(method string, params json.RawMessage) {
	p := g.b.p
	var r realmEvent
	if json.Unmarshal(params, &r) != nil || r.Realm == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if method == "script.realmCreated" {
		if pg := g.pages[r.Context]; pg != nil && r.Type == "window" && r.Origin == p.shell.Origin() {
			pg.realm = r.Realm
			g.realms[r.Realm] = pg
		}
		return
	}
	pg := g.realms[r.Realm]
	if pg == nil {
		return
	}
	delete(g.realms, r.Realm)
	if pg.closing || g.stopping {
		return
	}
	g.losePage(pg)
	g.signalGuard()
}

// losePage takes a page whose content process died out of service: no new
// worker gets a place in it, and the guard ends its workers and closes its
// tab. Caller holds p.mu.
func (g *generation) losePage(pg *page) {
	pg.closing = true
	if g.pages[pg.tab] == pg {
		delete(g.pages, pg.tab)
	}
	if pg.tc != nil {
		pg.tc.removePage(pg)
	} else {
		g.generic = slices.DeleteFunc(g.generic, func(x *page) bool { return x == pg })
	}
	g.lost = append(g.lost, pg)
}

func (g *generation) signalGuard() {
	select {
	case g.guardCh <- struct{}{}:
	default:
	}
}

// guard watches g's content processes until g is gone (see the comment at
// the top of this file).
func (g *generation) guard() {
	defer g.wg.Done()
	p := g.b.p
	tick := time.NewTicker(guardTick)
	defer tick.Stop()
	var mapped time.Time
	for {
		select {
		case <-g.dead:
			return
		case <-p.ctx.Done():
			return
		case <-g.guardCh:
		case <-tick.C:
		}
		if g.watchProcs() && time.Since(mapped) >= mapEvery {
			mapped = time.Now()
			g.mapProcs()
		}
		g.endLost()
	}
}

// watchProcs looks at each known content process: a dead one loses its
// pages, one past its memory limit is killed, a busy one is niced. It
// reports whether some user context with pages has no known process.
func (g *generation) watchProcs() bool {
	p := g.b.p
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if g.stopping || !proc.Alive(g.ff.PID()) {
		// Content processes end with their parent: that is the browser
		// dying, which supervise reports (browser-died), not a crash of
		// one context's process whose freed places new workers would take.
		return false
	}
	for uc, cp := range g.procs {
		if proc.Check(cp.id) == proc.Gone {
			delete(g.procs, uc)
			for _, pg := range g.pages {
				if pg.uc == uc && !pg.closing {
					g.losePage(pg)
				}
			}
			if cp.kill != "" {
				g.killed[uc] = cp // for endLost (which forgets it)
			}
			continue
		}
		if mem, err := proc.AnonRSS(cp.id.PID); err == nil {
			cp.mem = mem
		}
		if limit := g.memoryLimit(uc); limit > 0 && cp.mem > limit && cp.kill == "" {
			cp.kill = engine.EndMemoryLimit
			cp.killDetail = fmt.Sprintf("its content process used %s, past the memory limit of %s", mib(cp.mem), mib(limit))
			g.b.log.Warn("a token's content process went past its memory limit: killed", "user_context", uc,
				"token", g.ucToken(uc), "pid", cp.id.PID, "memory", mib(cp.mem), "limit", mib(limit))
			_ = syscall.Kill(cp.id.PID, syscall.SIGKILL)
			continue
		}
		cp.cpu = proc.CPU(cp.id.PID)
		g.b.p.pacing.Pace(&cp.pace, cp.id.PID, cp.cpu, now, "user_context", uc)
	}
	for _, pg := range g.pages {
		if !pg.closing && pg.realm != "" && g.procs[pg.uc] == nil {
			return true
		}
	}
	return false
}

// memoryLimit is the memory limit of user context uc's process: its
// token's, else the pool's. Caller holds p.mu.
func (g *generation) memoryLimit(uc string) int64 {
	limit := g.b.p.opts.WorkerMemory
	if tc := g.ucTokenCtx(uc); tc != nil && tc.limits.Memory != 0 {
		limit = tc.limits.Memory
	}
	return max(limit, 0)
}

// ucTokenCtx returns the token context whose user context is uc (nil for a
// generic page's). Caller holds p.mu.
func (g *generation) ucTokenCtx(uc string) *tokenCtx {
	for _, tc := range g.tokens {
		if tc.uc == uc {
			return tc
		}
	}
	for _, tc := range g.retired {
		if tc.uc == uc {
			return tc
		}
	}
	return nil
}

// ucToken is the id of the token of user context uc (0: none). Caller
// holds p.mu.
func (g *generation) ucToken(uc string) int64 {
	if tc := g.ucTokenCtx(uc); tc != nil {
		return tc.id
	}
	return 0
}

// procEntry is one content process of Firefox's process list.
type procEntry struct {
	PID  int      `json:"pid"`
	Docs []string `json:"docs"`
}

// procInfoJS lists Firefox's web content processes with the documents
// they hold.
const procInfoJS = `ChromeUtils.requestProcInfo().then((i) => JSON.stringify(i.children.
  filter((c) => String(c.type).startsWith("web")).
  map((c) => ({ pid: c.pid, docs: c.windows.map((w) => (w.documentURI ? w.documentURI.spec : "")) }))))`

// mapProcs asks Firefox which process runs each user context's shell
// pages and starts watching the ones not known yet.
func (g *generation) mapProcs() {
	p := g.b.p
	ctx, cancel := context.WithTimeout(p.ctx, callTimeout)
	defer cancel()
	res, err := g.ff.Conn().EvaluateChrome(ctx, procInfoJS)
	if err != nil {
		g.b.log.Debug("list firefox's content processes", "err", err)
		return
	}
	raw, err := bidi.StringValue(res)
	var list []procEntry
	if err == nil {
		err = json.Unmarshal([]byte(raw), &list)
	}
	if err != nil {
		g.b.log.Debug("list firefox's content processes", "err", err)
		return
	}
	prefix := p.shell.URL() + "?uc="
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range list {
		for _, d := range e.Docs {
			q, ok := cutPrefix(d, prefix)
			if !ok {
				continue
			}
			uc, err := url.QueryUnescape(q)
			if err != nil || g.procs[uc] != nil || !g.hasPages(uc) {
				continue
			}
			id, err := proc.Identify(e.PID)
			if err != nil {
				continue
			}
			cp := &contentProc{uc: uc, id: id}
			cp.mem, _ = proc.AnonRSS(id.PID)
			cp.cpu = proc.CPU(id.PID)
			g.procs[uc] = cp
		}
	}
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || s[:len(prefix)] != prefix {
		return "", false
	}
	return s[len(prefix):], true
}

// hasPages reports whether user context uc has a live shell page. Caller
// holds p.mu.
func (g *generation) hasPages(uc string) bool {
	for _, pg := range g.pages {
		if pg.uc == uc && !pg.closing {
			return true
		}
	}
	return false
}

// endLost ends the workers of the pages whose content process died and
// closes their tabs.
func (g *generation) endLost() {
	p := g.b.p
	p.mu.Lock()
	lost := g.lost
	g.lost = nil
	type end struct {
		reason engine.EndReason
		detail string
		ws     []*worker
		pages  int
		token  int64
	}
	byUC := map[string]*end{}
	for _, pg := range lost {
		e := byUC[pg.uc]
		if e == nil {
			e = &end{reason: engine.EndContentCrashed, token: g.ucToken(pg.uc)}
			cp := g.procs[pg.uc]
			if cp == nil {
				cp = g.killed[pg.uc]
			}
			if cp != nil && cp.kill != "" {
				e.reason, e.detail = cp.kill, cp.killDetail
				g.limitKills.Add(1)
			}
			// The process is gone: the user context's next page runs in
			// a new one.
			delete(g.procs, pg.uc)
			delete(g.killed, pg.uc)
			byUC[pg.uc] = e
		}
		e.pages++
		for _, w := range g.byID {
			if w.pg == pg {
				e.ws = append(e.ws, w)
			}
		}
	}
	p.mu.Unlock()
	for uc, e := range byUC {
		if e.reason == engine.EndContentCrashed {
			g.b.log.Warn("a content process died", "user_context", uc, "token", e.token, "pages", e.pages, "workers", len(e.ws))
			g.crashes.Add(1)
		} else {
			g.b.log.Warn("a content process was killed", "user_context", uc, "token", e.token, "reason", e.reason,
				"pages", e.pages, "workers", len(e.ws))
		}
		for _, w := range e.ws {
			w.lose(e.reason, e.detail)
		}
	}
	for _, pg := range lost {
		ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		if err := g.ff.Conn().CloseContext(ctx, pg.tab); err != nil {
			g.b.log.Debug("close a crashed tab", "err", err)
		}
		cancel()
	}
	if len(lost) > 0 {
		g.wake()
	}
}

// contents describes g's known content processes. Caller holds p.mu.
func (g *generation) contents() []ContentInfo {
	out := make([]ContentInfo, 0, len(g.procs))
	for uc, cp := range g.procs {
		out = append(out, ContentInfo{PID: cp.id.PID, Token: g.ucToken(uc), UserContext: uc, Memory: cp.mem,
			MemoryLimit: g.memoryLimit(uc), CPU: cp.cpu, Niced: cp.pace.Niced()})
	}
	slices.SortFunc(out, func(a, b ContentInfo) int { return a.PID - b.PID })
	return out
}

// mib formats a byte count in MiB.
func mib(n int64) string { return fmt.Sprintf("%d MiB", n>>20) }
