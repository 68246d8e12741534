package host

import (
	"net/netip"
	"strconv"
	"strings"
)

// RelayPeers is told the candidates of each live worker, so that an
// embedded TURN relay lets a token's clients reach those and nothing else
// (host/turn's Server implements it). The host adds each UDP candidate of
// a worker as it relays it to the client (in the answer or trickled), and
// drops a session's when its worker ended.
type RelayPeers interface {
	// AddPeer adds a, a candidate of the worker of session (of token
	// tokenID).
	AddPeer(tokenID int64, session string, a netip.AddrPort)
	// DropPeers removes every candidate of session's worker.
	DropPeers(session string)
}

// addRelayPeer tells Options.RelayPeers about a worker candidate line
// (UDP, with an IP address; others are ignored).
func (se *session) addRelayPeer(line string) {
	rp := se.s.opts.RelayPeers
	if rp == nil {
		return
	}
	if a, ok := udpCandidateAddr(line); ok {
		rp.AddPeer(se.token.ID, se.id, a)
	}
}

// addRelayPeers adds the a=candidate lines of a worker's SDP.
func (se *session) addRelayPeers(sdp string) {
	if se.s.opts.RelayPeers == nil {
		return
	}
	for _, l := range strings.Split(sdp, "\n") {
		if strings.HasPrefix(l, "a=candidate:") {
			se.addRelayPeer(strings.TrimSpace(l))
		}
	}
}

// dropRelayPeers removes the session's worker candidates (it ended).
func (se *session) dropRelayPeers() {
	if rp := se.s.opts.RelayPeers; rp != nil {
		rp.DropPeers(se.id)
	}
}

// udpCandidateAddr returns the address and port of a UDP candidate line
// ("[a=]candidate:foundation component udp priority address port typ ...");
// ok is false for TCP, an mDNS name or anything that does not parse.
func udpCandidateAddr(line string) (netip.AddrPort, bool) {
	f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "a="))
	if len(f) < 8 || !strings.HasPrefix(f[0], "candidate:") || !strings.EqualFold(f[2], "udp") || f[6] != "typ" {
		return netip.AddrPort{}, false
	}
	a, err := netip.ParseAddr(f[4])
	if err != nil || a.Zone() != "" {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(f[5], 10, 16)
	if err != nil || port == 0 {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), true
}
