package store

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/geckohost/geckohost/domain"
)

// TestSessionNodeID: the node id round-trips (migration 4).
func TestSessionNodeID(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "db"))
	ctx := testCtx(t)
	s := domain.Session{WorkerID: "w1", TokenName: "t", State: domain.StateEnded, Created: time.UnixMilli(1000), NodeID: "node-b:8765"}
	if err := db.SaveSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetSession(ctx, "w1")
	if err != nil || got.NodeID != "node-b:8765" {
		t.Fatalf("got %+v, %v", got, err)
	}
	list, err := db.ListSessions(ctx, domain.SessionFilter{})
	if err != nil || len(list) != 1 || list[0].NodeID != "node-b:8765" {
		t.Fatalf("list %+v, %v", list, err)
	}
}
