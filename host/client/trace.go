package client

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// Step is one moment of a negotiation, recorded when Options.Trace is set.
type Step struct {
	// Name says what happened: "offer" (the client's peer connection and
	// offer made, At ≤ 0: from the start of Dial), "worker-hello", "answer applied", "worker candidate",
	// "ice checking", "nudge" (see Options.StockNomination), "ice
	// connected", "pair selected", "dtls connected", "connected" (the
	// server's frame) or "open" (the data channel).
	Name string
	// At is the time since the hello was sent (negative before it).
	At time.Duration
	// Detail adds what the step carried, such as a candidate's type.
	Detail string
}

// String formats the step as "name@12.3ms (detail)".
func (s Step) String() string {
	out := fmt.Sprintf("%s@%.1fms", s.Name, float64(s.At.Microseconds())/1000)
	if s.Detail != "" {
		out += " (" + s.Detail + ")"
	}
	return out
}

// tracer collects the steps of one Dial; a nil tracer records nothing.
type tracer struct {
	mu    sync.Mutex
	start time.Time
	steps []Step
}

func newTracer(on bool) *tracer {
	if !on {
		return nil
	}
	return &tracer{start: time.Now()}
}

// begin sets the time steps are measured from (the hello); the "offer"
// step becomes the start of Dial, before it.
func (t *tracer) begin(at time.Time) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.steps = []Step{{Name: "offer", At: t.start.Sub(at), Detail: "peer connection and offer made"}}
	t.start = at
}

func (t *tracer) step(name, detail string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.steps = append(t.steps, Step{Name: name, At: time.Since(t.start), Detail: detail})
}

// done returns the steps recorded so far.
func (t *tracer) done() []Step {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Step(nil), t.steps...)
}

// watch records the peer connection's ICE and DTLS progress.
func (t *tracer) watch(pc *webrtc.PeerConnection) {
	if t == nil {
		return
	}
	pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		switch s {
		case webrtc.ICEConnectionStateChecking, webrtc.ICEConnectionStateConnected, webrtc.ICEConnectionStateFailed:
			t.step("ice "+s.String(), "")
		}
	})
	dtls := pc.SCTP().Transport()
	dtls.OnStateChange(func(s webrtc.DTLSTransportState) {
		if s == webrtc.DTLSTransportStateConnected || s == webrtc.DTLSTransportStateFailed {
			t.step("dtls "+s.String(), "")
		}
	})
	dtls.ICETransport().OnSelectedCandidatePairChange(func(p *webrtc.ICECandidatePair) {
		t.step("pair selected", p.Local.Typ.String()+" "+p.Local.Address+" ↔ "+p.Remote.Typ.String()+" "+p.Remote.Address)
	})
}

// candidateType returns the typ field of an ICE candidate line.
func candidateType(c string) string {
	f := strings.Fields(c)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "typ" {
			return f[i+1] + " " + strings.ToLower(f[2])
		}
	}
	return ""
}
