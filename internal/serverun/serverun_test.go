package serverun

import (
	"context"
	"log/slog"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/internal/leaktest"
	"github.com/geckohost/geckohost/internal/proc"
	"github.com/geckohost/geckohost/internal/syncbuf"
	"github.com/geckohost/geckohost/store"
)

// goneProcess returns the identity of a process that ran and exited.
func goneProcess(t *testing.T) proc.ID {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	id := proc.Self()
	id.PID = cmd.Process.Pid
	return id
}

func TestRunDead(t *testing.T) {
	now := time.Now()
	elsewhere := proc.ID{PID: 1, Start: 1, Boot: "another-machine", NS: "pid:[1]"}
	for _, c := range []struct {
		name string
		r    store.Run
		want bool
	}{
		{"this process, fresh", store.Run{Process: proc.Self(), Heartbeat: now}, false},
		// A serve that is stopped (SIGSTOP) or cannot write its heartbeat
		// is alive as long as its process is.
		{"this process, stale heartbeat", store.Run{Process: proc.Self(), Heartbeat: now.Add(-time.Hour)}, false},
		{"exited process, fresh heartbeat", store.Run{Process: goneProcess(t), Heartbeat: now}, true},
		{"another machine, fresh", store.Run{Process: elsewhere, Heartbeat: now.Add(-10 * time.Second)}, false},
		{"another machine, stale", store.Run{Process: elsewhere, Heartbeat: now.Add(-2 * time.Minute)}, true},
	} {
		if got := Dead(c.r, now); got != c.want {
			t.Errorf("%s: Dead = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestStart: a new run ends the sessions of dead runs before it returns
// (and never those of live ones), beats, and records its clean end.
func TestStart(t *testing.T) {
	leaktest.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	// Another live serve on the same database (this process, as far as the
	// check can tell) and one that was killed.
	for _, r := range []store.Run{{ID: "other-live", Process: proc.Self()}, {ID: "killed", Process: goneProcess(t)}} {
		if err := db.StartRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []domain.Session{
		{WorkerID: "live", RunID: "other-live", State: domain.StateConnected},
		{WorkerID: "lost", RunID: "killed", State: domain.StateAnswered},
	} {
		if err := db.SaveSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	var logs syncbuf.Buffer
	run, err := Start(ctx, db, slog.New(slog.NewTextHandler(&logs, nil)), 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := db.GetSession(ctx, "lost"); err != nil || s.State != domain.StateEnded || s.EndReason != "host-restart" {
		t.Errorf("session of the killed run: %+v, %v", s, err)
	}
	if s, err := db.GetSession(ctx, "live"); err != nil || s.State != domain.StateConnected || !s.Ended.IsZero() {
		t.Errorf("session of the live run: %+v, %v", s, err)
	}
	first, err := db.GetRun(ctx, run.ID())
	if err != nil || first.Process != proc.Self() || !first.Ended.IsZero() {
		t.Fatalf("run record %+v, %v", first, err)
	}
	for {
		r, err := db.GetRun(ctx, run.ID())
		if err != nil {
			t.Fatal(err)
		}
		if r.Heartbeat.After(first.Heartbeat) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("no heartbeat")
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := run.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if r, err := db.GetRun(ctx, run.ID()); err != nil || r.Stop != store.RunStopped || r.Ended.IsZero() {
		t.Errorf("run after close %+v, %v", r, err)
	}
	if r, err := db.GetRun(ctx, "killed"); err != nil || r.Stop != store.RunDied {
		t.Errorf("killed run %+v, %v", r, err)
	}
	t.Logf("logs:\n%s", logs.String())
}
