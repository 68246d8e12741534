package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/internal/netns"
)

// The interop check: a WebRTC stack that is neither pion nor a browser
// (aiortc, from Debian's python3-aiortc, with a WebSocket client of its
// own in testdata/aiortc_client.py) speaks the protocol's frames exactly
// as client-endpoint.txt has them and connects to the echo worker.

// systemPython is Debian's interpreter (python3-aiortc installs for it,
// not for a pyenv or venv python that may come first on PATH).
const systemPython = "/usr/bin/python3"

// aiortcMissing says what is missing to run the aiortc client, or "".
func aiortcMissing() string {
	if _, err := os.Stat(systemPython); err != nil {
		return "missing: python3 (apt-get install python3-aiortc)"
	}
	if err := exec.Command(systemPython, "-c", "import aiortc").Run(); err != nil {
		return "missing: python3-aiortc (apt-get install python3-aiortc)"
	}
	return ""
}

// aiortcResult is one run of testdata/aiortc_client.py.
type aiortcResult struct {
	runResult
	WorkerCandidates []engine.Candidate `json:"workerCandidates"`
	EndOfCandidates  *engine.Candidate  `json:"endOfCandidates"`
	AnswerCandidates []string           `json:"answerCandidates"`
	AnswerMid        *string            `json:"answerMid"`
}

// runAiortc runs the aiortc client for runs sessions, one after the
// other, inside ns.
func runAiortc(t *testing.T, ctx context.Context, ns *netns.Namespace, s *netServe, runs int) []aiortcResult {
	t.Helper()
	cmd := ns.Command(ctx, systemPython, "testdata/aiortc_client.py", s.page, s.token, fmt.Sprint(runs))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("aiortc client in %s: %v\nstderr:\n%s", ns.Name, err, stderr.String())
	}
	var out []aiortcResult
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || len(out) != runs {
		t.Fatalf("aiortc results %q: %v\nstderr:\n%s", stdout.String(), err, stderr.String())
	}
	return out
}

// TestInteropAiortc: aiortc on another machine of the LAN (aioice never
// gathers loopback candidates, so it needs a network) connects to serve's
// echo worker every time. It takes the worker's candidates (in the answer,
// and trickled with their "candidate:" prefix, which it strips), and the
// end-of-candidates marker carries the answer's mid and m-line index.
func TestInteropAiortc(t *testing.T) {
	if why := aiortcMissing(); why != "" {
		t.Skip(why)
	}
	forServeEngines(t, false, func(t *testing.T, e serveEngine) {
		tp := netns.NewTopology(t, false)
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		h := tp.Namespace("host")
		c := tp.Namespace("client")
		tp.Link(h, "198.51.100.1/24", c, "198.51.100.2/24")
		c.Route("default", "198.51.100.1")
		s := startNetServe(t, e, h, "198.51.100.1:8765")
		s.waitReady(t, ctx)
		const runs = 8
		var open []float64
		for i, r := range runAiortc(t, ctx, c, s, runs) {
			what := fmt.Sprintf("aiortc %d", i+1)
			wantEcho(t, ctx, s, what, r.runResult)
			open = append(open, r.Timings.ChannelOpen)
			if len(r.WorkerCandidates)+len(r.AnswerCandidates) == 0 {
				t.Errorf("%s: no worker candidates, in the answer or trickled", what)
				continue
			}
			for _, ac := range r.AnswerCandidates {
				if !strings.HasPrefix(ac, "candidate:") {
					t.Errorf("%s: answer candidate %q", what, ac)
				}
			}
			for _, wc := range r.WorkerCandidates {
				if !strings.HasPrefix(wc.Candidate, "candidate:") || wc.SDPMid == nil || wc.SDPMLineIndex == nil {
					t.Errorf("%s: worker candidate %+v, want the candidate: prefix, sdpMid and sdpMLineIndex", what, wc)
				}
			}
			if e := r.EndOfCandidates; e == nil {
				t.Logf("%s: no end-of-candidates marker before connected", what)
			} else if e.Candidate != "" || e.SDPMid == nil || r.AnswerMid == nil || *e.SDPMid != *r.AnswerMid ||
				e.SDPMLineIndex == nil || *e.SDPMLineIndex != 0 {
				t.Errorf("%s: end of candidates %+v, want an empty candidate with the answer's mid %v and index 0", what, e, r.AnswerMid)
			}
		}
		if len(open) > 0 {
			t.Logf("aiortc over the LAN, hello → data channel open over %d runs: p50 %.1f ms (min %.1f, max %.1f)",
				runs, p50(open), slices.Min(open), slices.Max(open))
		}
	})
}
