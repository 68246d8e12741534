package domain

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// ValidateSourcePattern checks an origin pattern and returns it normalized
// (lower case, no trailing slash). A pattern is scheme://host[:port], where
// scheme is http or https; host is a DNS name, an IPv4 address, a bracketed
// IPv6 address, or "*." followed by a DNS name (any subdomain, at any
// depth, but not the name itself); port is a number or "*" (any port; no
// port means the scheme's default). Examples: "https://example.com",
// "http://127.0.0.1:*", "https://*.example.com". Errors wrap ErrInvalid.
func ValidateSourcePattern(pattern string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("source pattern %q: %s (want scheme://host[:port], e.g. https://example.com, http://127.0.0.1:* or https://*.example.com): %w",
			pattern, why, ErrInvalid)
	}
	p := strings.ToLower(strings.TrimSuffix(pattern, "/"))
	scheme, rest, ok := strings.Cut(p, "://")
	if !ok {
		return bad("no scheme")
	}
	if scheme != "http" && scheme != "https" {
		return bad("scheme must be http or https")
	}
	if rest == "" {
		return bad("no host")
	}
	if strings.ContainsAny(rest, "/?#@\\ \t") {
		return bad("only scheme, host and port are allowed (no path, query, user or spaces)")
	}
	host, port, err := splitHostPort(rest)
	if err != nil {
		return bad(err.Error())
	}
	if port != "" && port != "*" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '0' {
			return bad("port must be 1-65535 or *")
		}
	}
	switch {
	case strings.HasPrefix(host, "["):
		ip := net.ParseIP(host[1 : len(host)-1])
		if ip == nil || ip.To4() != nil {
			return bad("bad IPv6 address")
		}
	case strings.HasPrefix(host, "*."):
		if !validDNSName(host[2:]) || net.ParseIP(host[2:]) != nil {
			return bad("a wildcard must be followed by a domain name")
		}
	case net.ParseIP(host) != nil:
	case !validDNSName(host):
		return bad("bad host name")
	}
	return p, nil
}

// splitHostPort splits "host", "host:port", "[v6]" or "[v6]:port".
func splitHostPort(s string) (host, port string, err error) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", fmt.Errorf("unclosed [ in IPv6 address")
		}
		host, rest := s[:end+1], s[end+1:]
		if rest == "" {
			return host, "", nil
		}
		if rest[0] != ':' || len(rest) == 1 {
			return "", "", fmt.Errorf("bad port")
		}
		return host, rest[1:], nil
	}
	host, port, found := strings.Cut(s, ":")
	if found && port == "" {
		return "", "", fmt.Errorf("empty port")
	}
	if strings.Contains(port, ":") {
		return "", "", fmt.Errorf("IPv6 addresses need brackets")
	}
	return host, port, nil
}

// validDNSName reports whether s is a plausible DNS host name: dot-separated
// labels of 1–63 letters, digits and hyphens, not starting or ending with a
// hyphen.
func validDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range []byte(l) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// MatchSource reports whether the URL rawURL (a worker source or an Origin
// header value) is within the origin pattern (see ValidateSourcePattern). A
// malformed pattern or URL matches nothing.
func MatchSource(pattern, rawURL string) bool {
	p, err := ValidateSourcePattern(pattern)
	if err != nil {
		return false
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || u.User != nil {
		return false
	}
	pScheme, rest, _ := strings.Cut(p, "://")
	pHost, pPort, _ := splitHostPort(rest)
	if strings.ToLower(u.Scheme) != pScheme {
		return false
	}
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[pScheme]
	}
	switch pPort {
	case "*":
	case "":
		if port != map[string]string{"http": "80", "https": "443"}[pScheme] {
			return false
		}
	default:
		if port != pPort {
			return false
		}
	}
	if suffix, ok := strings.CutPrefix(pHost, "*"); ok {
		return strings.HasSuffix(host, suffix) && len(host) > len(suffix)
	}
	if strings.HasPrefix(pHost, "[") {
		pip, uip := net.ParseIP(pHost[1:len(pHost)-1]), net.ParseIP(strings.Trim(host, "[]"))
		return pip != nil && pip.Equal(uip)
	}
	return host == pHost
}

// AnyOrigin is the server pattern (serve --allow-source, --allow-origin) that
// matches every http(s) origin. A token's --source list and the workers'
// egress patterns do not take it.
const AnyOrigin = "*"

// ParsePatterns validates and normalizes server patterns: each is an origin
// pattern (ValidateSourcePattern) or AnyOrigin, spaces around it trimmed. It
// returns nil for no patterns; errors wrap ErrInvalid.
func ParsePatterns(ps []string) ([]string, error) {
	var out []string
	for _, p := range ps {
		p = strings.TrimSpace(p)
		if p == AnyOrigin {
			out = append(out, p)
			continue
		}
		n, err := ValidateSourcePattern(p)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// MatchAny reports whether any of patterns (ParsePatterns' or a token's
// Sources) matches the origin of u, an absolute http(s) URL.
func MatchAny(patterns []string, u *url.URL) bool {
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" || u.Host == "" {
		return false
	}
	raw := u.String()
	for _, p := range patterns {
		if p == AnyOrigin || MatchSource(p, raw) {
			return true
		}
	}
	return false
}
