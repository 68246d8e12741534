package host_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/host"
	"github.com/geckohost/geckohost/internal/leaktest"
	"github.com/geckohost/geckohost/internal/netns"
	"github.com/geckohost/geckohost/internal/syncbuf"
	"github.com/geckohost/geckohost/store"
)

// TestMain runs the tests in a private network namespace when it can (as
// root): the source-fetch tests name addresses (private, link-local) that
// geckohost must refuse before connecting, and none may leave the machine
// if it did not.
func TestMain(m *testing.M) {
	snap := leaktest.Take()
	os.Exit(snap.Code(netns.Run(m)))
}

// testCtx is the test's bound.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls f until it returns nil or the test's context ends.
func eventually(t *testing.T, ctx context.Context, what string, f func() error) {
	t.Helper()
	var err error
	for {
		if err = f(); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, err)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

type harness struct {
	t    *testing.T
	ctx  context.Context
	db   *store.DB
	eng  *fakeEngine
	srv  *host.Server
	hs   *httptest.Server
	url  string // ws://127.0.0.1:PORT/
	demo string // a bundled demo worker source URL
	logs *syncbuf.Buffer
	// shutdownFailOK: the test shut the server down with too short a
	// deadline on purpose.
	shutdownFailOK bool
}

func newHarness(t *testing.T, eng *fakeEngine, tweak func(*host.Options)) *harness {
	t.Helper()
	leaktest.Check(t)
	ctx := testCtx(t)
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if eng == nil {
		eng = newFakeEngine(happyScript)
	}
	logs := &syncbuf.Buffer{}
	opts := host.Options{
		Store:  db,
		Engine: eng,
		Web:    testWeb, // the bundled workers are fetched from it
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	if tweak != nil {
		tweak(&opts)
	}
	srv, err := host.New(opts)
	if err != nil {
		t.Fatalf("host.New: %v", err)
	}
	hs := httptest.NewServer(srv)
	h := &harness{}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil && !h.shutdownFailOK {
			t.Errorf("Shutdown: %v", err)
		}
		hs.Close()
	})
	*h = harness{
		t: t, ctx: ctx, db: db, eng: eng, srv: srv, hs: hs,
		url:  "ws" + strings.TrimPrefix(hs.URL, "http") + "/",
		demo: hs.URL + "/workers/echo.js",
		logs: logs,
	}
	return h
}

// defaultTokenName names the tokens that tests do not name.
const defaultTokenName = "tok"

// token adds a token and returns its secret.
func (h *harness) token(nt domain.NewToken) string {
	h.t.Helper()
	if nt.Name == "" {
		nt.Name = defaultTokenName
	}
	_, secret, err := h.db.AddToken(h.ctx, nt)
	if err != nil {
		h.t.Fatalf("add token: %v", err)
	}
	return secret
}

type tclient struct {
	t *testing.T
	h *harness
	c *websocket.Conn
}

func (h *harness) dial(header http.Header) *tclient {
	h.t.Helper()
	c, resp, err := websocket.Dial(h.ctx, h.url, &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		h.t.Fatalf("dial %s: %v (status %d)", h.url, err, status)
	}
	h.t.Cleanup(func() { _ = c.CloseNow() })
	return &tclient{t: h.t, h: h, c: c}
}

// hello dials and sends a hello for the demo worker with the bearer
// secret.
func (h *harness) hello(secret string) *tclient {
	h.t.Helper()
	c := h.dial(nil)
	c.send(hello("Bearer "+secret, h.demo))
	return c
}

func (c *tclient) sendRaw(s string) {
	c.t.Helper()
	if err := c.c.Write(c.h.ctx, websocket.MessageText, []byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *tclient) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(string(b))
}

// testWeb stands for the web package's handler: every path under
// /workers/ is an echo worker (the fake engines tell tests apart by the
// worker's name), the rest 404.
var testWeb = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/workers/") {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/javascript")
	_, _ = io.WriteString(w, "self.onmessage = (e) => self.postMessage(e.data);\n")
})

// testOffer is a minimal data-channel offer (the fake engine never parses
// it; host checks its m-lines).
const testOffer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"

func hello(auth, source string) map[string]any {
	m := map[string]any{"messageType": "hello", "action": "client-hello", "source": source, "webrtcOffer": testOffer}
	if auth != "" {
		m["authorization"] = auth
	}
	return m
}

func cand(s string) map[string]any {
	return map[string]any{"messageType": "ice", "action": "client-candidate",
		"candidate": map[string]any{"candidate": s, "sdpMid": "0", "sdpMLineIndex": 0}}
}

