package host

import (
	"strings"
	"testing"
)

func TestParseCandidate(t *testing.T) {
	tests := []struct {
		line     string
		typ      string
		tcp      bool
		mdns     bool
		loopback bool
		valid    bool
	}{
		{"candidate:0 1 UDP 2122187007 127.0.0.1 35258 typ host", "host", false, false, true, true},
		{"a=candidate:1 1 UDP 2122252543 ::1 32967 typ host", "host", false, false, true, true},
		{"candidate:53383553 1 udp 2113937151 1dd85f28-5dd6-4d50-b9db-dc68ea817ef7.local 33686 typ host generation 0", "host", false, true, false, true},
		{"candidate:2 1 TCP 2105524479 198.51.100.2 9 typ host tcptype active", "host", true, false, false, true},
		{"candidate:3 1 udp 1677729535 203.0.113.9 40000 typ srflx raddr 0.0.0.0 rport 0", "srflx", false, false, false, true},
		{"candidate:4 1 udp 41885439 198.51.100.1 50000 typ relay raddr 203.0.113.2 rport 1", "relay", false, false, false, true},
		{"candidate:5 1 udp 1 ::ffff:127.0.0.1 1 typ host", "host", false, false, true, true},
		{"", "", false, false, false, false},
		{"candidate:w1", "", false, false, false, false},
		{"candidate:0 1 UDP 1 not-an-ip 1 typ host", "", false, false, false, false},
		{"candidate:0 1 UDP 1 127.0.0.1 99999 typ host", "", false, false, false, false},
		{"candidate:0 1 UDP 1 127.0.0.1 1 type host", "", false, false, false, false},
	}
	for _, tt := range tests {
		c := parseCandidate(tt.line)
		if c.valid != tt.valid || c.typ != tt.typ || c.tcp != tt.tcp || c.mdns != tt.mdns || c.loopback() != tt.loopback {
			t.Errorf("parseCandidate(%q) = %+v (loopback %v)", tt.line, c, c.loopback())
		}
	}
}

func TestOfferedString(t *testing.T) {
	var w, c, none offered
	w.addSDP("v=0\r\na=candidate:0 1 UDP 2122187007 127.0.0.1 35258 typ host\r\na=candidate:1 1 UDP 2122252543 ::1 32967 typ host\r\n", false)
	w.add("candidate:0 1 UDP 2122187007 127.0.0.1 35258 typ host", false) // the same address again
	w.add("", false)
	c.add("candidate:1 1 udp 2113937151 abc.local 33686 typ host", false)
	if got, want := w.String(), "host 127.0.0.1, host ::1"; got != want {
		t.Errorf("worker: %q, want %q", got, want)
	}
	if !w.onlyLoopback() || c.onlyLoopback() || none.onlyLoopback() {
		t.Errorf("onlyLoopback: worker %v client %v none %v", w.onlyLoopback(), c.onlyLoopback(), none.onlyLoopback())
	}
	if got, want := c.String(), "only mDNS .local names (1)"; got != want {
		t.Errorf("client: %q, want %q", got, want)
	}
	if got := none.String(); got != "no candidates" {
		t.Errorf("none: %q", got)
	}
	var mixed offered
	mixed.add("candidate:1 1 udp 2113937151 abc.local 33686 typ host", false)
	mixed.add("candidate:2 1 udp 2113937151 def.local 33687 typ host", false)
	mixed.add("candidate:4 1 udp 41885439 198.51.100.1 50000 typ relay raddr 203.0.113.2 rport 1", false)
	mixed.add("candidate:2 1 TCP 2105524479 198.51.100.2 9 typ host tcptype active", false)
	if got, want := mixed.String(), "relay 198.51.100.1, host 198.51.100.2 (tcp) and 2 mDNS .local names"; got != want {
		t.Errorf("mixed: %q, want %q", got, want)
	}
	var many offered
	for i := range 9 {
		many.add("candidate:1 1 udp 1 192.0.2."+string(rune('1'+i))+" 1 typ host", false)
	}
	if got := many.String(); !strings.HasSuffix(got, "(+3 more)") {
		t.Errorf("many: %q", got)
	}
}

func TestOfferedWithheld(t *testing.T) {
	var w offered
	w.add("candidate:0 1 UDP 2122187007 127.0.0.1 35258 typ host", true)
	w.add("candidate:1 1 UDP 2122252543 ::1 32967 typ host", true)
	if got, want := w.String(), "no candidates (and 2 loopback candidates, not passed on across machines)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if !w.onlyLoopback() {
		t.Error("withheld loopback candidates are loopback")
	}
	w.add("candidate:2 1 UDP 2122121471 198.51.100.1 40000 typ host", true)
	if got, want := w.String(), "host 198.51.100.1 (and 2 loopback candidates, not passed on across machines)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestPeerFailedReason(t *testing.T) {
	var loop, mdns, none, lan offered
	page := offered{browser: true}
	loop.add("candidate:0 1 UDP 2122187007 127.0.0.1 35258 typ host", false)
	mdns.add("candidate:1 1 udp 2113937151 abc.local 33686 typ host", false)
	lan.add("candidate:0 1 UDP 2122187007 198.51.100.1 35258 typ host", false)
	tests := []struct {
		detail         string
		worker, client *offered
		want           []string
	}{
		{"ICE", &loop, &mdns, []string{"ICE found no candidate pair", "the worker offered host 127.0.0.1, the client offered only mDNS .local names (1)", "run serve without --ice-loopback"}},
		{"ICE", &loop, &page, []string{"the client offered no candidates", "a browser gathers none on a machine with no network route"}},
		{"ICE", &loop, &none, []string{"the client offered no candidates", "many WebRTC libraries", "gather loopback candidates"}},
		{"ICE", &lan, &mdns, []string{"the worker offered host 198.51.100.1", "--turn-listen", "blocks UDP"}},
		{"DTLS", &lan, &mdns, []string{"DTLS did not complete"}},
	}
	for _, tt := range tests {
		got := peerFailed(tt.detail, tt.worker, tt.client)
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("peerFailed(%s) = %q\nwant it to contain %q", tt.detail, got, w)
			}
		}
	}
}

