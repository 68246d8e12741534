package host

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ICE candidates as the host sees them in the signaling: to say, when a
// peer connection fails (305), what each side offered; and to keep
// loopback candidates between the worker and a client on another machine
// out of the way (neither can reach the other's 127.0.0.1, and trying
// first costs a check round each).

// candidate is the part of an ICE candidate line the host looks at.
type candidate struct {
	typ   string     // host, srflx, prflx, relay
	tcp   bool       // transport TCP
	addr  netip.Addr // invalid for an mDNS name
	mdns  bool       // the address is an mDNS .local name
	valid bool
}

// parseCandidate reads "candidate:foundation component transport priority
// address port typ type ..." (with or without "a=").
func parseCandidate(line string) candidate {
	line = strings.TrimPrefix(strings.TrimSpace(line), "a=")
	f := strings.Fields(line)
	if len(f) < 8 || !strings.HasPrefix(f[0], "candidate:") || f[6] != "typ" {
		return candidate{}
	}
	if _, err := strconv.ParseUint(f[5], 10, 16); err != nil {
		return candidate{}
	}
	c := candidate{typ: strings.ToLower(f[7]), tcp: strings.EqualFold(f[2], "tcp"), valid: true}
	switch {
	case strings.HasSuffix(strings.ToLower(f[4]), ".local"):
		c.mdns = true
	default:
		a, err := netip.ParseAddr(f[4])
		if err != nil {
			return candidate{}
		}
		c.addr = a.Unmap()
	}
	return c
}

// loopback reports whether c has a loopback address.
func (c candidate) loopback() bool { return c.valid && c.addr.IsValid() && c.addr.IsLoopback() }

// offered summarises the candidates one side of a session offered, in its
// SDP and trickled, for the reason of a 305.
type offered struct {
	n     int
	mdns  int            // host candidates with an mDNS name
	addrs map[string]int // "host 127.0.0.1" → order first seen
	order []string
	loop  int // candidates with a loopback address
	other int // candidates with a non-loopback address or an mDNS name
	// withheld counts the loopback candidates not passed on (between a
	// client on another machine and the worker); not in order.
	withheld int
	// browser: the side is a web page (its WebSocket came with an
	// Origin, which browsers always send and programs seldom do); the
	// advice of a 305 is written for the kind of client it is.
	browser bool
}

// maxOfferedShown bounds the addresses named per side.
const maxOfferedShown = 6

// add counts one candidate line (ignores what does not parse, and the
// end-of-candidates marker); withhold: a loopback one is counted as
// withheld. It reports whether the line is a loopback candidate.
func (o *offered) add(line string, withhold bool) bool {
	c := parseCandidate(line)
	if !c.valid {
		return false
	}
	o.n++
	if c.loopback() {
		o.loop++
		if withhold {
			o.withheld++
			return true
		}
	} else {
		o.other++
	}
	if c.mdns {
		o.mdns++
		return false
	}
	k := c.typ + " " + c.addr.String()
	if c.tcp {
		k += " (tcp)"
	}
	if o.addrs == nil {
		o.addrs = map[string]int{}
	}
	if _, ok := o.addrs[k]; !ok {
		o.addrs[k] = len(o.order)
		o.order = append(o.order, k)
	}
	return c.loopback()
}

// addSDP counts the a=candidate lines of an SDP (see add).
func (o *offered) addSDP(sdp string, withhold bool) {
	for line := range strings.Lines(sdp) {
		if strings.HasPrefix(line, "a=candidate:") {
			o.add(line, withhold)
		}
	}
}

// onlyLoopback reports whether every candidate offered has a loopback
// address (and there is at least one), withheld ones included.
func (o *offered) onlyLoopback() bool { return o.loop > 0 && o.other == 0 }

