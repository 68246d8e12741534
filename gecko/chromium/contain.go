package chromium

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/gecko"
	"github.com/geckohost/geckohost/gecko/core"
	"github.com/geckohost/geckohost/internal/proc"
)

// Containment: Chromium never shares a renderer process between browser
// contexts, and each token has a browser context of its own in a browser,
// so a token's workers there share one renderer (its shell pages are one
// site). The guard of each generation watches those processes from Go:
//
//   - A renderer that dies (a crash, the OOM killer, a kill, our memory
//     limit) is noticed at once: CDP reports Inspector.targetCrashed on
//     each of its tabs, and the guard also polls its pid. Every worker of
//     that browser context ends ("content-crashed", or the limit that
//     killed it) and the context is retired: the token's next hello gets a
//     fresh context (a new renderer; its storage starts empty).
//   - Memory: a renderer whose anonymous resident memory goes past its
//     token's limit is killed (SIGKILL): its workers end "memory-limit".
//   - CPU: a renderer that keeps a core busy is paced as Firefox's content
//     processes are (core.Pacing: a CPU cgroup of the lowest weight, else
//     nice 19), so that a token's busy workers cannot starve other tokens.
//
// CDP does not say which renderer runs a page: a browser context's pid is
// the renderer that appeared while its first page loaded (page loads in
// new contexts are serialised, and --disable-features=
// SpareRendererForSitePerProcess keeps Chromium from starting one ahead).

// rendererProc is the renderer process of one browser context. Guarded by
// p.mu.
type rendererProc struct {
	id   proc.ID
	mem  int64
	cpu  time.Duration
	pace core.PaceState
	// kill is why the guard killed it (memory-limit), with detail.
	kill       engine.EndReason
	killDetail string
}

const guardTick = 250 * time.Millisecond

// rendererPIDs lists the renderer processes of g's browser now (its
// process group's members started with --type=renderer).
func (g *generation) rendererPIDs() map[int]bool {
	out := map[int]bool{}
	for _, pid := range proc.GroupMembers(g.bp.PID()) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err == nil && bytes.Contains(b, []byte("--type=renderer")) {
			out[pid] = true
		}
	}
	return out
}

// learnRenderer records the renderer of browser context bc: the one
// renderer that was not there before its first page loaded (none when it
// is not one).
func (g *generation) learnRenderer(bc cdp.BrowserContextID, before map[int]bool) {
	var fresh []int
	for pid := range g.rendererPIDs() {
		if !before[pid] {
			fresh = append(fresh, pid)
		}
	}
	// A new context's blank first document may get a renderer of its
	// own beside the shell's: the shell's is the one running Workers
	// (its pre-spawned ones), else the newest.
	if len(fresh) > 1 {
		slices.Sort(fresh)
		if i := slices.IndexFunc(fresh, runsWorkers); i >= 0 {
			fresh = fresh[i : i+1]
		} else {
			fresh = fresh[len(fresh)-1:]
		}
	}
	if len(fresh) != 1 {
		g.b.log.Debug("the renderer of a browser context is not known", "new_renderers", fresh)
		return
	}
	id, err := proc.Identify(fresh[0])
	if err != nil {
		return
	}
	// Measured at once, so /status never shows a known renderer at 0 bytes
	// until the guard's next tick.
	rp := &rendererProc{id: id, cpu: proc.CPU(id.PID)}
	if mem, err := proc.AnonRSS(id.PID); err == nil {
		rp.mem = mem
	}
	p := g.b.p
	p.mu.Lock()
	g.procs[bc] = rp
	p.mu.Unlock()
}

// runsWorkers reports whether process pid has a dedicated Worker's thread.
func runsWorkers(pid int) bool {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		comm, err := os.ReadFile(dir + "/" + e.Name() + "/comm")
		if err == nil && bytes.HasPrefix(comm, []byte("DedicatedWorker")) {
			return true
		}
	}
	return false
}

// rendererCrashed handles Inspector.targetCrashed of one of pg's tabs.
func (g *generation) rendererCrashed(pg *page) {
	p := g.b.p
	p.mu.Lock()
	reason, detail := engine.EndContentCrashed, ""
	if rp := g.procs[pg.bc]; rp != nil && rp.kill != "" {
		reason, detail = rp.kill, rp.killDetail
	}
	p.mu.Unlock()
	g.loseContext(pg.bc, reason, detail)
}

