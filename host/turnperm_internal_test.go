package host

import (
	"net/netip"
	"testing"
)

func TestUDPCandidateAddr(t *testing.T) {
	for line, want := range map[string]string{
		"candidate:1 1 UDP 2122252543 192.0.2.1 50000 typ host":                "192.0.2.1:50000",
		"a=candidate:1 1 udp 2122252543 ::ffff:192.0.2.1 50000 typ host":       "192.0.2.1:50000",
		"candidate:1 1 udp 1 2001:db8::1 3478 typ relay raddr 0.0.0.0 rport 0": "[2001:db8::1]:3478",
		"candidate:1 1 tcp 1 192.0.2.1 9 typ host tcptype active":              "",
		"candidate:1 1 udp 1 abc.local 5000 typ host":                          "",
		"candidate:1 1 udp 1 fe80::1%eth0 5000 typ host":                       "",
		"candidate:1 1 udp 1 192.0.2.1 0 typ host":                             "",
		"candidate:1 1 udp 1 192.0.2.1 70000 typ host":                         "",
		"": "",
	} {
		a, ok := udpCandidateAddr(line)
		got := ""
		if ok {
			got = a.String()
		}
		if got != want {
			t.Errorf("udpCandidateAddr(%q) = %q, want %q", line, got, want)
		}
	}
}

// FuzzUDPCandidateAddr: any line parses or not without panicking, and
// what parses is a usable peer (a valid unmapped address without a zone,
// a port).
func FuzzUDPCandidateAddr(f *testing.F) {
	f.Add("candidate:1 1 UDP 2122252543 192.0.2.1 50000 typ host")
	f.Add("a=candidate:1 1 udp 1 ::ffff:192.0.2.1 1 typ srflx raddr 0.0.0.0 rport 0")
	f.Fuzz(func(t *testing.T, line string) {
		a, ok := udpCandidateAddr(line)
		if !ok {
			return
		}
		if !a.IsValid() || a.Port() == 0 || a.Addr().Zone() != "" || a.Addr().Is4In6() || a != netip.AddrPortFrom(a.Addr(), a.Port()) {
			t.Fatalf("udpCandidateAddr(%q) = %v", line, a)
		}
	})
}
