package host

import (
	"strings"

	"github.com/geckohost/geckohost/engine"
)

// maxMediaSections is the most m-lines an offer may have.
const maxMediaSections = 4

// checkOffer returns a 204 unless offer looks like an SDP offer ("v=0"
// first) whose media sections are all data channels (m=application with
// an SCTP protocol: "UDP/DTLS/SCTP webrtc-datachannel", or the older
// "DTLS/SCTP <port>"), at least one and at most maxMediaSections. The
// browser checks the rest; this keeps offers that cost it much (hundreds of
// audio sections) from reaching it.
func checkOffer(offer string) *engine.Error {
	bad := func(format string, args ...any) *engine.Error {
		return engine.Errorf(engine.InvalidOffer, "invalid offer: "+format, args...)
	}
	lines := strings.Split(offer, "\n")
	first := true
	sections := 0
	for i, line := range lines {
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			continue
		}
		if first {
			first = false
			if line != "v=0" {
				return bad("not an SDP session description (the first line must be v=0)")
			}
			continue
		}
		rest, ok := strings.CutPrefix(line, "m=")
		if !ok {
			continue
		}
		sections++
		if sections > maxMediaSections {
			return bad("more than %d media sections (m-lines); a data-channel offer has one", maxMediaSections)
		}
		f := strings.Fields(rest)
		switch {
		case len(f) < 4:
			return bad("m-line %d (line %d) is malformed: want m=application <port> UDP/DTLS/SCTP webrtc-datachannel", sections, i+1)
		case f[0] != "application":
			return bad("m-line %d is %s; only data channels (m=application) are accepted", sections, shortField(f[0]))
		case !sctpProto(f[2]):
			return bad("m-line %d has protocol %s; a data channel uses UDP/DTLS/SCTP (or TCP/DTLS/SCTP, DTLS/SCTP)", sections, shortField(f[2]))
		}
	}
	if first {
		return bad("empty")
	}
	if sections == 0 {
		return bad("no media section; the client must create a data channel before its offer")
	}
	return nil
}

func sctpProto(p string) bool {
	switch p {
	case "UDP/DTLS/SCTP", "TCP/DTLS/SCTP", "DTLS/SCTP":
		return true
	}
	return false
}

// shortField quotes a field of the offer for a reason, cut to 32 bytes.
func shortField(s string) string {
	if len(s) > 32 {
		s = s[:32] + "..."
	}
	return `"` + strings.ToValidUTF8(s, "?") + `"`
}
