package host_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/host"
	"github.com/geckohost/geckohost/internal/netns"
)

// sourceServer serves worker code at /w.js, /r/N (N redirects, then the
// code), /to?u=URL (a redirect to URL), /rel (a relative redirect) and
// /status/N (that status).
func sourceServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/w.js", r.URL.Path == "/dir/w.js":
			w.Header().Set("Content-Type", "text/javascript")
			_, _ = io.WriteString(w, "// code from "+r.Host+r.URL.Path+"\nself.onmessage = (e) => self.postMessage(e.data);\n")
		case strings.HasPrefix(r.URL.Path, "/r/"):
			n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/r/"))
			if n == 0 {
				http.Redirect(w, r, "/w.js", http.StatusFound)
				return
			}
			http.Redirect(w, r, fmt.Sprintf("/r/%d", n-1), http.StatusTemporaryRedirect)
		case r.URL.Path == "/to":
			w.Header().Set("Location", r.URL.Query().Get("u"))
			w.WriteHeader(http.StatusFound)
		case r.URL.Path == "/dir/rel":
			w.Header().Set("Location", "../dir/./w.js#frag")
			w.WriteHeader(http.StatusMovedPermanently)
		case strings.HasPrefix(r.URL.Path, "/status/"):
			n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/status/"))
			w.WriteHeader(n)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// send dials and sends a hello for source.
func (h *harness) send(secret, source string) *tclient {
	h.t.Helper()
	c := h.dial(nil)
	c.send(hello("Bearer "+secret, source))
	return c
}

// TestSourceRedirects: redirects are followed (at most 5), each hop
// checked like the first URL; a disallowed hop is a 104 naming it.
func TestSourceRedirects(t *testing.T) {
	a, b := sourceServer(t), sourceServer(t)
	h := newHarness(t, nil, func(o *host.Options) { o.AllowSources = []string{a.URL} })
	secret := h.token(domain.NewToken{})
	listed := h.token(domain.NewToken{Name: "listed", Sources: []string{a.URL}})

	c := h.send(secret, a.URL+"/r/4")
	if m := c.read(); m["action"] != "worker-hello" {
		t.Fatalf("5 redirects: %v", m)
	}
	if w := h.nextWorker(); w.req.Source != a.URL+"/r/4" || !strings.Contains(w.req.Code, "code from "+strings.TrimPrefix(a.URL, "http://")+"/w.js") {
		t.Fatalf("request %+v", w.req)
	}
	h.send(secret, a.URL+"/dir/rel").read() // worker-hello
	if w := h.nextWorker(); !strings.Contains(w.req.Code, "/dir/w.js") {
		t.Fatalf("relative redirect: code %q", w.req.Code)
	}
	h.send(secret, a.URL+"/r/5").expectError(engine.UnableToFetchWorkerCode, "more than 5 redirects")

	// A hop to an origin the server does not allow.
	evil := b.URL + "/w.js"
	c = h.send(secret, a.URL+"/to?u="+url.QueryEscape(evil))
	c.expectError(engine.SourceNotAllowed, "redirect 1 (from "+a.URL+"/to?u=")
	// ... and one the token's --source list does not: the token's rules
	// apply to every hop too.
	h.send(listed, a.URL+"/to?u="+url.QueryEscape(a.URL+"/w.js")).read()
	h.nextWorker()
	h.send(listed, a.URL+"/to?u="+url.QueryEscape(evil)).expectError(engine.SourceNotAllowed, "start serve with --allow-source "+b.URL+" (and the token's --source list must include it)")
	for _, loc := range []string{"file:///etc/passwd", "", "http://[::1", "javascript:alert(1)"} {
		c := h.send(secret, a.URL+"/to?u="+url.QueryEscape(loc))
		m := c.read()
		if m["messageType"] != "worker-error" || (m["errno"] != float64(104) && m["errno"] != float64(201)) {
			t.Fatalf("redirect to %q: %v", loc, m)
		}
	}
	if n := len(h.eng.Workers()); n != 3 {
		t.Fatalf("%d workers started, want 3 (the refused sources reach no engine)", n)
	}
}