// loseContext ends every worker of browser context bc at once (its
// renderer died), takes its pages out of service and retires the token's
// context. It is idempotent: the first report of a death ends it.
func (g *generation) loseContext(bc cdp.BrowserContextID, reason engine.EndReason, detail string) {
	p := g.b.p
	var pages []*page
	var ws []*worker
	p.mu.Lock()
	rp := g.procs[bc]
	delete(g.procs, bc)
	for pg := range g.pages {
		if pg.bc == bc && !pg.closing {
			pg.closing = true
			pages = append(pages, pg)
		}
	}
	g.generic = slices.DeleteFunc(g.generic, func(x *page) bool { return x.bc == bc })
	var token int64
	for id, tc := range g.tokens {
		if tc.bc == bc {
			token = tc.id
			delete(g.tokens, id)
			tc.retired = true
			g.retired = append(g.retired, tc)
		}
	}
	// Only the workers of pages this call takes out of service: a second
	// report of the same death (targetCrashed after the guard's poll, or
	// the other way round) finds their pages closing already and its
	// workers still ending, and must neither count nor end them again.
	for _, w := range g.byID {
		if w.pg != nil && slices.Contains(pages, w.pg) {
			ws = append(ws, w)
		}
	}
	p.mu.Unlock()
	if len(pages) == 0 {
		return
	}
	if reason == engine.EndContentCrashed {
		g.crashes.Add(1)
	}
	pid := 0
	if rp != nil {
		pid = rp.id.PID
	}
	g.b.log.Warn("a renderer process died", "browser_context", bc, "token", token, "pid", pid, "workers", len(ws), "reason", reason)
	for _, w := range ws {
		w.lose(reason, detail)
	}
	for _, pg := range pages {
		p.dropPage(g, pg)
	}
	g.wake()
}

// guard watches g's renderer processes until g is gone: a dead one loses
// its context, one past its memory limit is killed.
func (g *generation) guard() {
	defer g.wg.Done()
	p := g.b.p
	tick := time.NewTicker(guardTick)
	defer tick.Stop()
	for {
		select {
		case <-g.dead:
			return
		case <-p.ctx.Done():
			return
		case <-tick.C:
		}
		if !proc.Alive(g.bp.PID()) {
			// Renderers end with the browser: that is browser-died, which
			// supervise reports, not a renderer crash whose freed places
			// new workers would take.
			continue
		}
		type loss struct {
			bc             cdp.BrowserContextID
			reason, detail string
		}
		var lost []loss
		p.mu.Lock()
		for bc, rp := range g.procs {
			if proc.Check(rp.id) == proc.Gone {
				r := loss{bc: bc, reason: string(engine.EndContentCrashed)}
				if rp.kill != "" {
					r.reason, r.detail = string(rp.kill), rp.killDetail
				}
				lost = append(lost, r)
				continue
			}
			if g.checkMemory(bc, rp) {
				p.pacing.Pace(&rp.pace, rp.id.PID, rp.cpu, time.Now(), "browser_context", bc)
			}
		}
		p.mu.Unlock()
		for _, l := range lost {
			g.loseContext(l.bc, engine.EndReason(l.reason), l.detail)
		}
	}
}

// checkMemory measures rp and kills it once it is past its context's memory
// limit; it reports whether rp lives on. Caller holds p.mu.
func (g *generation) checkMemory(bc cdp.BrowserContextID, rp *rendererProc) bool {
	if mem, err := proc.AnonRSS(rp.id.PID); err == nil {
		rp.mem = mem
	}
	rp.cpu = proc.CPU(rp.id.PID)
	limit := g.memoryLimit(bc)
	if limit <= 0 || rp.mem <= limit || rp.kill != "" {
		return rp.kill == ""
	}
	rp.kill = engine.EndMemoryLimit
	rp.killDetail = fmt.Sprintf("its renderer process used %d MiB, past the memory limit of %d MiB", rp.mem>>20, limit>>20)
	g.b.log.Warn("a token's renderer process went past its memory limit: killed", "browser_context", bc,
		"pid", rp.id.PID, "memory_mib", rp.mem>>20, "limit_mib", limit>>20)
	g.limitKills.Add(1)
	_ = syscall.Kill(rp.id.PID, syscall.SIGKILL)
	return false
}

// memoryLimit is the memory limit of browser context bc's renderer: its
// token's, else the pool's. Caller holds p.mu.
func (g *generation) memoryLimit(bc cdp.BrowserContextID) int64 {
	limit := g.b.p.opts.WorkerMemory
	if tc := g.bcToken(bc); tc != nil && tc.limits.Memory != 0 {
		limit = tc.limits.Memory
	}
	return max(limit, 0)
}

// bcToken returns the token context of browser context bc (nil for a
// generic page's). Caller holds p.mu.
func (g *generation) bcToken(bc cdp.BrowserContextID) *tokenCtx {
	for _, tc := range g.tokens {
		if tc.bc == bc {
			return tc
		}
	}
	for _, tc := range g.retired {
		if tc.bc == bc {
			return tc
		}
	}
	return nil
}

// contents describes g's renderer processes. Caller holds p.mu.
func (g *generation) contents() []gecko.ContentInfo {
	var out []gecko.ContentInfo
	for bc, rp := range g.procs {
		ci := gecko.ContentInfo{PID: rp.id.PID, UserContext: string(bc), Memory: rp.mem, MemoryLimit: g.memoryLimit(bc), CPU: rp.cpu, Niced: rp.pace.Niced()}
		if tc := g.bcToken(bc); tc != nil {
			ci.Token = tc.id
		}
		out = append(out, ci)
	}
	slices.SortFunc(out, func(a, b gecko.ContentInfo) int { return a.PID - b.PID })
	return out
}