func TestDropLoopbackCandidates(t *testing.T) {
	sdp := "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n" +
		"a=candidate:0 1 UDP 2122187007 127.0.0.1 35258 typ host\r\n" +
		"a=candidate:1 1 UDP 2122252543 198.51.100.1 32967 typ host\r\n" +
		"a=candidate:2 1 UDP 2122252543 ::1 32968 typ host\r\n" +
		"a=end-of-candidates\r\n"
	want := "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n" +
		"a=candidate:1 1 UDP 2122252543 198.51.100.1 32967 typ host\r\n" +
		"a=end-of-candidates\r\n"
	if got := dropLoopbackCandidates(sdp); got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if got := dropLoopbackCandidates("v=0\r\n"); got != "v=0\r\n" {
		t.Errorf("no candidates: %q", got)
	}
}

func TestIsLoopbackAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:5000": true, "[::1]:80": true, "::1": true, "127.0.0.1": true, "[::ffff:127.0.0.1]:1": true,
		"198.51.100.2:5000": false, "[2001:db8::1]:1": false, "": false, "pipe": false,
	} {
		if got := isLoopbackAddr(addr); got != want {
			t.Errorf("isLoopbackAddr(%q) = %v", addr, got)
		}
	}
}

// FuzzCandidates feeds candidate lines and SDP (both come from the
// network) through the parser, the summary and the filter.
func FuzzCandidates(f *testing.F) {
	f.Add("candidate:0 1 UDP 2122187007 127.0.0.1 35258 typ host")
	f.Add("a=candidate:1 1 udp 2113937151 abc.local 33686 typ host\r\na=candidate:0 1 UDP 2122187007 ::1 35258 typ host\r\n")
	f.Add("candidate:4 1 udp 41885439 198.51.100.1 50000 typ relay raddr 203.0.113.2 rport 1")
	f.Fuzz(func(t *testing.T, s string) {
		var o offered
		o.add(s, false)
		o.addSDP(s, true)
		_ = o.String()
		_ = peerFailed("ICE", &o, &o)
		out := dropLoopbackCandidates(s)
		if len(out) > len(s) {
			t.Fatalf("filter grew the SDP: %q → %q", s, out)
		}
		if rest, _ := splitOfferCandidates(s, true); len(rest) > len(s) {
			t.Fatalf("split grew the SDP: %q → %q", s, rest)
		} else if _, left := splitOfferCandidates(rest, false); len(left) > 0 {
			t.Fatalf("split left candidates %v in %q", left, rest)
		}
		var again offered
		again.addSDP(out, false)
		if again.loop != 0 {
			t.Fatalf("loopback candidate left in %q", out)
		}
	})
}

// TestSplitOfferCandidates: the offer's candidates leave the SDP and
// become candidates of their section, in order; loopback ones of a client
// on another machine are left out.
func TestSplitOfferCandidates(t *testing.T) {
	offer := "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" +
		"m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n" +
		"a=candidate:1 1 udp 2130706431 198.51.100.2 40000 typ host\r\n" +
		"a=candidate:2 1 udp 2130706431 127.0.0.1 40001 typ host\r\n" +
		"a=end-of-candidates\r\n" +
		"a=mid:data\r\na=sctp-port:5000\r\n"
	rest, cs := splitOfferCandidates(offer, true)
	want := "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" +
		"m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n" +
		"a=mid:data\r\na=sctp-port:5000\r\n"
	if rest != want {
		t.Errorf("rest = %q\nwant %q", rest, want)
	}
	if len(cs) != 2 || cs[0].Candidate != "candidate:1 1 udp 2130706431 198.51.100.2 40000 typ host" || cs[1].Candidate != "" {
		t.Fatalf("candidates = %+v", cs)
	}
	for _, c := range cs {
		if c.SDPMid == nil || *c.SDPMid != "data" || c.SDPMLineIndex == nil || *c.SDPMLineIndex != 0 {
			t.Errorf("candidate %+v: want mid data, index 0", c)
		}
	}
	if _, cs := splitOfferCandidates(offer, false); len(cs) != 3 {
		t.Errorf("local client: %d candidates, want 3 (loopback kept)", len(cs))
	}
	if rest, cs := splitOfferCandidates("v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n", true); cs != nil || rest != "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n" {
		t.Errorf("no candidates: %q %v", rest, cs)
	}
}
