package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/gecko"
	"github.com/geckohost/geckohost/host"
	"github.com/geckohost/geckohost/internal/leaktest"
	"github.com/geckohost/geckohost/internal/netns"
	"github.com/geckohost/geckohost/store"
)

// workerSources are served by the test's source server.
var workerSources = map[string]string{
	"/echo.js":   "self.onmessage = (e) => self.postMessage(e.data);",
	"/syntax.js": "self.onmessage = (e) => {;\n",
	"/throw.js":  "const x = 1;\nthrow new Error('boom');",
	// syntax1.js is one line with a syntax error at column 52 (the ")").
	"/syntax1.js": "self.onmessage = (e) => { self.postMessage(e.data) );",
	// json.js throws a SyntaxError while it runs: a 203, not a 202.
	"/json.js":  "const a = 1;\n  JSON.parse('{');",
	"/close.js": "self.onmessage = (e) => { self.postMessage(e.data); self.close(); };",
	// lateecho.js answers each message 200 ms after it came.
	"/lateecho.js": "self.onmessage = (e) => setTimeout(() => self.postMessage(e.data), 200);",
	// burst.js, on a message "N", keeps busy for N ms, then posts 50
	// strings, a 60 KB ArrayBuffer and "last"; with N = 0 it then calls
	// self.close().
	"/burst.js": `self.onmessage = (e) => {
  const busy = Number(e.data) || 0;
  const t0 = Date.now(); while (Date.now() - t0 < busy) {}
  for (let i = 0; i < 50; i++) self.postMessage("m" + i);
  const b = new Uint8Array(60000);
  for (let i = 0; i < b.length; i++) b[i] = i % 251;
  self.postMessage(b.buffer);
  self.postMessage("last");
  if (busy === 0) self.close();
};`,
	// slow.js tells the source server it runs (importScripts of
	// started.js), then keeps its first run busy for 4 s.
	"/slow.js":    "importScripts('started.js');\nconst t0 = Date.now(); while (Date.now() - t0 < 4000) {}\nself.onmessage = (e) => self.postMessage(e.data);",
	"/started.js": "",
	"/ws.js": `self.onmessage = (e) => {
  const ws = new WebSocket(String(e.data));
  ws.onopen = () => { self.postMessage("open"); ws.close(); };
  ws.onerror = () => self.postMessage("error");
};`,
	// probe.js fetches the URL it is sent ("shell" means the shell
	// server's origin, read from its own location; "ws:..." opens a
	// WebSocket) and answers "ok <status>" or "err <error>".
	"/probe.js": `self.onmessage = (e) => {
  let url = String(e.data);
  if (url === "shell") url = new URL(self.location.href.replace(/^blob:/, "")).origin + "/";
  if (url.startsWith("ws:")) {
    const ws = new WebSocket(url);
    ws.onopen = () => { self.postMessage("ok open"); ws.close(); };
    ws.onerror = () => self.postMessage("err websocket");
    return;
  }
  // no-cors: a response without CORS headers is an opaque success
  // ("ok 0"), so an error is a network error, never a CORS refusal.
  fetch(url, { mode: "no-cors" }).then((r) => self.postMessage("ok " + r.status), (err) => self.postMessage("err " + err));
};`,
	"/idb.js": `self.onmessage = (e) => {
  const [op, val] = String(e.data).split(":");
  const req = indexedDB.open("gh", 1);
  req.onupgradeneeded = () => req.result.createObjectStore("kv");
  req.onerror = () => self.postMessage("err:" + req.error);
  req.onsuccess = () => {
    const db = req.result;
    const tx = db.transaction("kv", op === "set" ? "readwrite" : "readonly");
    const st = tx.objectStore("kv");
    if (op === "set") { st.put(val, "k"); tx.oncomplete = () => self.postMessage("ok"); }
    else { const g = st.get("k"); g.onsuccess = () => self.postMessage("got:" + (g.result ?? "")); }
  };
};`,
}

// stack is one geckohost: a store, a pool, a host server and a source server.
type stack struct {
	// kind is the stack's engine.
	kind engineKind
	pool enginePool
	db   *store.DB
	src  *httptest.Server
	// open is a loopback server the workers may reach (--worker-allow).
	open  *httptest.Server
	wsURL string
	// httpURL is the host's http:// base (for /status and /metrics).
	httpURL string
	tokenA  string
	tokenB  string
	dir     string
	// tokenAID and tokenBID are the tokens' ids.
	tokenAID, tokenBID int64

	mu      sync.Mutex
	fetched map[string]chan struct{} // path → closed on the next request

	cancel    context.CancelFunc
	serveDone chan error
}

var (
	extraClose []*stack // stacks started by benchmarks, closed by TestMain
)

func TestMain(m *testing.M) {
	// Once the pools are closed, nothing of geckohost, pion or net/http
	// may be left.
	snap := leaktest.Take(leaktest.Only("geckohost/", "github.com/pion/", "net/http."), leaktest.Timeout(10*time.Second))
	code := netns.Run(m)
	for _, e := range allEngines {
		if ss := sharedOf(e); ss.s != nil {
			extraClose = append(extraClose, ss.s)
		}
	}
	for _, s := range extraClose {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		if err := s.close(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "close stack:", err)
			code = 1
		}
		cancel()
	}
	if netns.Inside() {
		code = snap.Code(code)
	}
	os.Exit(code)
}

