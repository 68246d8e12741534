package host

import (
	"strings"

	"github.com/geckohost/geckohost/engine"
)

// A client that puts its candidates in the offer (aiortc, libdatachannel,
// a client that gathers first) would have the worker's browser check them
// as soon as it has answered: those checks reach the client before the
// answer and the worker's candidates do, and the client learns the worker
// as a peer-reflexive candidate first and its signalled candidate later
// (aioice then checks a second pair, about 20 ms later, before it goes on).
// So the offer's candidates reach the worker as trickled candidates do:
// after the answer is on its way to the client, in order, ahead of those
// trickled after the hello.

// deferOfferCandidates returns the offer without its a=candidate and
// a=end-of-candidates lines and queues them as the session's first client
// candidates (with the mid and m-line index of their media section; an
// end-of-candidates marker for a=end-of-candidates). Loopback candidates of
// a client on another machine are left out, as trickled ones are.
func (se *session) deferOfferCandidates(offer string) string {
	rest, cands := splitOfferCandidates(offer, !se.localClient)
	if len(cands) > 0 {
		se.ls.pending = append(cands, se.ls.pending...)
	}
	return rest
}

// splitOfferCandidates returns sdp without its a=candidate and
// a=end-of-candidates lines, and those as candidates in order (dropping
// loopback ones when noLoopback). An SDP without either is returned as is.
func splitOfferCandidates(sdp string, noLoopback bool) (string, []engine.Candidate) {
	if !strings.Contains(sdp, "a=candidate:") && !strings.Contains(sdp, "a=end-of-candidates") {
		return sdp, nil
	}
	mids := sectionMids(sdp)
	var (
		b       strings.Builder
		cands   []engine.Candidate
		section = -1
	)
	b.Grow(len(sdp))
	for line := range strings.Lines(sdp) {
		v := strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(v, "m="):
			section++
		case strings.HasPrefix(v, "a=candidate:") && section >= 0:
			if !noLoopback || !parseCandidate(v).loopback() {
				cands = append(cands, offerCandidate(strings.TrimPrefix(v, "a="), mids[section], section))
			}
			continue
		case v == "a=end-of-candidates" && section >= 0:
			cands = append(cands, offerCandidate("", mids[section], section))
			continue
		}
		b.WriteString(line)
	}
	return b.String(), cands
}

// sectionMids returns the a=mid of each media section of sdp (nil where
// it has none).
func sectionMids(sdp string) []*string {
	var mids []*string
	for line := range strings.Lines(sdp) {
		v := strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(v, "m="):
			mids = append(mids, nil)
		case strings.HasPrefix(v, "a=mid:") && len(mids) > 0 && mids[len(mids)-1] == nil:
			m := strings.TrimPrefix(v, "a=mid:")
			mids[len(mids)-1] = &m
		}
	}
	return mids
}

// offerCandidate is one candidate of the offer's media section index,
// whose a=mid is mid (nil: none).
func offerCandidate(line string, mid *string, index int) engine.Candidate {
	c := engine.Candidate{Candidate: line, SDPMid: mid}
	if index >= 0 && index <= 0xffff {
		i := uint16(index)
		c.SDPMLineIndex = &i
	}
	return c
}
