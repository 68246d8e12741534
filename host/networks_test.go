package host_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/host"
)

const (
	loopCand = "candidate:0 1 UDP 2122187007 127.0.0.1 35258 typ host"
	lanCand  = "candidate:2 1 UDP 2122121471 198.51.100.1 40000 typ host"
	mdnsCand = "candidate:1 1 udp 2113937151 1dd85f28-5dd6-4d50-b9db-dc68ea817ef7.local 33686 typ host"
)

// TestPeerConnectionFailed: a worker whose peer connection fails before
// the data channel opened is a 305 naming what each side offered, sent as
// soon as the engine says so; the record keeps the errno and the end.
func TestPeerConnectionFailed(t *testing.T) {
	eng := newFakeEngine(func(ctx context.Context, req engine.WorkerRequest) ([]step, error) {
		return []step{
			{Ev: engine.Event{Kind: engine.EventAnswer, Answer: "v=0 answer"}},
			{Ev: engine.Event{Kind: engine.EventCandidate, Candidate: candidate(loopCand)}},
		}, nil
	})
	h := newHarness(t, eng, nil)
	secret := h.token(domain.NewToken{})
	c := h.dial(nil)
	hl := hello("Bearer "+secret, h.demo)
	hl["webrtcOffer"] = testOffer + "a=candidate:" + strings.TrimPrefix(mdnsCand, "candidate:") + "\r\n"
	c.send(hl)
	w := h.nextWorker()
	for _, want := range []string{"worker-hello", "worker-candidate"} {
		if m := c.read(); m["action"] != want {
			t.Fatalf("got %v, want %s", m, want)
		}
	}
	h.emit(w, engine.Event{Kind: engine.EventEnded, Reason: engine.EndICEFailed, Detail: "ICE"})
	c.expectError(engine.PeerConnectionFailed, "the worker offered host 127.0.0.1, the client offered only mDNS .local names (1)")
	s := h.session(w.req.WorkerID, ended)
	if engine.Errno(s.Errno) != engine.PeerConnectionFailed || s.EndReason != string(engine.EndICEFailed) || !strings.Contains(s.Reason, "--ice-loopback") {
		t.Fatalf("record %+v", s)
	}
}

