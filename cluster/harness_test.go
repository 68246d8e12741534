package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/geckohost/geckohost/cluster"
	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/host"
	"github.com/geckohost/geckohost/internal/leaktest"
	"github.com/geckohost/geckohost/internal/redistest"
	"github.com/geckohost/geckohost/internal/syncbuf"
	"github.com/geckohost/geckohost/internal/testenv"
	"github.com/geckohost/geckohost/store"
	"github.com/geckohost/geckohost/web"
)

func TestMain(m *testing.M) {
	snap := leaktest.Take()
	os.Exit(snap.Code(m.Run()))
}

// Test timings: faster than the defaults, same logic.
const (
	testHeartbeat = 100 * time.Millisecond
	testStale     = 600 * time.Millisecond
)

// fixture is one Redis and the nodes of a test.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	redis *redistest.Server
	c     *cluster.Client // for the test's own commands
	logs  *syncbuf.Buffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	if _, err := redistest.Binary(); err != nil {
		testenv.Skip(t, "redis-server", "apt-get install redis-server")
	}
	leaktest.Check(t) // first: its check runs after Redis is stopped
	rs := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	c, err := cluster.Open(ctx, rs.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	f := &fixture{t: t, ctx: ctx, redis: rs, c: c, logs: &syncbuf.Buffer{}}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("CLUSTER_TEST_LOGS") != "" {
			t.Logf("logs:\n%s", f.logs.String())
		}
	})
	return f
}

// token adds a token in Redis and returns its secret.
func (f *fixture) token(nt domain.NewToken) string {
	f.t.Helper()
	if nt.Name == "" {
		nt.Name = "tok"
	}
	_, secret, err := f.c.Tokens().AddToken(f.ctx, nt)
	if err != nil {
		f.t.Fatalf("add token: %v", err)
	}
	return secret
}

// tnode is one node: a fake engine, the cluster node, its host server.
type tnode struct {
	f    *fixture
	id   string
	eng  *fakeEngine
	node *cluster.Node
	srv  *host.Server
	hs   *httptest.Server
	db   *store.DB
	url  string // ws://.../
	demo string // a bundled demo worker URL on this node

	stopOnce sync.Once
}

// node starts a node with an engine of capacity workers.
func (f *fixture) node(id string, capacity int, tweak func(*cluster.Options)) *tnode {
	f.t.Helper()
	return f.nodeWith(id, capacity, tweak, nil)
}