// TestSourceAddresses: a host that resolves to a loopback, private or
// link-local address is refused (104, before any connection) unless a
// pattern names the host itself; refused addresses are never a 201 (no
// port scanning through the reason).
func TestSourceAddresses(t *testing.T) {
	netns.Skip(t) // names addresses other than loopback (refused, never dialed)
	src := sourceServer(t)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(src.URL, "http://"))
	closed := freePort(t)

	t.Run("wildcard", func(t *testing.T) {
		wild := newHarness(t, nil, func(o *host.Options) { o.AllowSources = []string{"*"} })
		ws := wild.token(domain.NewToken{})
		for _, source := range []string{
			src.URL + "/w.js",
			"http://localhost:" + port + "/w.js",
			"http://[::1]:" + port + "/w.js",
			"http://169.254.169.254/latest/meta-data/",
			"http://10.0.0.1/w.js",
			"http://0.0.0.0:" + port + "/w.js",
			"http://127.0.0.1:" + closed + "/w.js", // closed: still 104, not "connection refused"
			src.URL + "/to?u=" + url.QueryEscape("http://169.254.169.254/"),
		} {
			wild.send(ws, source).expectError(engine.SourceNotAllowed, "address: refused")
		}
		wild.send(ws, "http://localhost:"+port+"/w.js").expectError(engine.SourceNotAllowed, "localhost resolves to 127.0.0.1, a loopback address")
		// A pattern of the token's naming the host allows it.
		tokenNamed := wild.token(domain.NewToken{Name: "local", Sources: []string{"http://localhost:" + port}})
		wild.send(tokenNamed, "http://localhost:"+port+"/w.js").read()
		wild.nextWorker()
	})
	t.Run("named", func(t *testing.T) {
		named := newHarness(t, nil, func(o *host.Options) { o.AllowSources = []string{"http://127.0.0.1:*"} })
		ns := named.token(domain.NewToken{})
		named.send(ns, src.URL+"/w.js").read()
		named.nextWorker()
		named.send(ns, "http://127.0.0.1:"+closed+"/w.js").expectError(engine.UnableToFetchWorkerCode, "connection refused")
		named.send(ns, src.URL+"/status/503").expectError(engine.UnableToFetchWorkerCode, "HTTP status 503")
	})
}

// TestSourceURLLimit: a source URL over 2,048 bytes is a 104.
func TestSourceURLLimit(t *testing.T) {
	h := newHarness(t, nil, func(o *host.Options) { o.AllowSources = []string{"*"}; o.MaxFrame = 1 << 20 })
	secret := h.token(domain.NewToken{})
	long := h.demo + "?" + strings.Repeat("x", 2049)
	h.send(secret, long).expectError(engine.SourceNotAllowed, "longer than 2048 bytes")
	h.send(secret, "https://example.com/"+strings.Repeat("y", 10000)).expectError(engine.SourceNotAllowed, "longer than 2048 bytes")
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	_ = ln.Close()
	return port
}

// TestFetchesPerToken: a token's source fetches are at most
// MaxFetchesPerToken at a time (the rest wait), and hold no engine slot;
// another token's fetch goes on meanwhile.
func TestFetchesPerToken(t *testing.T) {
	var inflight, peak atomic.Int32
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fast.js" {
			_, _ = io.WriteString(w, "// fast")
			return
		}
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		_, _ = io.WriteString(w, "// slow")
	}))
	defer slow.Close()
	var once sync.Once
	defer once.Do(func() { close(release) })
	h := newHarness(t, nil, func(o *host.Options) { o.AllowSources = []string{slow.URL}; o.MaxFetchesPerToken = 3 })
	a := h.token(domain.NewToken{Name: "a"})
	b := h.token(domain.NewToken{Name: "b"})
	var cs []*tclient
	for range 6 {
		cs = append(cs, h.send(a, slow.URL+"/slow.js"))
	}
	eventually(t, h.ctx, "3 fetches in flight", func() error {
		if inflight.Load() != 3 {
			return fmt.Errorf("%d in flight", inflight.Load())
		}
		return nil
	})
	if m := h.send(b, slow.URL+"/fast.js").read(); m["action"] != "worker-hello" {
		t.Fatalf("token b: %v", m)
	}
	if w := h.nextWorker(); w.req.TokenName != "b" {
		t.Fatalf("first worker %+v, want token b's", w.req)
	}
	once.Do(func() { close(release) })
	for _, c := range cs {
		if m := c.read(); m["action"] != "worker-hello" {
			t.Fatalf("token a: %v", m)
		}
	}
	if peak.Load() != 3 {
		t.Fatalf("peak %d concurrent fetches, want 3", peak.Load())
	}
}

