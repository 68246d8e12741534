// Package egress is the proxy every network request of geckohost's workers
// goes through: a SOCKS5 server on loopback that Firefox is told to use for
// everything (network.proxy.type=1, network.proxy.socks_remote_dns=true so
// that names are resolved here, network.proxy.allow_hijacking_localhost=true
// so that loopback requests are not sent around it, and a per-user-context
// proxy set with BiDi browser.createUserContext, so that each token's
// requests arrive on a listener of their own, an Identity).
//
// Each request's host is resolved once, every address checked against the
// Policy, and the connection made to a checked address. A refused request
// gets a SOCKS "not allowed" reply, which the worker sees as a network
// error, and is counted on its Identity. Firefox's BiDi port (DenyPort),
// the proxy's own listeners and the shell server are never reachable: the
// shell server only through Options.Shell, for page navigations, which
// workers cannot make.
package egress