// nodeWith is node with host options too (the queue is off by default).
func (f *fixture) nodeWith(id string, capacity int, tweak func(*cluster.Options), tweakHost func(*host.Options)) *tnode {
	f.t.Helper()
	t := f.t
	db, err := store.Open(f.ctx, filepath.Join(t.TempDir(), id+".db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	c, err := cluster.Dial(f.redis.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	eng := newFakeEngine(id, capacity)
	log := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("n", id)
	opts := cluster.Options{Client: c, ID: id, Local: eng, Load: eng.Load, Records: db, Logger: log,
		Heartbeat: testHeartbeat, Stale: testStale}
	if tweak != nil {
		tweak(&opts)
	}
	nd, err := cluster.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := nd.Start(f.ctx); err != nil {
		t.Fatalf("start node %s: %v", id, err)
	}
	hopts := host.Options{Store: nd, Engine: nd.Engine(), Limiter: nd, Logger: log, QueueSize: -1, Web: web.Handler()}
	if tweakHost != nil {
		tweakHost(&hopts)
	}
	srv, err := host.New(hopts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	tn := &tnode{f: f, id: id, eng: eng, node: nd, srv: srv, hs: hs, db: db,
		url: "ws" + strings.TrimPrefix(hs.URL, "http") + "/", demo: hs.URL + "/workers/echo.js"}
	t.Cleanup(tn.stop)
	return tn
}

// stop shuts the node down as serve does: drain, host, node.
func (tn *tnode) stop() {
	tn.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		dctx, dcancel := context.WithTimeout(ctx, 3*time.Second)
		_ = tn.node.Drain(dctx)
		dcancel()
		if err := tn.srv.Shutdown(ctx); err != nil {
			tn.f.t.Errorf("shutdown %s: %v", tn.id, err)
		}
		tn.hs.Close()
		if err := tn.node.Close(ctx); err != nil {
			tn.f.t.Errorf("close node %s: %v", tn.id, err)
		}
		tn.eng.die()
	})
}

// crash stops the node as kill -9 would.
func (tn *tnode) crash() {
	tn.stopOnce.Do(func() {
		wait := cluster.Crash(tn.node)
		tn.hs.CloseClientConnections()
		tn.eng.die()
		wait()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = tn.srv.Shutdown(ctx)
		tn.hs.Close()
	})
}

// testOffer is a minimal data-channel offer (host checks its m-lines; the
// fake engine never parses it).
const testOffer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"

// wsc is a raw signaling client.
type wsc struct {
	t   *testing.T
	ctx context.Context
	c   *websocket.Conn
}

// hello dials tn and sends a hello with secret for tn's demo worker.
func (tn *tnode) hello(secret string) *wsc {
	tn.f.t.Helper()
	t := tn.f.t
	c, _, err := websocket.Dial(tn.f.ctx, tn.url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", tn.id, err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	w := &wsc{t: t, ctx: tn.f.ctx, c: c}
	w.send(map[string]any{"messageType": "hello", "action": "client-hello", "authorization": "Bearer " + secret,
		"source": tn.demo, "webrtcOffer": testOffer})
	return w
}

func (w *wsc) send(v any) {
	w.t.Helper()
	b, _ := json.Marshal(v)
	if err := w.c.Write(w.ctx, websocket.MessageText, b); err != nil {
		w.t.Fatalf("write: %v", err)
	}
}

func (w *wsc) read() map[string]any {
	w.t.Helper()
	_, b, err := w.c.Read(w.ctx)
	if err != nil {
		w.t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		w.t.Fatalf("frame %s: %v", b, err)
	}
	return m
}

// connect runs the happy path: answer, a worker candidate, a client
// candidate, connected, close 1000. It returns the worker id and the
// answer (which names the node that ran the worker).
func (w *wsc) connect() (id, answer string) {
	w.t.Helper()
	m := w.read()
	if m["action"] != "worker-hello" {
		w.t.Fatalf("got %v, want worker-hello", m)
	}
	id, _ = m["workerId"].(string)
	answer, _ = m["webrtcAnswer"].(string)
	if m := w.read(); m["action"] != "worker-candidate" {
		w.t.Fatalf("got %v, want worker-candidate", m)
	}
	w.send(map[string]any{"messageType": "ice", "action": "client-candidate",
		"candidate": map[string]any{"candidate": "candidate:client", "sdpMid": "0", "sdpMLineIndex": 0}})
	if m := w.read(); m["messageType"] != "connected" {
		w.t.Fatalf("got %v, want connected", m)
	}
	if _, _, err := w.c.Read(w.ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		w.t.Fatalf("close %v, want 1000", err)
	}
	return id, answer
}

// expectError reads a worker-error with errno whose reason contains sub.
func (w *wsc) expectError(errno engine.Errno, sub string) map[string]any {
	w.t.Helper()
	m := w.read()
	if m["messageType"] != "worker-error" {
		w.t.Fatalf("got %v, want worker-error %d", m, errno)
	}
	if n, _ := m["errno"].(float64); engine.Errno(n) != errno {
		w.t.Fatalf("errno %v, want %d: %v", m["errno"], errno, m)
	}
	if r, _ := m["reason"].(string); !strings.Contains(r, sub) {
		w.t.Fatalf("reason %q does not contain %q", r, sub)
	}
	if _, b, err := w.c.Read(w.ctx); err == nil { // complete the close handshake
		w.t.Fatalf("frame after the worker-error: %s", b)
	}
	return m
}

// eventually polls f until nil or the fixture's context ends.
func (f *fixture) eventually(what string, fn func() error) {
	f.t.Helper()
	for {
		err := fn()
		if err == nil {
			return
		}
		select {
		case <-f.ctx.Done():
			f.t.Fatalf("%s: %v", what, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// nodesSeeEachOther waits until every node's registry view has them all.
func (f *fixture) seen(n int) {
	f.t.Helper()
	f.eventually(fmt.Sprintf("%d nodes registered", n), func() error {
		nodes, err := f.c.Nodes(f.ctx)
		if err != nil {
			return err
		}
		if len(nodes) != n {
			return fmt.Errorf("%d nodes", len(nodes))
		}
		return nil
	})
	// Each node reads the registry every Heartbeat/2.
	t := time.NewTimer(2 * testHeartbeat)
	defer t.Stop()
	<-t.C
}

// settled waits until the registry shows these live workers per node, and
// then until every node has read it.
func (f *fixture) settled(want map[string]int) {
	f.t.Helper()
	f.eventually(fmt.Sprintf("workers %v in the registry", want), func() error {
		nodes, err := f.c.Nodes(f.ctx)
		if err != nil {
			return err
		}
		got := map[string]int{}
		for _, ni := range nodes {
			got[ni.ID] = ni.Workers
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("workers %v", got)
		}
		return nil
	})
	t := time.NewTimer(2 * testHeartbeat)
	defer t.Stop()
	<-t.C
}
