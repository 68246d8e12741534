package store

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSessionNodeID: the node id round-trips (migration 4).
func TestSessionNodeID(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "db"))
	ctx := testCtx(t)
	s := Session{WorkerID: "w1", TokenName: "t", State: StateEnded, Created: time.UnixMilli(1000), NodeID: "node-b:8765"}
	if err := db.SaveSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetSession(ctx, "w1")
	if err != nil || got.NodeID != "node-b:8765" {
		t.Fatalf("got %+v, %v", got, err)
	}
	list, err := db.ListSessions(ctx, SessionFilter{})
	if err != nil || len(list) != 1 || list[0].NodeID != "node-b:8765" {
		t.Fatalf("list %+v, %v", list, err)
	}
}

// TestTokenHelpers: the exported pieces other token stores use make and
// check tokens as AddToken and LookupToken do.
func TestTokenHelpers(t *testing.T) {
	secret, prefix, err := NewSecret()
	if err != nil || !strings.HasPrefix(secret, SecretPrefix) || len(secret) != 46 || prefix != secret[:8] {
		t.Fatalf("NewSecret %q %q %v", secret, prefix, err)
	}
	if h := HashSecret(secret); len(h) != 32 || string(h) != string(hashSecret(secret)) {
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
