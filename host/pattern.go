package host

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/geckohost/geckohost/domain"
)

// Origin patterns (--allow-source, --allow-origin, a token's --source list)
// use domain's syntax and matching (domain.ValidateSourcePattern,
// domain.MatchSource): scheme://host[:port|:*], host possibly "*.domain".
// The server flags also accept "*", which matches every http(s) URL.

// anyOrigin is the pattern that matches every http(s) origin.
const anyOrigin = "*"

// parsePatterns validates and normalizes server patterns.
func parsePatterns(ps []string) ([]string, error) {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		p = strings.TrimSpace(p)
		if p == anyOrigin {
			out = append(out, p)
			continue
		}
		n, err := domain.ValidateSourcePattern(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadPattern, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// matchAny reports whether any of patterns matches the origin of u, an
// absolute http(s) URL.
func matchAny(patterns []string, u *url.URL) bool {
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" || u.Host == "" {
		return false
	}
	raw := u.String()
	for _, p := range patterns {
		if p == anyOrigin || domain.MatchSource(p, raw) {
			return true
		}
	}
	return false
}

// originOf returns "scheme://host[:port]" of u, as one would type it in a
// pattern.
func originOf(u *url.URL) string {
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host)
}
