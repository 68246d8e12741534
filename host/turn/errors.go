package turn

import "errors"

var (
	// ErrNoRelayAddress: the listen address is unspecified and this host
	// has no non-loopback IPv4 address to relay on (set Options.RelayIP).
	ErrNoRelayAddress = errors.New("no relay address: give --turn-public-ip")
	// ErrTCPRelay: a client asked for a TCP relay (RFC 6062), which is not
	// offered.
	ErrTCPRelay = errors.New("TCP relay allocations are not offered")
)
