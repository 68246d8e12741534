package egress

import (
	"bufio"
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

// FuzzSocksRequest: the SOCKS5 parser never panics, and what it accepts
// has a printable host without spaces (a domain name of 1-255 bytes or a
// canonical address).
func FuzzSocksRequest(f *testing.F) {
	f.Add([]byte{5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 80})
	f.Add([]byte{5, 1, 0, 5, 1, 0, 3, 9, 'l', 'o', 'c', 'a', 'l', 'h', 'o', 's', 't', 1, 187})
	f.Add([]byte{5, 2, 2, 0, 5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 80})
	f.Add([]byte{5, 1, 0, 5, 3, 0, 3, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		ok, err := readGreeting(r)
		if err != nil || !ok {
			return
		}
		req, err := readRequest(r)
		if err != nil {
			return
		}
		if req.host == "" || len(req.host) > 255 || strings.ContainsAny(req.host, " \t\r\n\x00") {
			t.Fatalf("accepted host %q", req.host)
		}
		if a, err := netip.ParseAddr(req.host); err == nil && a.String() != req.host {
			t.Fatalf("address %q not canonical", req.host)
		}
		_ = targetKey(req.host, req.port)
	})
}

// FuzzOriginKey: OriginKey never panics and its keys end in a port.
func FuzzOriginKey(f *testing.F) {
	for _, s := range []string{"http://example.com/w.js", "https://[::1]:8443/", "http://a:b:c/", "http://:80/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, ok := OriginKey(s)
		if ok && !strings.Contains(k, ":") {
			t.Fatalf("OriginKey(%q) = %q", s, k)
		}
	})
}

// TestDomainAddressLiterals: an address given as a domain name is read as
// that address in its canonical form; one with a zone is refused.
func TestDomainAddressLiterals(t *testing.T) {
	for name, want := range map[string]string{
		"::000":            "::",
		"::ffff:127.0.0.1": "127.0.0.1",
		"0:0:0:0:0:0:0:1":  "::1",
		"127.0.0.1":        "127.0.0.1",
		"example.com":      "example.com",
		"fe80::1%lo":       "",
	} {
		b := append([]byte{5, 1, 0, 3, byte(len(name))}, name...)
		req, err := readRequest(bufio.NewReader(bytes.NewReader(append(b, 0, 80))))
		switch {
		case want == "" && err == nil:
			t.Errorf("%q: read as %q, want an error", name, req.host)
		case want != "" && (err != nil || req.host != want):
			t.Errorf("%q: %q, %v; want %q", name, req.host, err, want)
		}
	}
}
