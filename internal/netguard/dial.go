package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// ErrRefused is wrapped by the *RefusedError a Dialer returns.
var ErrRefused = errors.New("address refused")

// RefusedError is a connection the Dialer's rule refused before any packet
// was sent.
type RefusedError struct {
	Host string     // the host as asked for (a name or an address)
	Addr netip.Addr // the first refused address
	Port uint16
	// Why says why, such as "loopback" (an address class) or a reason
	// of the rule.
	Why string
}

// Error implements error.
func (e *RefusedError) Error() string {
	if e.Host != "" && e.Host != e.Addr.String() {
		return fmt.Sprintf("%s resolves to %s, a %s address: refused", e.Host, e.Addr, e.Why)
	}
	return fmt.Sprintf("%s is a %s address: refused", e.Addr, e.Why)
}

// Unwrap returns ErrRefused.
func (e *RefusedError) Unwrap() error { return ErrRefused }

// Resolver looks host names up; *net.Resolver satisfies it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Rule decides whether an address may be dialed for host: it returns "" to
// allow, else the reason (such as an address class).
type Rule func(host string, a netip.AddrPort) string

// PublicOnly is the Rule that allows public addresses only.
func PublicOnly(_ string, a netip.AddrPort) string {
	if c := Class(a.Addr()); c != ClassPublic {
		return c
	}
	return ""
}

// Dialer dials TCP connections to addresses a Rule allowed. The zero value
// is not usable: Rule is required.
type Dialer struct {
	// Rule decides each resolved address; required.
	Rule Rule
	// Resolver looks names up; nil means net.DefaultResolver.
	Resolver Resolver
	// Timeout bounds one connection attempt; 0 means 10 s.
	Timeout time.Duration
	// Dial connects; nil means a net.Dialer. Tests replace it.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Resolve returns the addresses of host (an IP literal, possibly in
// brackets, is returned as is), looked up once with r (nil:
// net.DefaultResolver).
func Resolve(ctx context.Context, r Resolver, host string) ([]netip.Addr, error) {
	h := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if a, err := netip.ParseAddr(h); err == nil {
		return []netip.Addr{a.WithZone("")}, nil
	}
	if r == nil {
		r = net.DefaultResolver
	}
	as, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	if len(as) == 0 {
		return nil, fmt.Errorf("resolve %s: no address", host)
	}
	return as, nil
}

// Check resolves host once and returns the addresses r allows with port,
// or a *RefusedError naming the first refused one when none is allowed.
func Check(ctx context.Context, res Resolver, rule Rule, host string, port uint16) ([]netip.AddrPort, error) {
	as, err := Resolve(ctx, res, host)
	if err != nil {
		return nil, err
	}
	var ok []netip.AddrPort
	var refused *RefusedError
	for _, a := range as {
		ap := netip.AddrPortFrom(a.Unmap().WithZone(""), port)
		if why := rule(host, ap); why != "" {
			if refused == nil {
				refused = &RefusedError{Host: strings.Trim(host, "[]"), Addr: ap.Addr(), Port: port, Why: why}
			}
			continue
		}
		ok = append(ok, ap)
	}
	if len(ok) == 0 {
		return nil, refused
	}
	return ok, nil
}

// DialContext resolves addr's host once, checks every address with the
// Rule and connects to the allowed ones in turn (never to a name, so the
// address connected to is one that was checked). When no address is
// allowed it returns a *RefusedError without connecting anywhere.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("dial %s: bad port: %w", addr, err)
	}
	aps, err := Check(ctx, d.Resolver, d.Rule, host, uint16(port))
	if err != nil {
		return nil, err
	}
	return d.DialChecked(ctx, network, aps)
}

// DialChecked connects to the first of aps (addresses already checked)
// that answers.
func (d *Dialer) DialChecked(ctx context.Context, network string, aps []netip.AddrPort) (net.Conn, error) {
	dial := d.Dial
	if dial == nil {
		timeout := d.Timeout
		if timeout <= 0 {
			timeout = 10 * time.Second
		}
		nd := &net.Dialer{Timeout: timeout}
		dial = nd.DialContext
	}
	switch network {
	case "tcp4", "tcp6":
		network = "tcp"
	}
	var errs []error
	for _, ap := range aps {
		c, err := dial(ctx, network, ap.String())
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}
