package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/host/client"
	"github.com/geckohost/geckohost/internal/leaktest"
)

// fakeHost is a signaling server whose "worker" is a pion peer that echoes.
type fakeHost struct {
	t       *testing.T
	failErr *engine.Error // answer with this worker-error instead
	// dropWorker closes the worker's peer connection right after its
	// answer (the client's ICE then fails) and sends nothing more.
	dropWorker bool
	wg         sync.WaitGroup
	mu         sync.Mutex
	pcs        []*webrtc.PeerConnection
	hello      map[string]any
}

func (h *fakeHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.wg.Add(1)
	defer h.wg.Done()
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := r.Context()
	_, b, err := c.Read(ctx)
	if err != nil {
		return
	}
	var hello map[string]any
	_ = json.Unmarshal(b, &hello)
	h.mu.Lock()
	h.hello = hello
	h.mu.Unlock()
	var wmu sync.Mutex
	send := func(v any) {
		b, _ := json.Marshal(v)
		wmu.Lock()
		defer wmu.Unlock()
		_ = c.Write(ctx, websocket.MessageText, b)
	}
	if h.failErr != nil {
		send(map[string]any{"messageType": "worker-error", "workerId": "w1", "errno": int(h.failErr.Errno), "reason": h.failErr.Reason})
		c.Close(websocket.StatusNormalClosure, "")
		return
	}
	pc, err := client.NewAPI(client.Options{Loopback: true}).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return
	}
	h.mu.Lock()
	h.pcs = append(h.pcs, pc)
	h.mu.Unlock()
	open := make(chan struct{})
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		dc.OnOpen(func() { close(open) })
		dc.OnMessage(func(m webrtc.DataChannelMessage) {
			if m.IsString {
				_ = dc.SendText(string(m.Data))
			} else {
				_ = dc.Send(m.Data)
			}
		})
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: hello["webrtcOffer"].(string)}); err != nil {
		return
	}
	ans, _ := pc.CreateAnswer(nil)
	gathered := webrtc.GatheringCompletePromise(pc)
	_ = pc.SetLocalDescription(ans)
	<-gathered
	send(map[string]any{"messageType": "hello", "action": "worker-hello", "workerId": "w1", "webrtcAnswer": pc.LocalDescription().SDP})
	if h.dropWorker {
		_ = pc.Close()
		for { // until the client gives up
			if _, _, err := c.Read(ctx); err != nil {
				return
			}
		}
	}
	go func() {
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			var f struct{ Candidate engine.Candidate }
			if json.Unmarshal(b, &f) == nil && f.Candidate.Candidate != "" {
				_ = pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: f.Candidate.Candidate, SDPMid: f.Candidate.SDPMid, SDPMLineIndex: f.Candidate.SDPMLineIndex})
			}
		}
	}()
	select {
	case <-open:
	case <-time.After(10 * time.Second):
		return
	}
	send(map[string]any{"messageType": "connected", "workerId": "w1"})
	c.Close(websocket.StatusNormalClosure, "")
}

func (h *fakeHost) close() {
	h.wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, pc := range h.pcs {
		_ = pc.Close()
	}
}

func TestDialEcho(t *testing.T) {
	leaktest.Check(t)
	h := &fakeHost{t: t}
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, after := range []bool{false, true} {
		s, err := client.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), client.Options{Token: "tok", Source: "http://x/echo.js", Loopback: true, CandidatesAfterAnswer: after})
		if err != nil {
			t.Fatal(err)
		}
		if s.WorkerID != "w1" || s.Timings.Answer <= 0 || s.Timings.Open <= 0 || s.Timings.Connected <= 0 {
			t.Errorf("session %+v", s)
		}
		h.mu.Lock()
		if h.hello["authorization"] != "Bearer tok" || h.hello["source"] != "http://x/echo.js" || h.hello["action"] != "client-hello" {
			t.Errorf("hello %v", h.hello)
		}
		h.mu.Unlock()
		got := make(chan string, 1)
		s.Channel.OnMessage(func(m webrtc.DataChannelMessage) { got <- string(m.Data) })
		_ = s.Channel.SendText("hi")
		select {
		case g := <-got:
			if g != "hi" {
				t.Errorf("echo %q", g)
			}
		case <-ctx.Done():
			t.Fatal("no echo")
		}
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}
}

func TestDialWorkerError(t *testing.T) {
	leaktest.Check(t)
	h := &fakeHost{t: t, failErr: engine.Errorf(engine.InvalidToken, "unknown token")}
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := client.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), client.Options{Token: "bad", Source: "http://x/echo.js", Loopback: true})
	var we *engine.Error
	if !errors.As(err, &we) || we.Errno != engine.InvalidToken || we.Reason != "unknown token" {
		t.Fatalf("err = %v, want *engine.Error 102", err)
	}
}
