package egress

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/geckohost/geckohost/domain"
)

// Mode is the worker egress mode (serve --worker-egress).
type Mode string

// The modes.
const (
	// Public (the default): public addresses (see netguard.Class), and
	// the targets Policy.Allow, Policy.ServerOrigins and the workers'
	// own source origins name (a source origin whatever its address only
	// when its host is an IP address or localhost: a DNS name could be
	// re-pointed at a local address after the source was fetched).
	Public Mode = "public"
	// None: only the targets Policy.Allow names.
	None Mode = "none"
	// All: any address, except geckohost's and Firefox's own internal
	// listeners, which are never reachable.
	All Mode = "all"
)

// ErrBadPolicy is wrapped by New's error for a bad mode or pattern.
var ErrBadPolicy = errors.New("bad egress policy")

// ParseMode parses "public", "none" or "all" ("" is Public).
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case "", Public:
		return Public, nil
	case None, All:
		return m, nil
	}
	return "", fmt.Errorf("%w: mode %q (want public, none or all)", ErrBadPolicy, s)
}

// Policy says where workers may connect.
type Policy struct {
	// Mode is the base rule; "" means Public.
	Mode Mode
	// Allow are origin patterns (the syntax of --allow-source:
	// scheme://host[:port|:*], host possibly *.domain) of targets always
	// allowed, whatever their address (--worker-allow). The scheme gives
	// the default port only: a worker's requests to the pattern's host and
	// port are allowed whatever their protocol (http, WebSocket, ...).
	Allow []string
	// ServerOrigins are the geckohost server's own origins (the same
	// syntax, normally exact), allowed in Public mode.
	ServerOrigins []string
}

// Validate checks p and returns it normalized (the mode set, patterns
// lower case); errors wrap ErrBadPolicy.
func (p Policy) Validate() (Policy, error) {
	m, err := ParseMode(string(p.Mode))
	if err != nil {
		return Policy{}, err
	}
	out := Policy{Mode: m}
	for _, list := range []struct {
		in  []string
		out *[]string
	}{{p.Allow, &out.Allow}, {p.ServerOrigins, &out.ServerOrigins}} {
		for _, s := range list.in {
			if strings.TrimSpace(s) == "*" {
				return Policy{}, fmt.Errorf("%w: pattern \"*\" (use mode all)", ErrBadPolicy)
			}
			n, err := domain.ValidateSourcePattern(strings.TrimSpace(s))
			if err != nil {
				return Policy{}, fmt.Errorf("%w: %w", ErrBadPolicy, err)
			}
			*list.out = append(*list.out, n)
		}
	}
	return out, nil
}

// matchTarget reports whether a pattern of ps names host:port.
func matchTarget(ps []string, host string, port uint16) bool {
	h := host
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	hp := h + ":" + strconv.Itoa(int(port))
	for _, p := range ps {
		if domain.MatchSource(p, "http://"+hp) || domain.MatchSource(p, "https://"+hp) {
			return true
		}
	}
	return false
}

// targetKey is the canonical "host:port" of a target: a lower-case name
// or a canonical address.
func targetKey(host string, port uint16) string {
	h := strings.ToLower(strings.Trim(host, "[]"))
	if a, err := netip.ParseAddr(h); err == nil {
		h = a.Unmap().WithZone("").String()
	}
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	return h + ":" + strconv.Itoa(int(port))
}

// OriginKey returns the target key ("host:port") of an http(s) URL's
// origin, for Identity.AllowOrigin; ok is false for any other URL.
func OriginKey(rawURL string) (string, bool) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	scheme = strings.ToLower(scheme)
	if !ok || (scheme != "http" && scheme != "https") {
		return "", false
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if strings.Contains(rest, "@") || rest == "" {
		return "", false
	}
	host, portStr := rest, ""
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.HasSuffix(rest, "]") {
		host, portStr = rest[:i], rest[i+1:]
	}
	port := uint16(80)
	if scheme == "https" {
		port = 443
	}
	if portStr != "" {
		n, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil || n == 0 {
			return "", false
		}
		port = uint16(n)
	}
	if host == "" {
		return "", false
	}
	return targetKey(host, port), true
}