// String names what was offered: "host 127.0.0.1, host ::1", "only mDNS
// .local names (2)", "host 198.51.100.2, relay 198.51.100.1 and 1 mDNS
// .local name", "no candidates".
func (o *offered) String() string {
	s := o.listed()
	switch {
	case o.withheld == 1:
		s += " (and 1 loopback candidate, not passed on across machines)"
	case o.withheld > 1:
		s += fmt.Sprintf(" (and %d loopback candidates, not passed on across machines)", o.withheld)
	}
	return s
}

func (o *offered) listed() string {
	if o.n == o.withheld {
		return "no candidates"
	}
	if len(o.order) == 0 {
		return fmt.Sprintf("only mDNS .local names (%d)", o.mdns)
	}
	shown := o.order
	more := 0
	if len(shown) > maxOfferedShown {
		more = len(shown) - maxOfferedShown
		shown = shown[:maxOfferedShown]
	}
	s := strings.Join(shown, ", ")
	if more > 0 {
		s += fmt.Sprintf(" (+%d more)", more)
	}
	switch {
	case o.mdns == 1:
		s += " and 1 mDNS .local name"
	case o.mdns > 1:
		s += fmt.Sprintf(" and %d mDNS .local names", o.mdns)
	}
	return s
}

// peerFailed is the 305 for a worker whose peer connection failed before
// the data channel opened: what failed (detail "ICE" or "DTLS"), what each
// side offered, and what to do.
func peerFailed(detail string, worker, client *offered) string {
	what := "ICE"
	if strings.EqualFold(detail, "DTLS") {
		what = "DTLS"
	}
	var b strings.Builder
	if what == "DTLS" {
		b.WriteString("the peer connection between the client and the worker failed: DTLS did not complete on the candidate pair ICE found")
	} else {
		b.WriteString("the peer connection between the client and the worker failed: ICE found no candidate pair that works")
	}
	fmt.Fprintf(&b, "; the worker offered %s, the client offered %s", worker, client)
	switch {
	case what == "DTLS":
		b.WriteString(". Something on the path drops or alters the DTLS packets; try again, or relay through TURN (serve --turn-listen)")
	case client.n == 0:
		b.WriteString(noClientCandidates(client.browser))
	case worker.onlyLoopback() && !client.onlyLoopback():
		b.WriteString(". The workers use loopback candidates only (serve --ice-loopback), which only a client on this machine that uses loopback can reach (stock Chromium and the Go client do; stock Firefox and clients on other machines do not): run serve without --ice-loopback")
	default:
		b.WriteString(". There is no network path between them: a client on another network needs serve --turn-listen (clients get the relay from GET /ice-servers) or a TURN server given with --ice-server; a network that blocks UDP needs TURN over TCP (both are offered by --turn-listen)")
	}
	return b.String()
}

// noClientCandidates is the advice of a 305 whose client offered no
// candidates, for a browser or for a program (a WebRTC library).
func noClientCandidates(browser bool) string {
	if browser {
		return ". The client gathered no candidates: a browser gathers none on a machine with no network route (offline) and, like stock Firefox, uses loopback only when configured to; connect from a machine with a network"
	}
	return ". The client gathered no candidates: many WebRTC libraries (aiortc's aioice and libdatachannel among them) leave loopback interfaces out, so on a machine whose only interface is loopback they have none to offer; run the client where it has a network interface, or have its ICE agent gather loopback candidates (pion: SettingEngine.SetIncludeLoopbackCandidate)"
}

// isLoopbackAddr reports whether a host:port (or bare host) is a loopback
// address.
func isLoopbackAddr(hostport string) bool {
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		return ap.Addr().Unmap().IsLoopback()
	}
	a, err := netip.ParseAddr(strings.Trim(hostport, "[]"))
	return err == nil && a.Unmap().IsLoopback()
}

// dropLoopbackCandidates returns sdp without its a=candidate lines that
// have a loopback address.
func dropLoopbackCandidates(sdp string) string {
	if !strings.Contains(sdp, "a=candidate:") {
		return sdp
	}
	var b strings.Builder
	b.Grow(len(sdp))
	for line := range strings.Lines(sdp) {
		if strings.HasPrefix(line, "a=candidate:") && parseCandidate(line).loopback() {
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}