func testLogger() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("E2E_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// newStack starts a complete geckohost on loopback with the engine kind,
// its pool built from popts (for Chromium: the same options by name).
func newStack(ctx context.Context, kind engineKind, popts gecko.PoolOptions) (*stack, error) {
	return newStackWith(ctx, kind, popts, nil)
}

// newStackWith is newStack with host options changed by hopts.
func newStackWith(ctx context.Context, kind engineKind, popts gecko.PoolOptions, hopts func(*host.Options)) (*stack, error) {
	dir, err := os.MkdirTemp("", "geckohost-e2e-*")
	if err != nil {
		return nil, err
	}
	s := &stack{kind: kind, dir: dir, fetched: map[string]chan struct{}{}}
	s.src = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		if ch, ok := s.fetched[r.URL.Path]; ok {
			close(ch)
			delete(s.fetched, r.URL.Path)
		}
		s.mu.Unlock()
		if r.URL.Path == "/hang.js" { // a source that never answers
			<-r.Context().Done()
			return
		}
		body, ok := workerSources[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/javascript")
		_, _ = w.Write([]byte(body))
	}))
	s.open = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		_, _ = w.Write([]byte("open"))
	}))
	popts.Egress.Allow = append(popts.Egress.Allow, s.open.URL)
	fail := func(err error) (*stack, error) {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = s.close(cctx)
		return nil, err
	}
	s.db, err = store.Open(ctx, filepath.Join(dir, "geckohost.db"))
	if err != nil {
		return fail(err)
	}
	var ta, tb domain.Token
	if ta, s.tokenA, err = s.db.AddToken(ctx, domain.NewToken{Name: "a"}); err != nil {
		return fail(err)
	}
	if tb, s.tokenB, err = s.db.AddToken(ctx, domain.NewToken{Name: "b"}); err != nil {
		return fail(err)
	}
	s.tokenAID, s.tokenBID = ta.ID, tb.ID
	log := testLogger()
	// E2E_PREFS=name=true,name=false,name=64 adds Firefox prefs (for exploring).
	for _, kv := range strings.Split(os.Getenv("E2E_PREFS"), ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			if popts.Firefox.Prefs == nil {
				popts.Firefox.Prefs = map[string]any{}
			}
			if n, err := strconv.Atoi(v); err == nil {
				popts.Firefox.Prefs[k] = n
			} else {
				popts.Firefox.Prefs[k] = v == "true"
			}
		}
	}
	popts.ICELoopback = true
	popts.Logger = log
	pool, err := newPool(kind, popts)
	if err != nil {
		return fail(err)
	}
	s.pool = pool
	if err := s.pool.Start(ctx); err != nil {
		return fail(err)
	}
	// The pool's launcher builds a template profile in the background (a
	// second, short-lived Firefox). Let it finish before tests take their
	// goroutine baselines, so its goroutines are not counted as a leak.
	for leaktest.Running("gecko.(*Launcher).build") && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	ho := host.Options{Store: s.db, Engine: s.pool, Logger: log, AllowSources: []string{s.src.URL}, Browsers: poolBrowsers(s.pool)}
	if hopts != nil {
		hopts(&ho)
	}
	srv, err := host.New(ho)
	if err != nil {
		return fail(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	s.wsURL = "ws://" + ln.Addr().String() + "/"
	s.httpURL = "http://" + ln.Addr().String() + "/"
	sctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.serveDone = make(chan error, 1)
	go func() { s.serveDone <- srv.Serve(sctx, ln) }()
	return s, nil
}

// onFetch returns a channel closed when path is next requested.
func (s *stack) onFetch(path string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{})
	s.fetched[path] = ch
	return ch
}

func (s *stack) close(ctx context.Context) error {
	var errs []error
	if s.cancel != nil {
		s.cancel()
		if err := <-s.serveDone; err != nil {
			errs = append(errs, fmt.Errorf("serve: %w", err))
		}
	}
	if s.pool != nil {
		if err := s.pool.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if s.db != nil {
		if err := s.db.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	s.src.Close()
	s.open.Close()
	if err := os.RemoveAll(s.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// newPool builds the pool of engine kind from popts.
func newPool(kind engineKind, popts gecko.PoolOptions) (enginePool, error) {
	switch kind {
	case firefox:
		return gecko.NewPool(popts), nil
	case chromium:
		return newChromiumPool(popts)
	}
	return nil, fmt.Errorf("unknown engine %q", kind)
}

// setup returns engine e's stack shared by the tests (Warm 2), started
// once.
func setup(t testing.TB, e engineKind) *stack {
	t.Helper()
	netns.Skip(t)
	ss := startShared(e)
	if ss.err != nil {
		t.Fatal(ss.err)
	}
	return ss.s
}

// startShared starts engine e's shared stack once and returns it (or why
// it could not start).
func startShared(e engineKind) *sharedStack {
	ss := sharedOf(e)
	ss.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		ss.s, ss.err = newStack(ctx, e, gecko.PoolOptions{Warm: 2})
		// Let the warm slots fill so that the first test's goroutine
		// baseline is taken on a quiet pool.
		for ss.err == nil && ctx.Err() == nil {
			if bs := ss.s.pool.Browsers(); len(bs) == 1 && bs[0].Warm >= 2 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if ss.err != nil {
			ss.err = fmt.Errorf("start the shared %s stack: %w", e, ss.err)
		}
	})
	return ss
}