// read reads one frame as a JSON object.
func (c *tclient) read() map[string]any {
	c.t.Helper()
	typ, b, err := c.c.Read(c.h.ctx)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	if typ != websocket.MessageText {
		c.t.Fatalf("got a %v frame", typ)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("frame %s: %v", b, err)
	}
	return m
}

// expectClose reads until the close and checks its code.
func (c *tclient) expectClose(code websocket.StatusCode) {
	c.t.Helper()
	_, b, err := c.c.Read(c.h.ctx)
	if err == nil {
		c.t.Fatalf("want close %v, got frame %s", code, b)
	}
	if got := websocket.CloseStatus(err); got != code {
		c.t.Fatalf("close status %v (%v), want %v", got, err, code)
	}
}

// expectError reads one worker-error with errno, then the close; it returns
// the workerId field (nil or a string).
func (c *tclient) expectError(errno engine.Errno, reasonSub string) any {
	c.t.Helper()
	m := c.read()
	if m["messageType"] != "worker-error" {
		c.t.Fatalf("got %v, want worker-error %d", m, errno)
	}
	n, ok := m["errno"].(float64)
	if !ok || engine.Errno(n) != errno {
		c.t.Fatalf("errno %v (%T), want %d; frame %v", m["errno"], m["errno"], errno, m)
	}
	reason, _ := m["reason"].(string)
	if reason == "" || !strings.Contains(reason, reasonSub) {
		c.t.Fatalf("reason %q does not contain %q", reason, reasonSub)
	}
	id, present := m["workerId"]
	if !present {
		c.t.Fatalf("worker-error without workerId field: %v", m)
	}
	want := websocket.StatusInternalError
	switch {
	case errno == engine.ShuttingDown:
		want = websocket.StatusGoingAway
	case errno < 200:
		want = websocket.StatusPolicyViolation
	}
	c.expectClose(want)
	return id
}

// session polls the store until the worker's record satisfies ok.
func (h *harness) session(id string, ok func(domain.Session) bool) domain.Session {
	h.t.Helper()
	var s domain.Session
	eventually(h.t, h.ctx, "session "+id, func() error {
		var err error
		s, err = h.db.GetSession(h.ctx, id)
		if err != nil {
			return err
		}
		if !ok(s) {
			return fmt.Errorf("record not there yet: %+v", s)
		}
		return nil
	})
	return s
}

func ended(s domain.Session) bool { return s.State == "ended" }

// nextWorker waits for the engine's next started worker.
func (h *harness) nextWorker() *fakeWorker {
	h.t.Helper()
	select {
	case w := <-h.eng.started:
		return w
	case <-h.ctx.Done():
		h.t.Fatal("no worker started")
	}
	return nil
}

// emit sends an event through a worker from the test.
func (h *harness) emit(w *fakeWorker, ev engine.Event) {
	h.t.Helper()
	select {
	case w.Emit <- ev:
	case <-h.ctx.Done():
		h.t.Fatal("emit: worker not listening")
	}
}

func candidate(s string) engine.Candidate {
	mid := "0"
	var idx uint16
	return engine.Candidate{Candidate: s, SDPMid: &mid, SDPMLineIndex: &idx}
}

// happyScript answers, sends a candidate, and connects.
func happyScript(ctx context.Context, req engine.WorkerRequest) ([]step, error) {
	return []step{
		{Ev: engine.Event{Kind: engine.EventAnswer, Answer: "v=0 answer"}},
		{Ev: engine.Event{Kind: engine.EventCandidate, Candidate: candidate("candidate:w1")}},
		{Ev: engine.Event{Kind: engine.EventConnected}},
	}, nil
}

// waitClosed waits until a worker has been closed and its loop ended.
func (h *harness) waitClosed(w *fakeWorker) {
	h.t.Helper()
	select {
	case <-w.done:
	case <-h.ctx.Done():
		h.t.Fatal("worker not closed")
	}
	eventually(h.t, h.ctx, "Worker.Close called", func() error {
		if w.closes.Load() == 0 {
			return fmt.Errorf("worker ended without Close")
		}
		return nil
	})
}

var errAny = errors.New("any")

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

var netListenConfig net.ListenConfig

// fakeStore is a Store with no tokens, for New's validation.
type fakeStore struct{}

func (fakeStore) LookupToken(ctx context.Context, secret string) (domain.Token, error) {
	return domain.Token{}, domain.ErrNotFound
}
func (fakeStore) SaveSession(ctx context.Context, s domain.Session) error { return nil }
