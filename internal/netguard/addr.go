package netguard

import "net/netip"

// Address classes returned by Class.
const (
	ClassPublic      = "public"
	ClassLoopback    = "loopback"
	ClassPrivate     = "private"
	ClassLinkLocal   = "link-local"
	ClassShared      = "shared (CGNAT)"
	ClassMulticast   = "multicast"
	ClassUnspecified = "unspecified"
	ClassReserved    = "reserved"
)

var reserved = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and the broadcast address
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001::/23"),       // IETF protocol assignments (Teredo, ...)
	netip.MustParsePrefix("::/96"),           // IPv4-compatible (deprecated)
	netip.MustParsePrefix("::ffff:0:0:0/96"), // SIIT translated
}

var (
	shared   = netip.MustParsePrefix("100.64.0.0/10")
	globalV6 = netip.MustParsePrefix("2000::/3") // IANA's global unicast space
)

// Embedded IPv4 ranges: the IPv4 address inside is checked.
var (
	nat64      = netip.MustParsePrefix("64:ff9b::/96")
	nat64Local = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFour  = netip.MustParsePrefix("2002::/16")
)

// Class returns ClassPublic for a public address, else the class that makes
// it not public. An IPv4-mapped IPv6 address is classed as its IPv4
// address.
func Class(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case !a.IsValid(), a.IsUnspecified():
		return ClassUnspecified
	case a.IsLoopback():
		return ClassLoopback
	case a.IsLinkLocalUnicast():
		return ClassLinkLocal
	case a.IsMulticast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		return ClassMulticast
	case a.IsPrivate():
		return ClassPrivate
	case shared.Contains(a):
		return ClassShared
	}
	for _, p := range reserved {
		if p.Contains(a) {
			return ClassReserved
		}
	}
	if a.Is6() {
		b := a.As16()
		switch {
		case nat64.Contains(a):
			return embedded(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
		case nat64Local.Contains(a):
			return ClassReserved
		case sixToFour.Contains(a):
			return embedded(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}))
		}
	}
	if !a.IsGlobalUnicast() || a.Is6() && !globalV6.Contains(a) {
		return ClassReserved
	}
	return ClassPublic
}

// embedded classes an IPv4 address carried inside an IPv6 one: public when
// it is, else reserved (a way to reach it).
func embedded(v4 netip.Addr) string {
	if Class(v4) == ClassPublic {
		return ClassPublic
	}
	return ClassReserved
}

// Public reports whether a is a public address (see Class).
func Public(a netip.Addr) bool { return Class(a) == ClassPublic }

// Local reports whether a connection to a reaches this machine whatever
// listens there: a loopback or unspecified address (connecting to 0.0.0.0
// or :: reaches loopback listeners).
func Local(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsUnspecified() || !a.IsValid()
}
