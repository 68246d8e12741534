package domain

import (
	"errors"
	"net/url"
	"slices"
	"testing"
)

// TestParsePatterns: server patterns keep "*", are normalized, and a bad
// one is ErrInvalid; MatchAny matches http(s) origins only.
func TestParsePatterns(t *testing.T) {
	got, err := ParsePatterns([]string{" * ", "HTTPS://Example.com/", "http://127.0.0.1:*"})
	if err != nil || !slices.Equal(got, []string{"*", "https://example.com", "http://127.0.0.1:*"}) {
		t.Fatalf("ParsePatterns = %q, %v", got, err)
	}
	if got, err := ParsePatterns(nil); got != nil || err != nil {
		t.Errorf("no patterns: %q, %v", got, err)
	}
	if _, err := ParsePatterns([]string{"ftp://x"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("ftp pattern: %v, want ErrInvalid", err)
	}
	for _, c := range []struct {
		ps   []string
		url  string
		want bool
	}{
		{[]string{"*"}, "https://anything.example/w.js", true},
		{[]string{"*"}, "ftp://anything.example/w.js", false},
		{[]string{"*"}, "http:///w.js", false},
		{[]string{"https://example.com"}, "https://example.com/w.js", true},
		{[]string{"https://example.com"}, "https://example.com:8443/w.js", false},
		{[]string{"http://127.0.0.1:*"}, "http://127.0.0.1:9000/", true},
		{nil, "https://example.com/", false},
	} {
		u, err := url.Parse(c.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := MatchAny(c.ps, u); got != c.want {
			t.Errorf("MatchAny(%q, %s) = %v, want %v", c.ps, c.url, got, c.want)
		}
	}
}