// rawRequest sends one HTTP request with the given Host and Origin and
// returns the status.
func rawRequest(t *testing.T, addr, hostHeader, origin string, upgrade bool) int {
	t.Helper()
	path := "/healthz"
	if upgrade {
		path = "/"
	}
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = hostHeader
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if upgrade {
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// TestHostAndOrigin: the server's own origins come from its listener and
// PublicURLs, never from the request: another Host is 421, the bundled
// workers are recognised at the own origins only, and the Origin check
// compares with them.
func TestHostAndOrigin(t *testing.T) {
	h := newHarness(t, nil, func(o *host.Options) {
		o.PublicURLs = []string{"https://gh.example.test", "http://workstation.lan:8765"}
	})
	secret := h.token(domain.NewToken{})
	addr := strings.TrimPrefix(h.hs.URL, "http://")
	_, port, _ := net.SplitHostPort(addr)
	for _, tc := range []struct {
		host, origin string
		upgrade      bool
		want         int
	}{
		{addr, "", false, 200},
		{"localhost:" + port, "", false, 200},
		{"gh.example.test", "", false, 200},
		{"GH.Example.Test", "", false, 200},
		{"workstation.lan:8765", "", false, 200},
		{"evil.example:" + port, "", false, http.StatusMisdirectedRequest},
		{"evil.example:" + port, "http://evil.example:" + port, true, http.StatusMisdirectedRequest},
		{"workstation.lan:8766", "", false, http.StatusMisdirectedRequest},
		{"gh.example.test:8443", "", false, http.StatusMisdirectedRequest},
		{"127.0.0.1:1", "", false, http.StatusMisdirectedRequest},
		{"127.0.0.1", "", false, http.StatusMisdirectedRequest},
		{"[::1]:" + port, "", false, http.StatusMisdirectedRequest},
		{addr, "http://evil.example:" + port, true, http.StatusForbidden},
		{addr, "null", true, http.StatusForbidden},
		{addr, h.hs.URL, true, http.StatusSwitchingProtocols},
		{addr, "http://localhost:" + port, true, http.StatusSwitchingProtocols},
		{"gh.example.test", "https://gh.example.test", true, http.StatusSwitchingProtocols},
		{addr, "https://gh.example.test", true, http.StatusSwitchingProtocols},
		{addr, "http://gh.example.test", true, http.StatusForbidden},
	} {
		if got := rawRequest(t, addr, tc.host, tc.origin, tc.upgrade); got != tc.want {
			t.Errorf("Host %q Origin %q upgrade %v: %d, want %d", tc.host, tc.origin, tc.upgrade, got, tc.want)
		}
	}
	// Bundled workers: at the own origins (fetched in process, whatever
	// answers at that name), not at another name.
	for _, source := range []string{"https://gh.example.test/workers/echo.js", "http://localhost:" + port + "/workers/echo.js"} {
		if m := h.send(secret, source).read(); m["action"] != "worker-hello" {
			t.Fatalf("%s: %v", source, m)
		}
		if w := h.nextWorker(); !strings.Contains(w.req.Code, "postMessage") {
			t.Fatalf("%s: code %q", source, w.req.Code)
		}
	}
	for _, source := range []string{"http://b.example.test/workers/echo.js", "http://gh.example.test/workers/echo.js", "https://gh.example.test:444/workers/echo.js"} {
		h.send(secret, source).expectError(engine.SourceNotAllowed, "--allow-source")
	}
}

// TestOfferCheck: only data-channel m-lines, at most 4, reach the engine.
func TestOfferCheck(t *testing.T) {
	h := newHarness(t, nil, func(o *host.Options) { o.MaxFrame = 1 << 20 })
	secret := h.token(domain.NewToken{})
	audio := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" + strings.Repeat("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n", 500)
	five := "v=0\r\n" + strings.Repeat("m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n", 5)
	for _, tc := range []struct{ offer, reason string }{
		{audio, `m-line 1 is "audio"`},
		{five, "more than 4 media sections"},
		{"v=0 offer", "first line must be v=0"},
		{"v=0\r\ns=-\r\n", "no media section"},
		{"", "empty"},
		{"v=0\r\nm=application 9 RTP/AVP 0\r\n", `protocol "RTP/AVP"`},
		{testOffer + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n", `m-line 2 is "video"`},
	} {
		c := h.dial(nil)
		m := hello("Bearer "+secret, h.demo)
		m["webrtcOffer"] = tc.offer
		c.send(m)
		c.expectError(engine.InvalidOffer, tc.reason)
	}
	if n := len(h.eng.Workers()); n != 0 {
		t.Fatalf("%d workers started", n)
	}
	c := h.dial(nil)
	m := hello("Bearer "+secret, h.demo)
	m["webrtcOffer"] = "v=0\r\n" + strings.Repeat("m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n", 4)
	c.send(m)
	if r := c.read(); r["action"] != "worker-hello" {
		t.Fatalf("4 data-channel sections: %v", r)
	}
}

// TestCandidateCapBeforeAnswer: the 1,000-candidate cap applies before the
// answer too: the 1,001st candidate is a 103 at once.
func TestCandidateCapBeforeAnswer(t *testing.T) {
	eng := newFakeEngine(func(ctx context.Context, req engine.WorkerRequest) ([]step, error) { return nil, nil }) // never answers
	h := newHarness(t, eng, nil)
	secret := h.token(domain.NewToken{})
	c := h.hello(secret)
	w := h.nextWorker()
	for i := range 1001 {
		c.send(cand(fmt.Sprintf("candidate:%d 1 udp 1 127.0.0.1 %d typ host", i, 1000+i)))
	}
	c.expectError(engine.InvalidMessage, "more than 1000 ICE candidates")
	h.waitClosed(w)
	if added, _ := w.Added(); len(added) != 0 {
		n := len(added)
		t.Fatalf("%d candidates applied before any answer", n)
	}
}

// TestBadHelloFlood: past 20 failed hellos from one address within 10 s,
// failures still get their errno but leave no record and no info line; a
// good session meanwhile is unaffected, and one summary line says how many
// were left out.
func TestBadHelloFlood(t *testing.T) {
	h := newHarness(t, nil, nil)
	secret := h.token(domain.NewToken{Name: "good"})
	const n = 300
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _, err := websocket.Dial(h.ctx, h.url, nil)
			if err != nil {
				errs <- err
				return
			}
			defer c.CloseNow()
			auth := "Bearer gh_not_a_token"
			if i%2 == 1 {
				auth = "Basic x"
			}
			if err := c.Write(h.ctx, websocket.MessageText, []byte(mustJSON(hello(auth, h.demo)))); err != nil {
				errs <- err
				return
			}
			_, b, err := c.Read(h.ctx)
			if err != nil || !strings.Contains(string(b), `"errno":10`) {
				errs <- fmt.Errorf("bad hello %d: %s %v", i, b, err)
			}
			_, _, _ = c.Read(h.ctx) // the close, answered
		}()
		if i == n/2 {
			c := h.hello(secret)
			for range 3 {
				c.read()
			}
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ss, err := h.db.ListSessions(h.ctx, domain.SessionFilter{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	good := 0
	for _, s := range ss {
		if s.TokenName == "good" {
			good++
			h.session(s.WorkerID, func(s domain.Session) bool { return s.State == "connected" && s.Errno == 0 })
		}
	}
	if len(ss) > 100 || good != 1 {
		t.Fatalf("%d session rows (%d good) after %d bad hellos, want at most 100 and the good one", len(ss), good, n)
	}
	if err := h.srv.Shutdown(h.ctx); err != nil {
		t.Fatal(err)
	}
	logs := h.logs.String()
	if lines := strings.Count(logs, `msg="session ended"`); lines > 100 {
		t.Fatalf("%d session lines", lines)
	}
	if !strings.Contains(logs, `msg="failed hellos not recorded" count=`) {
		t.Fatalf("no summary line in:\n%s", logs)
	}
	t.Logf("%d rows; %s", len(ss), logs[strings.Index(logs, `msg="failed hellos`):][:80])
}

var _ = time.Second

// TestSideHostCheck: the side listeners answer to IP addresses, localhost
// and the --public-url hosts, never to another name (DNS rebinding).
func TestSideHostCheck(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	h, err := host.SideHostCheck(ok, []string{"http://node1.lan:8765"})
	if err != nil {
		t.Fatal(err)
	}
	for hv, want := range map[string]int{
		"127.0.0.1:9100":     200,
		"[::1]:9100":         200,
		"198.51.100.7:9100":  200,
		"localhost:9100":     200,
		"LOCALHOST":          200,
		"node1.lan:9100":     200,
		"evil.example:9100":  http.StatusMisdirectedRequest,
		"127.0.0.1.nip.test": http.StatusMisdirectedRequest,
		"":                   http.StatusMisdirectedRequest,
		"[::1":               http.StatusMisdirectedRequest,
	} {
		r := httptest.NewRequest("GET", "/metrics", nil)
		r.Host = hv
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != want {
			t.Errorf("Host %q: %d, want %d", hv, rec.Code, want)
		}
	}
	if _, err := host.SideHostCheck(ok, []string{"ftp://x"}); !errors.Is(err, host.ErrBadPublicURL) {
		t.Errorf("bad public URL: %v", err)
	}
}
