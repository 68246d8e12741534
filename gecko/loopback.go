package gecko

import (
	"strings"

	"github.com/geckohost/geckohost/engine"
)

// In ICELoopback mode a worker uses loopback candidates only, and takes
// only the client's loopback candidates: one rule (loopbackCandidate) for
// the a=candidate lines of the offer and of the answer, and the candidates
// trickled either way.

// offer is the client's offer as the worker gets it: in ICELoopback mode
// without its non-loopback a=candidate lines.
func (w *worker) offer() string {
	if !w.p.opts.ICELoopback {
		return w.req.Offer
	}
	return loopbackSDP(w.req.Offer)
}

// answer is the worker's answer as the client gets it: in ICELoopback
// mode without its non-loopback a=candidate lines (the page trickles
// only loopback candidates, and the answer carries those it gathered
// before it was sent).
func (w *worker) answer(sdp string) string {
	if !w.p.opts.ICELoopback {
		return sdp
	}
	return loopbackSDP(sdp)
}

// loopbackSDP returns sdp without its a=candidate lines whose address is
// not loopback (mDNS names included); other lines, and their line endings,
// are kept.
func loopbackSDP(sdp string) string {
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

// loopbackOnly returns the candidates of cs with a loopback address (and
// the end-of-candidates marker).
func loopbackOnly(cs []engine.Candidate) []engine.Candidate {
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

// LoopbackSDP returns sdp without its a=candidate lines whose address is
// not loopback (mDNS names included): what a worker of an engine in
// ICELoopback mode takes from the offer and gives in its answer. The
// Chromium engine shares it.
func LoopbackSDP(sdp string) string { return loopbackSDP(sdp) }

// LoopbackCandidates returns the candidates of cs with a loopback address
// (and the end-of-candidates marker).
func LoopbackCandidates(cs []engine.Candidate) []engine.Candidate { return loopbackOnly(cs) }
