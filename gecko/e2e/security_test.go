package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/host/client"
	"github.com/geckohost/geckohost/internal/netns"
)

// TestWorkerEgress: a worker's requests go through geckohost's egress
// proxy. Loopback, a private address, Firefox's BiDi port and the shell
// server are network errors in the worker, counted in its session record;
// its own source origin and a --worker-allow target are reachable.
func TestWorkerEgress(t *testing.T) {
	forShared(t, func(t *testing.T, s *stack) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		// A loopback service that is not allowed: it must see no request.
		var hits sync.Map
		inside := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
			hits.Store(r.URL.Path, true)
			w.Header().Set("Access-Control-Allow-Origin", "*")
		})
		bs := s.pool.Browsers()
		if len(bs) == 0 {
			t.Fatal("no browser")
		}
		bidi, err := url.Parse(bs[0].BiDi)
		if err != nil || bidi.Port() == "" {
			t.Fatalf("BiDi URL %q: %v", bs[0].BiDi, err)
		}
		// The same token's other sessions would count in this one's record
		// (they share a user context): token b is used by this test alone.
		sess, err := dial(ctx, t, s, s.tokenB, "/probe.js")
		if err != nil {
			t.Fatal(err)
		}
		probe := func(target string) string {
			t.Helper()
			out := exchange(ctx, t, sess, target)
			return string(out[0].Data)
		}
		refused := []string{
			inside.URL + "/loopback",
			strings.Replace(inside.URL, "127.0.0.1", "localhost", 1) + "/localhost",
			// 10.255.255.1 is refused by the proxy before any packet; and the
			// test's network namespace has no route anywhere but lo.
			"http://10.255.255.1/private",
			"http://" + bidi.Host + "/",
			"ws://" + bidi.Host + "/session",
			"shell",
		}
		for _, target := range refused {
			if got := probe(target); !strings.HasPrefix(got, "err") {
				t.Errorf("%s: %q, want a network error", target, got)
			}
		}
		if _, ok := hits.Load("/loopback"); ok {
			t.Error("the loopback service got a request")
		}
		for _, target := range []string{s.open.URL + "/allowed", s.src.URL + "/echo.js"} {
			if got := probe(target); !strings.HasPrefix(got, "ok") {
				t.Errorf("%s: %q, want ok", target, got)
			}
		}
		closeSession(t, sess)
		rec := waitEnded(ctx, t, s, sess.WorkerID)
		if rec.EgressRefused < len(refused) {
			t.Errorf("session record: %d egress requests refused, want at least %d", rec.EgressRefused, len(refused))
		}
		t.Logf("refused %d", rec.EgressRefused)
	})
}

// TestWorkerEgressPublic: a public address (192.0.2.1, a documentation
// address added to lo of the test's own network namespace) is reachable under the default --worker-egress public.
func TestWorkerEgressPublic(t *testing.T) {
	netns.Skip(t)
	// The address and its server are the parent's: both engines' subtests,
	// in parallel, reach the same one. Parallel subtests run once this
	// function has returned: what they use is ended by t.Cleanup.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	if out, err := exec.CommandContext(ctx, "ip", "addr", "add", "192.0.2.1/32", "dev", "lo").CombinedOutput(); err != nil {
		t.Fatalf("ip addr add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "addr", "del", "192.0.2.1/32", "dev", "lo").Run() })
	ln, err := net.Listen("tcp", "192.0.2.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	forShared(t, func(t *testing.T, s *stack) {
		sess, err := dial(ctx, t, s, s.tokenB, "/probe.js")
		if err != nil {
			t.Fatal(err)
		}
		defer closeSession(t, sess)
		if got := string(exchange(ctx, t, sess, "http://"+ln.Addr().String()+"/")[0].Data); !strings.HasPrefix(got, "ok") {
			t.Fatalf("public address: %q, want ok", got)
		}
	})
}

// TestHangingSourceDoesNotStarve: 200 hellos of token a to a source that
// never answers hold no browser slot (the source is fetched before a slot
// is taken, at most 8 at a time per token); token b's hello meanwhile
// connects.
func TestHangingSourceDoesNotStarve(t *testing.T) {
	forShared(t, func(t *testing.T, s *stack) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		hello, err := json.Marshal(map[string]any{"messageType": "hello", "action": "client-hello",
			"authorization": "Bearer " + s.tokenA, "source": s.src.URL + "/hang.js", "webrtcOffer": dataOffer})
		if err != nil {
			t.Fatal(err)
		}
		const n = 200
		conns := make([]*websocket.Conn, 0, n)
		defer func() {
			for _, c := range conns {
				_ = c.CloseNow()
			}
		}()
		for range n {
			c, _, err := websocket.Dial(ctx, s.wsURL, nil)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			conns = append(conns, c)
			if err := c.Write(ctx, websocket.MessageText, hello); err != nil {
				t.Fatal(err)
			}
		}
		sess, err := dial(ctx, t, s, s.tokenB, "/echo.js")
		if err != nil {
			t.Fatalf("token b's hello while token a hangs 200 fetches: %v", err)
		}
		defer closeSession(t, sess)
		if got := string(exchange(ctx, t, sess, "ping")[0].Data); got != "ping" {
			t.Fatalf("echo %q", got)
		}
		if bs := s.pool.Browsers(); len(bs) != 1 || bs[0].Workers > 1 {
			t.Fatalf("browsers %+v: the hanging hellos hold browser slots", bs)
		}
	})
}

// dataOffer is a data-channel offer for hellos that never reach the
// browser.
const dataOffer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"

// waitEnded polls the session record until it ended.
func waitEnded(ctx context.Context, t *testing.T, s *stack, id string) domain.Session {
	t.Helper()
	for {
		rec, err := s.db.GetSession(ctx, id)
		if err == nil && rec.State == "ended" {
			return rec
		}
		select {
		case <-ctx.Done():
			t.Fatalf("session %s not ended (%+v, %v)", id, rec, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func httptestServer(t *testing.T, h http.HandlerFunc) *httptestS {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return &httptestS{URL: fmt.Sprintf("http://%s", ln.Addr())}
}

type httptestS struct{ URL string }

var _ = client.Options{}
