package domain

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestTokenHelpers: the pieces every Tokens adapter uses make and check
// tokens as AddToken and LookupToken do.
func TestTokenHelpers(t *testing.T) {
	secret, prefix, err := NewSecret()
	if err != nil || !strings.HasPrefix(secret, SecretPrefix) || len(secret) != 46 || prefix != secret[:8] {
		t.Fatalf("NewSecret %q %q %v", secret, prefix, err)
	}
	if h, want := HashSecret(secret), sha256.Sum256([]byte(secret)); len(h) != 32 || string(h) != string(want[:]) {
		t.Errorf("HashSecret %x", h)
	}
	nt, err := NewToken{Name: "x", Sources: []string{"HTTPS://A.example"}}.Check()
	if err != nil || len(nt.Sources) != 1 || nt.Sources[0] != "https://a.example" {
		t.Errorf("Check %+v %v", nt, err)
	}
	for _, bad := range []NewToken{{Name: ""}, {Name: "1"}, {Name: "x", TTL: -1}, {Name: "x", MaxWorkers: -1},
		{Name: "x", Rate: Rate{Count: 1}}, {Name: "x", Sources: []string{"ftp://x"}}} {
		if _, err := bad.Check(); !errors.Is(err, ErrInvalid) {
			t.Errorf("Check(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
	now := time.Now()
	if err := (Token{Name: "r", Revoked: now}).Status(now); !errors.Is(err, ErrRevoked) {
		t.Errorf("revoked: %v", err)
	}
	if err := (Token{Name: "e", Expires: now}).Status(now); !errors.Is(err, ErrExpired) {
		t.Errorf("expired: %v", err)
	}
	if err := (Token{Name: "ok", Expires: now.Add(time.Second)}).Status(now); err != nil {
		t.Errorf("valid: %v", err)
	}
}
