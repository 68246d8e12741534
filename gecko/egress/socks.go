package egress

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// SOCKS5 (RFC 1928), the part Firefox speaks: no authentication, CONNECT
// to an IPv4 or IPv6 address or a domain name (the proxy resolves it:
// network.proxy.socks_remote_dns).

const (
	socksVersion = 5

	methodNoAuth       = 0x00
	methodNoAcceptable = 0xff

	cmdConnect = 0x01

	atypIPv4   = 0x01
	atypDomain = 0x03
	atypIPv6   = 0x04

	replySucceeded           = 0x00
	replyGeneralFailure      = 0x01
	replyNotAllowed          = 0x02
	replyNetworkUnreachable  = 0x03
	replyHostUnreachable     = 0x04
	replyConnectionRefused   = 0x05
	replyCommandNotSupported = 0x07
	replyAddressNotSupported = 0x08
)

// errSocks is wrapped by every malformed-handshake error.
var errSocks = errors.New("bad SOCKS5 handshake")

// request is a client's SOCKS5 request.
type request struct {
	cmd  byte
	host string // a domain name, or an address in its canonical text form
	port uint16
}

// readGreeting reads the client's method list and reports whether it
// offers "no authentication".
func readGreeting(r *bufio.Reader) (bool, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return false, fmt.Errorf("read SOCKS5 greeting: %w", err)
	}
	if h[0] != socksVersion {
		return false, fmt.Errorf("%w: version %d", errSocks, h[0])
	}
	if h[1] == 0 {
		return false, fmt.Errorf("%w: no methods", errSocks)
	}
	methods := make([]byte, h[1])
	if _, err := io.ReadFull(r, methods); err != nil {
		return false, fmt.Errorf("read SOCKS5 methods: %w", err)
	}
	for _, m := range methods {
		if m == methodNoAuth {
			return true, nil
		}
	}
	return false, nil
}

// readRequest reads a SOCKS5 request. A domain name is returned as sent
// (checked to be printable, without spaces, at most 255 bytes); the caller
// validates it further.
func readRequest(r *bufio.Reader) (request, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return request{}, fmt.Errorf("read SOCKS5 request: %w", err)
	}
	if h[0] != socksVersion || h[2] != 0 {
		return request{}, fmt.Errorf("%w: request version %d, reserved %d", errSocks, h[0], h[2])
	}
	req := request{cmd: h[1]}
	switch h[3] {
	case atypIPv4:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return request{}, fmt.Errorf("read SOCKS5 address: %w", err)
		}
		req.host = netip.AddrFrom4(b).String()
	case atypIPv6:
		var b [16]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return request{}, fmt.Errorf("read SOCKS5 address: %w", err)
		}
		req.host = netip.AddrFrom16(b).Unmap().String()
	case atypDomain:
		n, err := r.ReadByte()
		if err != nil {
			return request{}, fmt.Errorf("read SOCKS5 address: %w", err)
		}
		if n == 0 {
			return request{}, fmt.Errorf("%w: empty domain name", errSocks)
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return request{}, fmt.Errorf("read SOCKS5 address: %w", err)
		}
		for _, c := range b {
			if c <= ' ' || c >= 0x7f {
				return request{}, fmt.Errorf("%w: bad byte %#x in a domain name", errSocks, c)
			}
		}
		req.host = string(b)
		// A name that is an address literal is that address, in its
		// canonical form ("::000" is "::", "::ffff:127.0.0.1" is
		// "127.0.0.1"), so the policy sees one spelling of it; a zone
		// names an interface, which no worker may choose.
		if a, err := netip.ParseAddr(req.host); err == nil {
			if a.Zone() != "" {
				return request{}, fmt.Errorf("%w: address %q with a zone", errSocks, req.host)
			}
			req.host = a.Unmap().String()
		}
	default:
		return request{}, fmt.Errorf("%w: address type %d", errSocks, h[3])
	}
	var p [2]byte
	if _, err := io.ReadFull(r, p[:]); err != nil {
		return request{}, fmt.Errorf("read SOCKS5 port: %w", err)
	}
	req.port = binary.BigEndian.Uint16(p[:])
	return req, nil
}

// reply is a SOCKS5 reply with an all-zero IPv4 bound address (Firefox
// ignores it).
func reply(code byte) []byte {
	return []byte{socksVersion, code, 0, atypIPv4, 0, 0, 0, 0, 0, 0}
}
