package chromium_test

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
	"testing"
	"time"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/gecko/chromium"
	"github.com/geckohost/geckohost/host"
	"github.com/geckohost/geckohost/host/client"
	"github.com/geckohost/geckohost/internal/leaktest"
	"github.com/geckohost/geckohost/internal/netns"
	"github.com/geckohost/geckohost/internal/testenv"
	"github.com/geckohost/geckohost/store"
)

// sources are the worker sources the tests' source server serves.
var sources = map[string]string{
	"/echo.js":    "self.onmessage = (e) => self.postMessage(e.data);",
	"/syntax.js":  "self.onmessage = (e) => {;\n",
	"/throw.js":   "const x = 1;\nthrow new Error('boom');",
	"/syntax1.js": "self.onmessage = (e) => { self.postMessage(e.data) );",
	"/json.js":    "const a = 1;\n  JSON.parse('{');",
	"/busy.js":    "self.onmessage = (e) => { for (;;) {} };",
	"/bomb.js": `const keep = [];
self.onmessage = (e) => { setInterval(() => { const b = new Uint8Array(16 << 20); b.fill(1); keep.push(b); }, 20); self.postMessage("growing"); };`,
	"/quota.js": `self.onmessage = async (e) => {
  try {
    const c = await caches.open("q");
    for (let i = 0; i < 40; i++) await c.put("https://q.example/x" + i, new Response(new Uint8Array(1 << 20)));
    self.postMessage("stored");
  } catch (err) { self.postMessage("err " + err.name + (err.name === "QuotaExceededError" ? "" : ": " + err.message)); }
};`,
	"/probe.js": `self.onmessage = (e) => {
  fetch(String(e.data), { mode: "no-cors" }).then((r) => self.postMessage("ok " + r.status), (err) => self.postMessage("err " + err));
};`,
	"/idb.js": `self.onmessage = (e) => {
  const [op, val] = String(e.data).split(":");
  const req = indexedDB.open("gh", 1);
  req.onupgradeneeded = () => req.result.createObjectStore("kv");
  req.onerror = () => self.postMessage("err " + req.error);
  req.onsuccess = () => {
    const tx = req.result.transaction("kv", op === "put" ? "readwrite" : "readonly");
    const st = tx.objectStore("kv");
    if (op === "put") { st.put(val, "k"); tx.oncomplete = () => self.postMessage("put"); return; }
    const g = st.get("k");
    g.onsuccess = () => self.postMessage("got " + (g.result === undefined ? "nothing" : g.result));
  };
};`,
}

func TestMain(m *testing.M) {
	snap := leaktest.Take(leaktest.Only("geckohost/", "github.com/pion/", "github.com/chromedp/"), leaktest.Timeout(10*time.Second))
	code := netns.Run(m)
	if netns.Inside() {
		code = snap.Code(code)
	}
	os.Exit(code)
}

func testLogger() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("CHROMIUM_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// stack is a host serving one chromium.Pool on loopback.
type stack struct {
	pool           *chromium.Pool
	db             *store.DB
	src            *httptest.Server
	wsURL          string
	tokenA, tokenB string
	cancel         context.CancelFunc
	served         chan error
}

// needChromium skips t when there is no Chromium or no namespace.
func needChromium(t *testing.T) {
	t.Helper()
	netns.Skip(t)
	if _, err := chromium.FindChromium(""); err != nil {
		testenv.Skip(t, "chromium", "apt-get install chromium", err)
	}
}

// newStack starts a pool with opts (ICELoopback on) and a host before it;
// cleanup closes everything.
func newStack(t *testing.T, opts chromium.PoolOptions) *stack {
	t.Helper()
	needChromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := &stack{}
	s.src = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := sources[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/javascript")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(s.src.Close)
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "geckohost.db"))
	if err != nil {
		t.Fatal(err)
	}
	s.db = db
	t.Cleanup(func() { _ = db.Close() })
	if _, s.tokenA, err = db.AddToken(ctx, domain.NewToken{Name: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, s.tokenB, err = db.AddToken(ctx, domain.NewToken{Name: "b"}); err != nil {
		t.Fatal(err)
	}
	opts.ICELoopback = true
	opts.Logger = testLogger()
	s.pool = chromium.NewPool(opts)
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if s.cancel != nil {
			s.cancel()
			<-s.served
		}
		if err := s.pool.Close(cctx); err != nil {
			t.Errorf("close pool: %v", err)
		}
	})
	t0 := time.Now()
	if err := s.pool.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("pool started in %v", time.Since(t0).Round(time.Millisecond))
	srv, err := host.New(host.Options{Store: db, Engine: s.pool, Logger: opts.Logger, EngineName: "chromium", AllowSources: []string{s.src.URL}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.wsURL = "ws://" + ln.Addr().String() + "/"
	sctx, scancel := context.WithCancel(context.Background())
	s.cancel = scancel
	s.served = make(chan error, 1)
	go func() { s.served <- srv.Serve(sctx, ln) }()
	return s
}

// dial opens a session with the worker at path.
func (s *stack) dial(ctx context.Context, token, path string) (*client.Session, error) {
	return client.Dial(ctx, s.wsURL, client.Options{Token: token, Source: s.src.URL + path, Loopback: true})
}

// ask sends msg and waits for the reply.
func ask(ctx context.Context, sess *client.Session, msg string) (string, error) {
	got := make(chan string, 1)
	sess.Channel.OnMessage(func(m webrtcMessage) {
		select {
		case got <- string(m.Data):
		default:
		}
	})
	if err := sess.Channel.SendText(msg); err != nil {
		return "", fmt.Errorf("send: %w", err)
	}
	select {
	case r := <-got:
		return r, nil
	case <-ctx.Done():
		return "", errors.New("no reply: " + ctx.Err().Error())
	}
}
