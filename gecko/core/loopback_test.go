package core

import (
	"testing"

	"github.com/geckohost/geckohost/engine"
)

// TestLoopbackRule: in ICELoopback mode the offer's a=candidate lines and
// trickled candidates pass the same rule.
func TestLoopbackRule(t *testing.T) {
	offer := "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n" +
		"a=mid:0\r\n" +
		"a=candidate:1 1 udp 2130706431 198.51.100.1 40000 typ host\r\n" +
		"a=candidate:2 1 udp 2130706431 127.0.0.1 40001 typ host\r\n" +
		"a=candidate:3 1 udp 2130706431 ::1 40002 typ host\r\n" +
		"a=candidate:4 1 udp 2130706431 abc.local 40003 typ host\r\n" +
		"a=candidate:5 1 udp 1694498815 203.0.113.9 40004 typ srflx raddr 127.0.0.1 rport 40001\r\n" +
		"a=end-of-candidates\r\n"
	want := "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n" +
		"a=mid:0\r\n" +
		"a=candidate:2 1 udp 2130706431 127.0.0.1 40001 typ host\r\n" +
		"a=candidate:3 1 udp 2130706431 ::1 40002 typ host\r\n" +
		"a=end-of-candidates\r\n"
	if got := LoopbackSDP(offer); got != want {
		t.Errorf("LoopbackSDP =\n%q\nwant\n%q", got, want)
	}
	if lf := "v=0\na=candidate:1 1 udp 1 198.51.100.1 1 typ host\na=candidate:2 1 udp 1 127.0.0.1 2 typ host\n"; LoopbackSDP(lf) != "v=0\na=candidate:2 1 udp 1 127.0.0.1 2 typ host\n" {
		t.Errorf("LoopbackSDP(LF offer) = %q", LoopbackSDP(lf))
	}
	// The same lines trickled.
	var cs []engine.Candidate
	for _, l := range []string{"candidate:1 1 udp 2130706431 198.51.100.1 40000 typ host",
		"candidate:2 1 udp 2130706431 127.0.0.1 40001 typ host", "candidate:4 1 udp 2130706431 abc.local 40003 typ host", ""} {
		cs = append(cs, engine.Candidate{Candidate: l})
	}
	got := LoopbackCandidates(cs)
	if len(got) != 2 || got[0].Candidate != cs[1].Candidate || got[1].Candidate != "" {
		t.Errorf("LoopbackCandidates = %+v", got)
	}
}
