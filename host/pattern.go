package host

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/geckohost/geckohost/domain"
)

// Origin patterns (--allow-source, --allow-origin, a token's --source list)
// are domain's (domain.ParsePatterns, domain.MatchAny):
// scheme://host[:port|:*], host possibly "*.domain"; the server flags also
// accept "*" (domain.AnyOrigin), which matches every http(s) URL.

// anyOrigin is the pattern that matches every http(s) origin.
const anyOrigin = domain.AnyOrigin

// parsePatterns validates and normalizes server patterns.
func parsePatterns(ps []string) ([]string, error) {
	out, err := domain.ParsePatterns(ps)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPattern, err)
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// matchAny reports whether any of patterns matches the origin of u, an
// absolute http(s) URL.
func matchAny(patterns []string, u *url.URL) bool { return domain.MatchAny(patterns, u) }

// originOf returns "scheme://host[:port]" of u, as one would type it in a
// pattern.
func originOf(u *url.URL) string {
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host)
}
