package domain

import "testing"

// FuzzSourcePattern checks that pattern validation and matching never panic,
// that normalization is idempotent, and that a valid pattern matches its own
// origin.
func FuzzSourcePattern(f *testing.F) {
	for _, s := range []string{"https://example.com", "http://127.0.0.1:*", "https://*.example.com", "http://[::1]:8080",
		"HTTPS://EXAMPLE.com/", "example.com", "http://[::1", "https://*", "http://a:0", ""} {
		f.Add(s, "https://example.com/w.js")
	}
	f.Fuzz(func(t *testing.T, pattern, rawURL string) {
		_ = MatchSource(pattern, rawURL)
		n, err := ValidateSourcePattern(pattern)
		if err != nil {
			return
		}
		n2, err := ValidateSourcePattern(n)
		if err != nil || n2 != n {
			t.Fatalf("normalized %q to %q, which re-validates to %q, %v", pattern, n, n2, err)
		}
		own := n
		if len(own) > 2 && own[len(own)-2:] == ":*" {
			own = own[:len(own)-2] + ":1"
		}
		if i := len("https://"); len(own) > i {
			own = replaceWildcard(own)
		}
		if !MatchSource(n, own+"/w.js") {
			t.Fatalf("pattern %q does not match %q", n, own+"/w.js")
		}
	})
}

// replaceWildcard turns "scheme://*.x" into "scheme://a.x".
func replaceWildcard(s string) string {
	for i := 0; i+3 < len(s); i++ {
		if s[i:i+3] == "//*" {
			return s[:i+2] + "a" + s[i+3:]
		}
	}
	return s
}
