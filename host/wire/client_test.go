package wire_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/host/wire"
)

var serverSeeds = []string{
	`{"messageType":"hello","action":"worker-hello","workerId":"ab","webrtcAnswer":"v=0\r\n"}`,
	`{"messageType":"ice","action":"worker-candidate","workerId":"ab","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdpMid":"0"}}`,
	`{"messageType":"ice","action":"worker-candidate","workerId":"ab"}`,
	`{"messageType":"connected","workerId":"ab"}`,
	`{"messageType":"worker-error","workerId":null,"errno":103,"reason":"frame is not JSON"}`,
	`{"messageType":"worker-error","errno":"x"}`,
	`{"messageType":"hello","action":"client-hello"}`,
	`[1]`, `null`, ``, `{`, "\xff",
}

func FuzzParseServerFrame(f *testing.F) {
	for _, s := range serverSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := wire.ParseServerFrame(data)
		if err != nil {
			if !errors.Is(err, wire.ErrBadServerFrame) || fr.Kind != 0 {
				t.Fatalf("error %v (kind %v) does not wrap ErrBadServerFrame", err, fr.Kind)
			}
			return
		}
		if fr.Kind < wire.FrameWorkerHello || fr.Kind > wire.FrameWorkerError || !json.Valid(data) {
			t.Fatalf("accepted %q as kind %v", data, fr.Kind)
		}
		if (fr.Kind == wire.FrameWorkerError) != (fr.Error != nil) {
			t.Fatalf("kind %v with error %v", fr.Kind, fr.Error)
		}
	})
}

// TestBothEnds: what one end builds, the other parses back.
func TestBothEnds(t *testing.T) {
	mid := "0"
	c := engine.Candidate{Candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host", SDPMid: &mid}
	parseClient := func(v any) wire.ClientFrame {
		t.Helper()
		b, _ := json.Marshal(v)
		f, err := wire.ParseClientFrame(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		return f
	}
	if f := parseClient(wire.NewClientHello("gh_x", "https://example.com/w.js", "v=0")); f.Kind != wire.FrameHello ||
		f.Hello != (wire.ClientHello{Authorization: "Bearer gh_x", Source: "https://example.com/w.js", Offer: "v=0"}) {
		t.Errorf("hello parsed as %+v", f)
	}
	if f := parseClient(wire.NewClientCandidate(c)); f.Kind != wire.FrameCandidate || f.Candidate.Candidate != c.Candidate || *f.Candidate.SDPMid != "0" {
		t.Errorf("candidate parsed as %+v", f)
	}
	parseServer := func(v any) wire.ServerFrame {
		t.Helper()
		b, _ := json.Marshal(v)
		f, err := wire.ParseServerFrame(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		return f
	}
	if f := parseServer(wire.NewWorkerHello("ab", "v=0")); f.Kind != wire.FrameWorkerHello || f.WorkerID != "ab" || f.Answer != "v=0" {
		t.Errorf("worker-hello parsed as %+v", f)
	}
	if f := parseServer(wire.NewWorkerCandidate("ab", c)); f.Kind != wire.FrameWorkerCandidate || f.Candidate.Candidate != c.Candidate {
		t.Errorf("worker-candidate parsed as %+v", f)
	}
	if f := parseServer(wire.NewConnected("ab")); f.Kind != wire.FrameConnected || f.WorkerID != "ab" {
		t.Errorf("connected parsed as %+v", f)
	}
	f := parseServer(wire.NewWorkerError("", engine.Errorf(engine.GeckoTimeout, "slow")))
	if f.Kind != wire.FrameWorkerError || f.WorkerID != "" || f.Error.Errno != engine.GeckoTimeout || f.Error.Reason != "slow" {
		t.Errorf("worker-error parsed as %+v", f)
	}
}
