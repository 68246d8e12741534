package core

import (
	"errors"
	"testing"
)

var errNoBrowser = errors.New("no such browser")

// TestFindBinary: an explicit path must exist; otherwise the first
// candidate found wins, and none found wraps the sentinel.
func TestFindBinary(t *testing.T) {
	if p, err := FindBinary("sh", "", []string{"/nonexistent/sh", "sh"}, errNoBrowser); err != nil || p == "" {
		t.Errorf("FindBinary(candidates) = %q, %v", p, err)
	}
	if _, err := FindBinary("sh", "/nonexistent/sh", []string{"sh"}, errNoBrowser); !errors.Is(err, errNoBrowser) {
		t.Errorf("FindBinary(missing path) = %v, want %v", err, errNoBrowser)
	}
	if _, err := FindBinary("sh", "", []string{"/nonexistent/sh"}, errNoBrowser); !errors.Is(err, errNoBrowser) {
		t.Errorf("FindBinary(no candidate) = %v, want %v", err, errNoBrowser)
	}
}

// TestURLPort reads the port of a protocol URL.
func TestURLPort(t *testing.T) {
	for _, c := range []struct {
		u    string
		port uint16
		ok   bool
	}{
		{"ws://127.0.0.1:9222/devtools/browser/x", 9222, true},
		{"ws://127.0.0.1:40123/session", 40123, true},
		{"ws://127.0.0.1/session", 0, false},
		{"::", 0, false},
	} {
		if p, ok := URLPort(c.u); p != c.port || ok != c.ok {
			t.Errorf("URLPort(%q) = %d %v, want %d %v", c.u, p, ok, c.port, c.ok)
		}
	}
}
