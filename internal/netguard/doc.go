// Package netguard decides which network addresses geckohost connects to on
// behalf of someone else (a worker source fetched for a token, a worker's
// own requests through the egress proxy), and dials only the addresses it
// checked.
//
// An address is public when it is a global unicast address that is not
// private (10/8, 172.16/12, 192.168/16, fc00::/7), shared (CGNAT,
// 100.64/10), loopback, link-local, multicast, unspecified or otherwise
// reserved (0/8, 192.0.0/24, 198.18/15, 240/4, the IPv6 site-local, NAT64,
// 6to4 and IPv4-compatible ranges whose embedded IPv4 address is not
// public). Class names the reason an address is not public.
//
// Resolve looks a host name up once; Dialer.DialContext resolves, checks
// every address with a caller's rule and connects to a checked address
// only, so a name cannot resolve to one address for the check and another
// for the connection (DNS rebinding).
package netguard
