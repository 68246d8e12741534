package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/geckohost/geckohost/domain"
)

// TestOpenMakesFilePrivate: a database file (and its -wal) that exists
// with mode 0644 is 0600 once opened.
func TestOpenMakesFilePrivate(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "geckohost.db")
	db := openTest(t, p)
	if err := db.SaveSession(testCtx(t), domain.Session{WorkerID: "w"}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{p, p + "-wal"} {
		if err := os.Chmod(f, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db2 := openTest(t, p)
	_ = db2
	for _, f := range []string{p, p + "-wal"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s: mode %04o after open, want 0600", filepath.Base(f), got)
		}
	}
}

func TestPruneSessions(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "db"))
	ctx := testCtx(t)
	now := time.Now()
	day := 24 * time.Hour
	for _, s := range []domain.Session{
		{WorkerID: "old-ended", Created: now.Add(-40 * day), Ended: now.Add(-40 * day)},
		{WorkerID: "old-started-ended-recently", Created: now.Add(-40 * day), Ended: now.Add(-time.Hour)},
		{WorkerID: "old-never-ended", Created: now.Add(-40 * day)},
		{WorkerID: "new", Created: now.Add(-time.Hour), EgressRefused: 3},
	} {
		if err := db.SaveSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	n, err := db.PruneSessions(ctx, now.Add(-30*day))
	if err != nil || n != 2 {
		t.Fatalf("PruneSessions = %d, %v; want 2", n, err)
	}
	ss, err := db.ListSessions(ctx, domain.SessionFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range ss {
		ids = append(ids, s.WorkerID)
		if s.WorkerID == "new" && s.EgressRefused != 3 {
			t.Errorf("egress_refused %d, want 3", s.EgressRefused)
		}
	}
	if strings.Join(ids, ",") != "new,old-started-ended-recently" {
		t.Fatalf("left %v", ids)
	}
	// Many rows: pruned in batches.
	for i := range pruneBatch + 10 {
		if err := db.SaveSession(ctx, domain.Session{WorkerID: "b" + string(rune('a'+i%26)) + time.Duration(i).String(), Created: now.Add(-40 * day)}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := db.PruneSessions(ctx, now.Add(-30*day)); err != nil || n != pruneBatch+10 {
		t.Fatalf("PruneSessions = %d, %v; want %d", n, err, pruneBatch+10)
	}
}
