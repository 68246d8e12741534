package host

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzResolveLocation: a redirect's Location never panics the resolver,
// and what it returns is an absolute URL without a fragment when the base
// is one (the hop is then checked like any source).
func FuzzResolveLocation(f *testing.F) {
	for _, s := range []string{"/w.js", "../a/./b.js", "http://other.example/x", "//evil.example/y", "https://a/b?c#d",
		"http://[::1", "file:///etc/passwd", "javascript:alert(1)", "\x00", "http://169.254.169.254/", " /x", "%zz"} {
		f.Add(s)
	}
	base, _ := url.Parse("http://a.example:8080/dir/w.js?q=1")
	f.Fuzz(func(t *testing.T, loc string) {
		u, err := resolveLocation(base, loc)
		if err != nil {
			return
		}
		if !u.IsAbs() || u.Fragment != "" {
			t.Fatalf("resolveLocation(%q) = %q", loc, u)
		}
		if _, err := url.Parse(u.String()); err != nil {
			t.Fatalf("resolveLocation(%q) = %q, which does not parse: %v", loc, u, err)
		}
	})
}

// FuzzParseHostHeader: Host parsing never panics, and an accepted host is
// canonical (parsing its output gives it back).
func FuzzParseHostHeader(f *testing.F) {
	for _, s := range []string{"127.0.0.1:8765", "localhost", "[::1]:80", "Example.COM:443", "evil.example:0", "a:b:c",
		"[::ffff:127.0.0.1]:1", "1.2.3.4:65536", "::1", "[fe80::1%25eth0]:80", "x..y", "-a.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		host, port, ok := parseHostHeader(h)
		if !ok {
			return
		}
		if host == "" || (port != "" && !validPort(port)) {
			t.Fatalf("parseHostHeader(%q) = %q, %q", h, host, port)
		}
		again := host
		if strings.Contains(host, ":") {
			again = "[" + host + "]"
		}
		if h2, _, ok := parseHostHeader(again); !ok || h2 != host {
			t.Fatalf("parseHostHeader(%q) = %q, not canonical (%q, %v)", h, host, h2, ok)
		}
	})
}

// FuzzCheckOffer: the offer check never panics, and an accepted offer has
// 1 to 4 m-lines, all m=application with an SCTP protocol.
func FuzzCheckOffer(f *testing.F) {
	f.Add("v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n")
	f.Add("v=0\nm=audio 9 RTP/AVP 0\n")
	f.Add("v=0\r\n" + strings.Repeat("m=application 9 DTLS/SCTP 5000\r\n", 5))
	f.Add("")
	f.Fuzz(func(t *testing.T, offer string) {
		if checkOffer(offer) != nil {
			return
		}
		n := 0
		for _, l := range strings.Split(offer, "\n") {
			if rest, ok := strings.CutPrefix(strings.TrimSuffix(l, "\r"), "m="); ok {
				n++
				f := strings.Fields(rest)
				if len(f) < 4 || f[0] != "application" || !strings.HasSuffix(f[2], "SCTP") {
					t.Fatalf("accepted m-line %q", l)
				}
			}
		}
		if n < 1 || n > maxMediaSections {
			t.Fatalf("accepted %d m-lines", n)
		}
	})
}
