package e2e_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/gecko"
	"github.com/geckohost/geckohost/host/client"
	"github.com/geckohost/geckohost/internal/netns"
	"github.com/pion/webrtc/v4"
)

// Hostile workers of the containment tests.
func init() {
	// bomb.js allocates without end (1e6-element arrays, about 8 MB each,
	// kept) on its first message, or at once when loaded as bombnow.js.
	bomb := `const keep = []; function bomb() { for (;;) keep.push(new Array(1e6).fill(1)); }`
	workerSources["/bomb.js"] = bomb + "\nself.onmessage = () => bomb();"
	workerSources["/bombnow.js"] = bomb + "\nbomb();"
	// spin.js loops for ever on its first message; spinnow.js at once.
	workerSources["/spin.js"] = "self.onmessage = () => { for (;;) {} };"
	workerSources["/spinnow.js"] = "for (;;) {}"
	// hog.js, on its first message, keeps a core busy for ever, back in
	// its event loop every 500 ms (under any busy limit).
	workerSources["/hog.js"] = "self.onmessage = () => setInterval(() => { const t = Date.now(); while (Date.now() - t < 500) {} }, 0);"
	// nest.js tries to spawn a nested worker (itself: a recursive spawner).
	workerSources["/nest.js"] = `self.onmessage = () => {
  try { new Worker("nest.js"); self.postMessage("spawned"); } catch (e) { self.postMessage("refused " + e.name); }
};`
	// fill.js, on a message, writes 1 MiB records of random bytes into
	// IndexedDB until a write fails, then posts "full <MiB written> <error
	// name>" (or "ok <MiB>" after 1 GiB).
	workerSources["/fill.js"] = `self.onmessage = () => {
  const open = indexedDB.open("fill", 1);
  open.onupgradeneeded = () => open.result.createObjectStore("kv");
  open.onerror = () => self.postMessage("full 0 " + (open.error && open.error.name));
  open.onsuccess = () => {
    const db = open.result;
    let n = 0;
    const next = () => {
      if (n >= 1024) { self.postMessage("ok " + n); return; }
      const b = new Uint8Array(1 << 20);
      for (let i = 0; i < b.length; i += 65536) crypto.getRandomValues(b.subarray(i, i + 65536));
      const tx = db.transaction("kv", "readwrite");
      tx.objectStore("kv").put(b, n);
      tx.oncomplete = () => { n++; next(); };
      tx.onabort = () => self.postMessage("full " + n + " " + (tx.error && tx.error.name));
    };
    next();
  };
};`
	// tick.js posts "tick" every 100 ms.
	workerSources["/tick.js"] = `setInterval(() => self.postMessage("tick"), 100);`
}

