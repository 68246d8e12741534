package netguard_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/geckohost/geckohost/internal/netguard"
)

func TestClass(t *testing.T) {
	cases := map[string]string{
		"8.8.8.8":                netguard.ClassPublic,
		"192.0.2.1":              netguard.ClassPublic, // documentation: global unicast
		"2606:4700::1111":        netguard.ClassPublic,
		"127.0.0.1":              netguard.ClassLoopback,
		"127.9.9.9":              netguard.ClassLoopback,
		"::1":                    netguard.ClassLoopback,
		"::ffff:127.0.0.1":       netguard.ClassLoopback,
		"10.1.2.3":               netguard.ClassPrivate,
		"172.16.0.1":             netguard.ClassPrivate,
		"192.168.1.1":            netguard.ClassPrivate,
		"fd00::1":                netguard.ClassPrivate,
		"169.254.169.254":        netguard.ClassLinkLocal,
		"fe80::1":                netguard.ClassLinkLocal,
		"100.64.0.1":             netguard.ClassShared,
		"100.127.255.254":        netguard.ClassShared,
		"224.0.0.1":              netguard.ClassMulticast,
		"ff02::1":                netguard.ClassMulticast,
		"0.0.0.0":                netguard.ClassUnspecified,
		"::":                     netguard.ClassUnspecified,
		"0.1.2.3":                netguard.ClassReserved,
		"255.255.255.255":        netguard.ClassReserved,
		"198.18.0.1":             netguard.ClassReserved,
		"::127.0.0.1":            netguard.ClassReserved,
		"64:ff9b::7f00:1":        netguard.ClassReserved, // NAT64 of 127.0.0.1
		"64:ff9b::808:808":       netguard.ClassPublic,   // NAT64 of 8.8.8.8
		"2002:a00:1::1":          netguard.ClassReserved, // 6to4 of 10.0.0.1
		"2002:808:808::1":        netguard.ClassPublic,
		"fec0::1":                netguard.ClassReserved,
		"2001:0:4136:e378::1":    netguard.ClassReserved, // Teredo
		"::ffff:169.254.169.254": netguard.ClassLinkLocal,
		"::ffff:0:a00:1":         netguard.ClassReserved,
		"100.63.255.255":         netguard.ClassPublic,
		"100.128.0.0":            netguard.ClassPublic,
		"2001:db8::1":            netguard.ClassPublic,
		"64:ff9b:1::a00:1":       netguard.ClassReserved,
		"fe80::1%eth0":           netguard.ClassLinkLocal,
		"::ffff:192.168.0.1":     netguard.ClassPrivate,
		"::ffff:100.64.0.1":      netguard.ClassShared,
		"::ffff:224.0.0.1":       netguard.ClassMulticast,
		"::ffff:0.0.0.0":         netguard.ClassUnspecified,
		"ff05::2":                netguard.ClassMulticast,
		"2002:7f00:1::1":         netguard.ClassReserved,
		"2002:c000:201::1":       netguard.ClassPublic,
		"240.0.0.1":              netguard.ClassReserved,
		"192.0.0.170":            netguard.ClassReserved,
		"100::1":                 netguard.ClassReserved,
		"::2":                    netguard.ClassReserved,
		"::ffff:8.8.8.8":         netguard.ClassPublic,
		"2001:4860:4860::8888":   netguard.ClassPublic,
		"fc00::1":                netguard.ClassPrivate,
		"ff00::1":                netguard.ClassMulticast,
		"127.255.255.255":        netguard.ClassLoopback,
		"169.254.0.1":            netguard.ClassLinkLocal,
		"172.31.255.255":         netguard.ClassPrivate,
		"172.32.0.1":             netguard.ClassPublic,
		"11.0.0.1":               netguard.ClassPublic,
		"9.255.255.255":          netguard.ClassPublic,
		"192.169.0.1":            netguard.ClassPublic,
		"203.0.113.7":            netguard.ClassPublic,
		"198.51.100.7":           netguard.ClassPublic,
		"64:ff9b::c000:201":      netguard.ClassPublic,
		"64:ff9b::a9fe:a9fe":     netguard.ClassReserved,
		"2002:a9fe:a9fe::1":      netguard.ClassReserved,
		"::ffff:7f00:1":          netguard.ClassLoopback,
		"0:0:0:0:0:ffff:a00:1":   netguard.ClassPrivate,
		"1.1.1.1":                netguard.ClassPublic,
		"fe80::":                 netguard.ClassLinkLocal,
		"febf::1":                netguard.ClassLinkLocal,
		"fee0::1":                netguard.ClassReserved, // in fec0::/10
		"2000::1":                netguard.ClassPublic,
		"3fff::1":                netguard.ClassPublic,
		"4000::1":                netguard.ClassReserved, // not global unicast (2000::/3)
		"e000::1":                netguard.ClassReserved,
		"127.0.0.0":              netguard.ClassLoopback,
		"0.0.0.1":                netguard.ClassReserved,
		"100.64.0.0":             netguard.ClassShared,
		"192.0.0.0":              netguard.ClassReserved,
		"198.19.255.255":         netguard.ClassReserved,
		"198.20.0.0":             netguard.ClassPublic,
		"239.255.255.255":        netguard.ClassMulticast,
		"::ffff:240.0.0.1":       netguard.ClassReserved,
		"::ffff:255.255.255.255": netguard.ClassReserved,
		"64:ff9b::ffff:ffff":     netguard.ClassReserved,
		"2002:ffff:ffff::":       netguard.ClassReserved,
		"2002:0:0::":             netguard.ClassReserved,
		"2002:6440:1::":          netguard.ClassReserved, // 6to4 of 100.64.0.1
		"64:ff9b::6440:1":        netguard.ClassReserved,
		"::ffff:10.0.0.1":        netguard.ClassPrivate,
		"fd12:3456:789a:1::1":    netguard.ClassPrivate,
		"2001:200::1":            netguard.ClassPublic, // just past 2001::/23
		"2001:1ff::1":            netguard.ClassReserved,
		"::ffff:198.18.0.1":      netguard.ClassReserved,
		"::ffff:192.0.0.1":       netguard.ClassReserved,
		"0000::ffff:0:0":         netguard.ClassUnspecified, // ::ffff:0.0.0.0
		"::ffff:0.0.0.1":         netguard.ClassReserved,
		"2002::":                 netguard.ClassReserved,
		"64:ff9b::":              netguard.ClassReserved,
	}
	for s, want := range cases {
		a, err := netip.ParseAddr(s)
		if err != nil {
			t.Fatalf("parse %s: %v", s, err)
		}
		if got := netguard.Class(a); got != want {
			t.Errorf("Class(%s) = %q, want %q", s, got, want)
		}
	}
}