// TestICEServersEndpoint: GET /ice-servers answers the token's servers to
// a bearer of a valid token (and the worker gets the same), refuses
// others with 401 and the errno, and speaks CORS to allowed origins only.
func TestICEServersEndpoint(t *testing.T) {
	servers := func(tok domain.Token, worker bool) []engine.ICEServer {
		user := fmt.Sprintf("1700000000:%d", tok.ID)
		if worker {
			user = fmt.Sprintf("1700000000:w%d", tok.ID)
		}
		return []engine.ICEServer{
			{URLs: []string{"stun:stun.example.com:3478"}},
			{URLs: []string{"turn:198.51.100.1:3478?transport=udp", "turn:198.51.100.1:3478?transport=tcp"},
				Username: user, Credential: "secret"},
		}
	}
	h := newHarness(t, nil, func(o *host.Options) {
		o.ICEServers = servers
		o.AllowOrigins = []string{"https://app.example.com"}
	})
	secret := h.token(domain.NewToken{Name: "alice"})
	do := func(method, auth, origin string, hdr ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(h.ctx, method, h.hs.URL+"/ice-servers", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	defer http.DefaultClient.CloseIdleConnections()

	resp, body := do("GET", "Bearer "+secret, "")
	var got struct {
		ICEServers []engine.ICEServer `json:"iceServers"`
	}
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &got) != nil || len(got.ICEServers) != 2 ||
		got.ICEServers[1].Username == "" || got.ICEServers[1].Credential != "secret" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET: %d %s %v", resp.StatusCode, body, resp.Header)
	}
	tok, err := h.db.LookupToken(h.ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("1700000000:%d", tok.ID); got.ICEServers[1].Username != want {
		t.Fatalf("username %q, want %q", got.ICEServers[1].Username, want)
	}
	if !strings.Contains(body, `"urls":["stun:stun.example.com:3478"]`) || strings.Contains(body, `"username":""`) {
		t.Fatalf("JSON shape: %s", body)
	}

	for _, tt := range []struct {
		auth  string
		errno engine.Errno
	}{{"", engine.InvalidAuthorization}, {"Basic x", engine.InvalidAuthorization}, {"Bearer gh_nope", engine.InvalidToken}} {
		resp, body := do("GET", tt.auth, "")
		var e struct {
			Errno  int    `json:"errno"`
			Name   string `json:"name"`
			Reason string `json:"reason"`
		}
		if resp.StatusCode != 401 || json.Unmarshal([]byte(body), &e) != nil || engine.Errno(e.Errno) != tt.errno || e.Name != tt.errno.String() || e.Reason == "" {
			t.Errorf("auth %q: %d %s, want 401 with errno %d", tt.auth, resp.StatusCode, body, tt.errno)
		}
		if strings.Contains(body, "secret") {
			t.Errorf("auth %q: credentials in a refusal: %s", tt.auth, body)
		}
	}

	// CORS: the preflight and the GET from an allowed origin.
	resp, _ = do("OPTIONS", "", "https://app.example.com", "Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "authorization")
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		!strings.Contains(strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")), "authorization") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = do("GET", "Bearer "+secret, "https://app.example.com")
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Fatalf("GET from an allowed origin: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = do("GET", "Bearer "+secret, h.hs.URL) // the server's own origin
	if resp.StatusCode != 200 {
		t.Fatalf("GET from the own origin: %d", resp.StatusCode)
	}
	for _, m := range []string{"OPTIONS", "GET"} {
		resp, body = do(m, "Bearer "+secret, "https://evil.example.net")
		if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" || strings.Contains(body, "secret") {
			t.Fatalf("%s from another origin: %d %v %s", m, resp.StatusCode, resp.Header, body)
		}
	}
	if resp, _ := do("POST", "Bearer "+secret, ""); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", resp.StatusCode)
	}

	// The worker gets the same servers.
	c := h.hello(secret)
	w := h.nextWorker()
	if len(w.req.ICEServers) != 2 || w.req.ICEServers[1].Username != fmt.Sprintf("1700000000:w%d", tok.ID) {
		t.Fatalf("worker's ICE servers %+v", w.req.ICEServers)
	}
	c.read()
}

// TestICEServersNone: without Options.ICEServers the list is empty.
func TestICEServersNone(t *testing.T) {
	h := newHarness(t, nil, nil)
	secret := h.token(domain.NewToken{})
	req, _ := http.NewRequestWithContext(h.ctx, "GET", h.hs.URL+"/ice-servers", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != `{"iceServers":[]}` {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}

// TestRemoteClientLoopbackWithheld: a client on another machine gets none
// of the worker's loopback candidates (in the answer or trickled), and the
// worker none of the client's; a client on loopback gets them all.
func TestRemoteClientLoopbackWithheld(t *testing.T) {
	eng := newFakeEngine(func(ctx context.Context, req engine.WorkerRequest) ([]step, error) {
		answer := "v=0\r\na=candidate:" + strings.TrimPrefix(loopCand, "candidate:") + "\r\na=candidate:" + strings.TrimPrefix(lanCand, "candidate:") + "\r\n"
		return []step{
			{Ev: engine.Event{Kind: engine.EventAnswer, Answer: answer}},
			{Ev: engine.Event{Kind: engine.EventCandidate, Candidate: candidate(loopCand)}},
			{Ev: engine.Event{Kind: engine.EventCandidate, Candidate: candidate(lanCand)}},
		}, nil
	})
	h := newHarness(t, eng, nil)
	secret := h.token(domain.NewToken{})
	// The same server, seen from 198.51.100.2.
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.RemoteAddr = "198.51.100.2:40000"
		h.srv.ServeHTTP(w, r)
	}))
	t.Cleanup(remote.Close)

	for _, tt := range []struct {
		name   string
		url    string
		source string
		answer int // a=candidate lines in the answer
		cands  []string
	}{
		{"remote", "ws" + strings.TrimPrefix(remote.URL, "http") + "/", remote.URL + "/workers/echo.js", 1, []string{lanCand}},
		{"local", h.url, h.demo, 2, []string{loopCand, lanCand}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ws, _, err := websocket.Dial(h.ctx, tt.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.CloseNow()
			c := &tclient{t: t, h: h, c: ws}
			c.send(hello("Bearer "+secret, tt.source))
			c.send(cand(loopCand))
			c.send(cand(mdnsCand))
			w := h.nextWorker()
			m := c.read()
			if n := strings.Count(m["webrtcAnswer"].(string), "a=candidate:"); n != tt.answer {
				t.Fatalf("answer has %d candidates, want %d: %q", n, tt.answer, m["webrtcAnswer"])
			}
			for _, want := range tt.cands {
				m := c.read()
				cm, _ := m["candidate"].(map[string]any)
				if m["action"] != "worker-candidate" || cm["candidate"] != want {
					t.Fatalf("got %v, want candidate %q", m, want)
				}
			}
			wantAdded := []string{loopCand, mdnsCand}
			if tt.name == "remote" {
				wantAdded = wantAdded[1:]
			}
			eventually(t, h.ctx, "client candidates applied", func() error {
				got, _ := w.Added()
				if len(got) != len(wantAdded) {
					return fmt.Errorf("applied %v", got)
				}
				for i := range got {
					if got[i].Candidate != wantAdded[i] {
						return fmt.Errorf("applied %v", got)
					}
				}
				return nil
			})
			_ = ws.Close(websocket.StatusNormalClosure, "")
			h.waitClosed(w)
		})
	}
}
