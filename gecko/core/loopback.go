package core

import (
	"strings"

	"github.com/geckohost/geckohost/engine"
)

// In ICELoopback mode a worker uses loopback candidates only, and takes
// only the client's loopback candidates: one rule (loopbackCandidate) for
// the a=candidate lines of the offer and of the answer, and the candidates
// trickled either way.

// LoopbackSDP returns sdp without its a=candidate lines whose address is
// not loopback (mDNS names included): what a worker of an engine in
// ICELoopback mode takes from the offer and gives in its answer. Other
// lines, and their line endings, are kept.
func LoopbackSDP(sdp string) string {
	if !strings.Contains(sdp, "a=candidate:") {
		return sdp
	}
	var b strings.Builder
	b.Grow(len(sdp))
	for line := range strings.Lines(sdp) {
		if strings.HasPrefix(line, "a=candidate:") && !loopbackCandidate(strings.TrimRight(line, "\r\n")) {
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}

// LoopbackCandidates returns the candidates of cs with a loopback address
// (and the end-of-candidates marker).
func LoopbackCandidates(cs []engine.Candidate) []engine.Candidate {
	out := cs[:0:0]
	for _, c := range cs {
		if c.Candidate == "" || loopbackCandidate(c.Candidate) {
			out = append(out, c)
		}
	}
	return out
}

// loopbackCandidate reports whether an ICE candidate line ("candidate:…",
// with or without "a=") has a loopback address.
func loopbackCandidate(c string) bool {
	f := strings.Fields(strings.TrimPrefix(c, "a="))
	if len(f) < 8 {
		return false
	}
	a := f[4]
	return a == "::1" || strings.HasPrefix(a, "127.")
}
