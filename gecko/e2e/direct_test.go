package e2e_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/geckohost/geckohost/gecko"
	"github.com/geckohost/geckohost/host/client"
	"github.com/geckohost/geckohost/host/wire"
)

// dialDirect negotiates with a pool worker without host: the test plays
// host's relay role.
func dialDirect(ctx context.Context, t testing.TB, p *gecko.Pool, token int64, source string) (*webrtc.PeerConnection, *webrtc.DataChannel, wire.Worker, error) {
	api := client.NewAPI(client.Options{Loopback: true})
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, nil, nil, err
	}
	dc, err := pc.CreateDataChannel("x", nil)
	if err != nil {
		return nil, nil, nil, err
	}
	opened := make(chan struct{})
	dc.OnOpen(func() { close(opened) })
	offer, _ := pc.CreateOffer(nil)
	gathered := webrtc.GatheringCompletePromise(pc)
	_ = pc.SetLocalDescription(offer)
	<-gathered
	w, err := p.StartWorker(ctx, wire.WorkerRequest{WorkerID: fmt.Sprint(time.Now().UnixNano()), TokenID: token, Source: source, Offer: pc.LocalDescription().SDP})
	if err != nil {
		pc.Close()
		return nil, nil, nil, err
	}
	for {
		select {
		case ev, ok := <-w.Events():
			if !ok {
				pc.Close()
				return nil, nil, w, fmt.Errorf("events closed")
			}
			switch ev.Kind {
			case wire.EventAnswer:
				if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: ev.Answer}); err != nil {
					t.Fatal(err)
				}
			case wire.EventCandidate:
				if ev.Candidate.Candidate != "" {
					_ = pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: ev.Candidate.Candidate, SDPMid: ev.Candidate.SDPMid, SDPMLineIndex: ev.Candidate.SDPMLineIndex})
				}
			case wire.EventConnected:
				select {
				case <-opened:
				case <-ctx.Done():
				}
				return pc, dc, w, nil
			case wire.EventEnded:
				pc.Close()
				for range w.Events() {
				}
				return nil, nil, w, ev.Err
			}
		case <-ctx.Done():
			pc.Close()
			return nil, nil, w, ctx.Err()
		}
	}
}

func TestDirectEcho(t *testing.T) {
	env := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 3 {
		t0 := time.Now()
		pc, dc, w, err := dialDirect(ctx, t, env.pool, 1, env.src.URL+"/echo.js")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("open after %v", time.Since(t0))
		got := make(chan string, 1)
		dc.OnMessage(func(m webrtc.DataChannelMessage) { got <- string(m.Data) })
		if err := dc.SendText(fmt.Sprint("hi", i)); err != nil {
			t.Fatal(err)
		}
		select {
		case s := <-got:
			if s != fmt.Sprint("hi", i) {
				t.Fatalf("got %q", s)
			}
		case <-ctx.Done():
			t.Fatal("no echo")
		}
		pc.Close()
		for ev := range w.Events() {
			t.Logf("event %+v", ev)
		}
	}
}