// fakeResolver answers from a map and counts lookups.
type fakeResolver struct {
	addrs   map[string][]string
	lookups int
}

func (r *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.lookups++
	var out []netip.Addr
	for _, s := range r.addrs[host] {
		out = append(out, netip.MustParseAddr(s))
	}
	if len(out) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return out, nil
}

// TestDialerDialsTheCheckedAddress: the name is resolved once and the
// connection goes to a checked address (never to the name, which a second
// lookup could turn into another address); a name whose addresses are all
// refused is never dialed.
func TestDialerDialsTheCheckedAddress(t *testing.T) {
	res := &fakeResolver{addrs: map[string][]string{
		"mixed.test":  {"10.0.0.1", "192.0.2.10"},
		"inside.test": {"127.0.0.1", "169.254.169.254"},
	}}
	var dialed []string
	d := &netguard.Dialer{
		Rule:     netguard.PublicOnly,
		Resolver: res,
		Dial: func(_ context.Context, _, addr string) (net.Conn, error) {
			dialed = append(dialed, addr)
			a, b := net.Pipe()
			_ = b.Close()
			return a, nil
		},
	}
	c, err := d.DialContext(context.Background(), "tcp", "mixed.test:80")
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	if strings.Join(dialed, ",") != "192.0.2.10:80" || res.lookups != 1 {
		t.Fatalf("dialed %v after %d lookups, want only 192.0.2.10:80 after 1", dialed, res.lookups)
	}
	dialed = nil
	_, err = d.DialContext(context.Background(), "tcp", "inside.test:80")
	var re *netguard.RefusedError
	if !errors.As(err, &re) || !errors.Is(err, netguard.ErrRefused) || len(dialed) != 0 {
		t.Fatalf("err = %v, dialed %v; want a RefusedError and no dial", err, dialed)
	}
	if re.Why != netguard.ClassLoopback || !strings.Contains(err.Error(), "inside.test resolves to 127.0.0.1, a loopback address") {
		t.Fatalf("refusal: %v (why %q)", err, re.Why)
	}
	_, err = d.DialContext(context.Background(), "tcp", "[::1]:80")
	if !errors.As(err, &re) || re.Why != netguard.ClassLoopback || len(dialed) != 0 {
		t.Fatalf("[::1]: err = %v, dialed %v", err, dialed)
	}
	if _, err := d.DialContext(context.Background(), "tcp", "nowhere.test:80"); err == nil || errors.Is(err, netguard.ErrRefused) {
		t.Fatalf("unknown name: err = %v, want a lookup error", err)
	}
}