// contentOf waits until the pool watches the content process of token and
// returns it.
func contentOf(ctx context.Context, t *testing.T, s *stack, token int64) gecko.ContentInfo {
	t.Helper()
	for {
		for _, b := range s.pool.Browsers() {
			for _, c := range b.Contents {
				if c.Token == token {
					return c
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no content process of token %d: %+v", token, s.pool.Browsers())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitClosed waits until sess's data channel closes and returns when.
func waitClosed(ctx context.Context, t *testing.T, closed <-chan struct{}, what string) time.Time {
	t.Helper()
	select {
	case <-closed:
		return time.Now()
	case <-ctx.Done():
		t.Fatalf("%s: data channel not closed", what)
	}
	return time.Time{}
}

// onClosed returns a channel closed once the client sees its session end:
// the data channel closes, or the peer connection goes disconnected,
// failed or closed (a worker whose content process died sends nothing:
// the client notices by ICE consent).
func onClosed(sess *client.Session) <-chan struct{} {
	ch := make(chan struct{})
	var once sync.Once
	end := func() { once.Do(func() { close(ch) }) }
	sess.Channel.OnClose(end)
	sess.PC.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateDisconnected || st == webrtc.PeerConnectionStateFailed || st == webrtc.PeerConnectionStateClosed {
			end()
		}
	})
	return ch
}

// noLiveRecords fails unless no session record of the stack is live and no
// worker runs.
func noLiveRecords(ctx context.Context, t *testing.T, s *stack) {
	t.Helper()
	for {
		live := 0
		for _, b := range s.pool.Browsers() {
			live += b.Workers
		}
		st := getStatus(ctx, t, s)
		if live == 0 && st.Sessions.Negotiating == 0 && st.Sessions.Connected == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("workers still live: %d; status %+v", live, st.Sessions)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestContentProcessKilled: kill -9 of token A's content process ends A's
// workers (connected ones' channels close, a negotiating one gets 303)
// within 2 s, recorded "content-crashed"; token B's session lives on; A's
// next hello connects; no slot stays taken.
func TestContentProcessKilled(t *testing.T) {
	forEngines(t, func(t *testing.T, e engineKind) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		s := ownStack(t, ctx, e, gecko.PoolOptions{Warm: 1})
		a1, err := dial(ctx, t, s, s.tokenA, "/echo.js")
		if err != nil {
			t.Fatal(err)
		}
		defer closeSession(t, a1)
		a2, err := dial(ctx, t, s, s.tokenA, "/echo.js")
		if err != nil {
			t.Fatal(err)
		}
		defer closeSession(t, a2)
		b1, err := dial(ctx, t, s, s.tokenB, "/echo.js")
		if err != nil {
			t.Fatal(err)
		}
		defer closeSession(t, b1)
		closed1, closed2, closedB := onClosed(a1), onClosed(a2), onClosed(b1)
		ca := contentOf(ctx, t, s, s.tokenAID)
		cb := contentOf(ctx, t, s, s.tokenBID)
		if ca.PID == cb.PID {
			t.Fatalf("tokens share content process %d", ca.PID)
		}
		// /status shows the content processes with their tokens and memory.
		st := getStatus(ctx, t, s)
		seen := map[int64]bool{}
		for _, b := range st.Browsers {
			for _, c := range b.Contents {
				if c.MemoryBytes <= 0 || c.MemoryLimitBytes != gecko.DefaultWorkerMemory {
					t.Errorf("/status content %+v", c)
				}
				seen[c.Token] = true
			}
		}
		if !seen[s.tokenAID] || !seen[s.tokenBID] {
			t.Errorf("/status contents %+v lack a token", st.Browsers)
		}

		// A negotiating worker of A, busy in its first run.
		running := s.onFetch("/started.js")
		negErr := make(chan error, 1)
		go func() {
			sess, err := dial(ctx, t, s, s.tokenA, "/slow.js")
			if sess != nil {
				sess.Close()
			}
			negErr <- err
		}()
		select {
		case <-running:
		case <-ctx.Done():
			t.Fatal("the slow worker never ran")
		}
		killed := time.Now()
		if err := syscall.Kill(ca.PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err = <-negErr
		if !isErrno(err, engine.GeckoCrashed) {
			t.Errorf("negotiating A: %v, want 303", err)
		}
		if d := time.Since(killed); d > 2*time.Second {
			t.Errorf("303 %v after the kill, want ≤ 2 s", d)
		}
		t.Logf("A's workers ended %v after the kill (%v)", time.Since(killed), err)
		waitSession(ctx, t, s, a1.WorkerID, string(engine.EndContentCrashed))
		waitSession(ctx, t, s, a2.WorkerID, string(engine.EndContentCrashed))
		if d := time.Since(killed); d > 2*time.Second {
			t.Errorf("A's sessions recorded ended %v after the kill, want ≤ 2 s", d)
		}
		for _, c := range []<-chan struct{}{closed1, closed2} {
			t.Logf("A's client saw its session end %v after the kill", waitClosed(ctx, t, c, "A's session").Sub(killed))
		}

		// B lives on.
		select {
		case <-closedB:
			t.Fatal("B's channel closed")
		default:
		}
		if out := exchange(ctx, t, b1, "b alive"); string(out[0].Data) != "b alive" {
			t.Fatalf("B echo = %q", out[0].Data)
		}
		// A's next hello connects (in a new content process).
		a3, err := dial(ctx, t, s, s.tokenA, "/echo.js")
		if err != nil {
			t.Fatalf("A's hello after the kill: %v", err)
		}
		if out := exchange(ctx, t, a3, "a again"); string(out[0].Data) != "a again" {
			t.Fatalf("A echo = %q", out[0].Data)
		}
		if c := contentOf(ctx, t, s, s.tokenAID); c.PID == ca.PID {
			t.Errorf("A's content process is still %d", c.PID)
		}
		closeSession(t, a3)
		closeSession(t, b1)
		noLiveRecords(ctx, t, s)
		bs := s.pool.Browsers()
		if len(bs) != 1 || bs[0].ContentCrashes != 1 {
			t.Errorf("ContentCrashes: %+v", bs)
		}
		mfs := getMetrics(ctx, t, s)
		if v := value(mfs, "geckohost_worker_ends_total", "reason", "content-crashed"); v != 3 {
			t.Errorf("geckohost_worker_ends_total{reason=content-crashed} = %v, want 3", v)
		}
		if v := value(mfs, "geckohost_content_crashes_total", "cause", "crashed"); v != 1 {
			t.Errorf("geckohost_content_crashes_total{cause=crashed} = %v, want 1", v)
		}
	})
}

// TestMemoryBomb: a worker that allocates without end, before and after
// connected, is ended "memory-limit" (205 before connected) once its
// content process passes the limit; another token's 5 sessions keep
// echoing all along.
func TestMemoryBomb(t *testing.T) {
	forEngines(t, func(t *testing.T, e engineKind) {
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		s := ownStack(t, ctx, e, gecko.PoolOptions{Warm: 1, WorkerMemory: 192 << 20})
		var bs []*client.Session
		for range 5 {
			b, err := dial(ctx, t, s, s.tokenB, "/echo.js")
			if err != nil {
				t.Fatal(err)
			}
			defer closeSession(t, b)
			bs = append(bs, b)
		}
		stop := make(chan struct{})
		echoed := make(chan error, 1)
		go func() {
			n := 0
			for {
				select {
				case <-stop:
					echoed <- nil
					return
				default:
				}
				for i, b := range bs {
					want := "b" + string(rune('0'+i))
					if out := exchange(ctx, t, b, want); string(out[0].Data) != want {
						echoed <- errEcho(string(out[0].Data))
						return
					}
				}
				n++
			}
		}()

		// After connected: the first message starts the bomb.
		a, err := dial(ctx, t, s, s.tokenA, "/bomb.js")
		if err != nil {
			t.Fatal(err)
		}
		defer closeSession(t, a)
		closedA := onClosed(a)
		if err := a.Channel.SendText("go"); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		waitClosed(ctx, t, closedA, "bomb after connected")
		t.Logf("connected bomb ended %v after its start", time.Since(t0))
		rec := waitEnded(ctx, t, s, a.WorkerID)
		if rec.EndReason != string(engine.EndMemoryLimit) {
			t.Errorf("connected bomb ended %q, want memory-limit", rec.EndReason)
		}

		// Before connected: the bomb goes off in its first run.
		t0 = time.Now()
		_, err = dial(ctx, t, s, s.tokenA, "/bombnow.js")
		if !isErrno(err, engine.WorkerLimitExceeded) || !strings.Contains(err.Error(), "192 MiB") {
			t.Errorf("bomb before connected: %v, want 205 naming the limit", err)
		}
		t.Logf("negotiating bomb: %v after the hello: %v", time.Since(t0), err)

		// A token's own limit (token add --worker-memory) overrides the pool's.
		_, small, err := s.db.AddToken(ctx, domain.NewToken{Name: "small", WorkerMemory: 160 << 20})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dial(ctx, t, s, small, "/bombnow.js"); !isErrno(err, engine.WorkerLimitExceeded) || !strings.Contains(err.Error(), "160 MiB") {
			t.Errorf("bomb of a token with its own limit: %v, want 205 naming 160 MiB", err)
		}

		close(stop)
		if err := <-echoed; err != nil {
			t.Fatal(err)
		}
		// A's next hello connects.
		a2, err := dial(ctx, t, s, s.tokenA, "/echo.js")
		if err != nil {
			t.Fatalf("A's hello after the bombs: %v", err)
		}
		if out := exchange(ctx, t, a2, "a"); string(out[0].Data) != "a" {
			t.Fatalf("A echo = %q", out[0].Data)
		}
		closeSession(t, a2)
		for _, b := range bs {
			closeSession(t, b)
		}
		noLiveRecords(ctx, t, s)
		if v := value(getMetrics(ctx, t, s), "geckohost_worker_ends_total", "reason", "memory-limit"); v != 3 {
			t.Errorf("geckohost_worker_ends_total{reason=memory-limit} = %v, want 3", v)
		}
	})
}

type errEcho string

func (e errEcho) Error() string { return "echo = " + string(e) }

// TestWorkerLifetime: a ticking worker past its lifetime is ended
// "lifetime".
func TestWorkerLifetime(t *testing.T) {
	forEngines(t, func(t *testing.T, e engineKind) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		s := ownStack(t, ctx, e, gecko.PoolOptions{Warm: 1, WorkerMaxLifetime: 3 * time.Second})
		a, err := dial(ctx, t, s, s.tokenA, "/tick.js")
		if err != nil {
			t.Fatal(err)
		}
		defer closeSession(t, a)
		closed := onClosed(a)
		t0 := time.Now()
		waitClosed(ctx, t, closed, "ticking worker")
		t.Logf("closed %v after connected", time.Since(t0))
		waitSession(ctx, t, s, a.WorkerID, string(engine.EndLifetime))
		noLiveRecords(ctx, t, s)
	})
}

// TestBusyWorker: a worker that never returns to its event loop, at top
// level (205 before connected) or in onmessage, is ended "cpu-limit";
// another token's session echoes meanwhile.
func TestBusyWorker(t *testing.T) {
	forEngines(t, func(t *testing.T, e engineKind) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		s := ownStack(t, ctx, e, gecko.PoolOptions{Warm: 1, WorkerBusyLimit: 2 * time.Second})
		b, err := dial(ctx, t, s, s.tokenB, "/echo.js")
		if err != nil {
			t.Fatal(err)
		}
		defer closeSession(t, b)
		t0 := time.Now()
		_, err = dial(ctx, t, s, s.tokenA, "/spinnow.js")
		if !isErrno(err, engine.WorkerLimitExceeded) || !strings.Contains(err.Error(), "2 s") {
			t.Errorf("busy first run: %v, want 205 naming the limit", err)
		}
		t.Logf("busy first run: %v after the hello: %v", time.Since(t0), err)

		a, err := dial(ctx, t, s, s.tokenA, "/spin.js")
		if err != nil {
			t.Fatal(err)
		}
		defer closeSession(t, a)
		closed := onClosed(a)
		if err := a.Channel.SendText("go"); err != nil {
			t.Fatal(err)
		}
		t0 = time.Now()
		if out := exchange(ctx, t, b, "b"); string(out[0].Data) != "b" {
			t.Fatalf("B echo = %q", out[0].Data)
		}
		waitClosed(ctx, t, closed, "busy worker")
		t.Logf("busy worker closed %v after its message", time.Since(t0))
		waitSession(ctx, t, s, a.WorkerID, string(engine.EndCPULimit))
		if rec, err := s.db.GetSession(ctx, b.WorkerID); err != nil || rec.State == "ended" {
			t.Fatalf("B's session: %+v, %v", rec, err)
		}
		if out := exchange(ctx, t, b, "b2"); string(out[0].Data) != "b2" {
			t.Fatalf("B echo = %q", out[0].Data)
		}
		closeSession(t, b)
		noLiveRecords(ctx, t, s)
	})
}

// TestBusyProcessPaced: a token whose worker keeps a core busy has its
// content process (Firefox) or renderer (Chromium) paced (Niced in
// Browsers and /status), another token's is not, and once the hog is gone
// and the process quiet it gets its priority back.
func TestBusyProcessPaced(t *testing.T) {
	forEngines(t, func(t *testing.T, e engineKind) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		s := ownStack(t, ctx, e, gecko.PoolOptions{Warm: 1})
		b, err := dial(ctx, t, s, s.tokenB, "/echo.js")
		if err != nil {
			t.Fatal(err)
		}
		defer closeSession(t, b)
		h, err := dial(ctx, t, s, s.tokenA, "/hog.js")
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Channel.SendText("go"); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		niced := func(token int64) func([]gecko.BrowserInfo) bool {
			return func(bs []gecko.BrowserInfo) bool {
				for _, br := range bs {
					for _, c := range br.Contents {
						if c.Token == token && c.Niced {
							return true
						}
					}
				}
				return false
			}
		}
		waitBrowsers(ctx, t, s, "the hog's process paced", niced(s.tokenAID))
		t.Logf("paced %v after the hog started", time.Since(t0).Round(time.Millisecond))
		if niced(s.tokenBID)(s.pool.Browsers()) {
			t.Errorf("token B's quiet process is paced too: %+v", s.pool.Browsers())
		}
		if out := exchange(ctx, t, b, "b"); string(out[0].Data) != "b" {
			t.Fatalf("B echo = %q", out[0].Data)
		}
		// A's process lives on without the hog while B's session keeps
		// the browser (a token context is kept for its next hello).
		closeSession(t, h)
		t0 = time.Now()
		waitBrowsers(ctx, t, s, "the quiet process restored", func(bs []gecko.BrowserInfo) bool {
			return !niced(s.tokenAID)(bs)
		})
		t.Logf("restored %v after the hog ended", time.Since(t0).Round(time.Millisecond))
	})
}

// BenchmarkOpenBesideHogs is the fairness target: token B's hello → open
// p50 beside 10 CPU hogs of token A, against B's baseline taken just
// before (same stack, same minute). Run with -benchtime=1x; E2E_DIALS sets
// the dials per phase (default 20).
func BenchmarkOpenBesideHogs(b *testing.B) {
	netns.Skip(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s, err := newStack(ctx, firefox, gecko.PoolOptions{})
	if err != nil {
		b.Fatal(err)
	}
	extraClose = append(extraClose, s)
	dials := 20
	if n, err := strconv.Atoi(os.Getenv("E2E_DIALS")); err == nil && n > 0 {
		dials = n
	}
	p50 := func() float64 {
		var ds []time.Duration
		for range dials {
			waitWarm(ctx, b, s, 4)
			sess, err := dial(ctx, b, s, s.tokenB, "/echo.js")
			if err != nil {
				b.Fatal(err)
			}
			ds = append(ds, sess.Timings.Open)
			_ = sess.Close()
		}
		slices.Sort(ds)
		return float64(ds[len(ds)/2].Microseconds()) / 1000
	}
	for range b.N {
		base := p50()
		var hogs []*client.Session
		for range 10 {
			h, err := dial(ctx, b, s, s.tokenA, "/hog.js")
			if err != nil {
				b.Fatal(err)
			}
			hogs = append(hogs, h)
		}
		for _, h := range hogs { // all connected: now they spin
			if err := h.Channel.SendText("go"); err != nil {
				b.Fatal(err)
			}
		}
		time.Sleep(3 * time.Second) // a measurement's setup: the hogs' process is seen busy
		busy := p50()
		niced := false
		for _, br := range s.pool.Browsers() {
			for _, c := range br.Contents {
				niced = niced || (c.Token == s.tokenAID && c.Niced)
			}
		}
		for _, h := range hogs {
			_ = h.Close()
		}
		b.Logf("B open p50: %.1f ms alone, %.1f ms beside 10 hogs of A (x%.2f); A's process niced: %v", base, busy, busy/base, niced)
		b.ReportMetric(base, "baseline-p50-ms")
		b.ReportMetric(busy, "hogs-p50-ms")
		b.ReportMetric(busy/base, "ratio")
	}
	b.ReportMetric(0, "ns/op")
}

// TestNestedWorkersRefused: a worker cannot spawn workers.
func TestNestedWorkersRefused(t *testing.T) {
	forShared(t, func(t *testing.T, s *stack) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sess, err := dial(ctx, t, s, s.tokenA, "/nest.js")
		if err != nil {
			t.Fatal(err)
		}
		defer closeSession(t, sess)
		if out := exchange(ctx, t, sess, "go"); !strings.HasPrefix(string(out[0].Data), "refused") {
			t.Errorf("nested worker: %q, want refused", out[0].Data)
		}
	})
}

// TestStorageQuota: IndexedDB writes past a token's storage quota fail
// with QuotaExceededError inside the worker.
func TestStorageQuota(t *testing.T) {
	forEngines(t, func(t *testing.T, e engineKind) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		s := ownStack(t, ctx, e, gecko.PoolOptions{Warm: 1, WorkerStorage: 64 << 20})
		a, err := dial(ctx, t, s, s.tokenA, "/fill.js")
		if err != nil {
			t.Fatal(err)
		}
		defer closeSession(t, a)
		out := string(exchange(ctx, t, a, "go")[0].Data)
		t.Logf("fill: %s", out)
		var n int
		var name string
		if _, err := fmt.Sscanf(out, "full %d %s", &n, &name); err != nil || name != "QuotaExceededError" || n > 64 || n < 16 {
			t.Errorf("fill = %q, want QuotaExceededError at most 64 MiB in", out)
		}
	})
}

// TestWorkerCapHonest: past Firefox's per-domain worker cap (set low here;
// the pool sets it from its capacity) a hello gets a 301 naming the cap
// within seconds, never a 305 after 40 s.
func TestWorkerCapHonest(t *testing.T) {
	forEngines(t, func(t *testing.T, e engineKind) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		s := ownStack(t, ctx, e, gecko.PoolOptions{Warm: 1, Firefox: gecko.FirefoxOptions{Prefs: map[string]any{"dom.workers.maxPerDomain": 4}}})
		var open []*client.Session
		defer func() {
			for _, o := range open {
				closeSession(t, o)
			}
		}()
		for i := range 8 {
			t0 := time.Now()
			sess, err := dial(ctx, t, s, s.tokenA, "/echo.js")
			if err == nil {
				open = append(open, sess)
				continue
			}
			t.Logf("hello %d: %v after %v", i, err, time.Since(t0))
			if !isErrno(err, engine.NoGeckoAvailable) || !strings.Contains(err.Error(), "maxPerDomain") {
				t.Errorf("hello past the cap: %v, want 301 naming dom.workers.maxPerDomain", err)
			}
			if d := time.Since(t0); d > 10*time.Second {
				t.Errorf("hello past the cap failed after %v, want ≤ 10 s", d)
			}
			return
		}
		t.Errorf("8 sessions connected under a cap of 4 workers")
	})
}
