package store

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/internal/leaktest"
	"github.com/geckohost/geckohost/internal/proc"
)

func TestRuns(t *testing.T) {
	leaktest.Check(t)
	ctx := testCtx(t)
	db := openTest(t, filepath.Join(t.TempDir(), "db"))
	clk := &fakeClock{t: time.UnixMilli(1_700_000_000_000).UTC()}
	db.now = clk.now

	me := proc.Self()
	if err := db.StartRun(ctx, Run{ID: "r1", Process: me, Hostname: "box"}); err != nil {
		t.Fatal(err)
	}
	if err := db.StartRun(ctx, Run{ID: "r1"}); err == nil {
		t.Error("a second run with the same id was recorded")
	}
	if err := db.StartRun(ctx, Run{}); !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("empty id: %v", err)
	}
	clk.add(5 * time.Second)
	if err := db.Heartbeat(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	if err := db.Heartbeat(ctx, "nope"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("heartbeat of an unknown run: %v", err)
	}
	r, err := db.GetRun(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Process != me || r.Hostname != "box" || !r.Started.Equal(clk.t.Add(-5*time.Second)) || !r.Heartbeat.Equal(clk.t) ||
		!r.Ended.IsZero() || r.Stop != "" {
		t.Errorf("run %+v", r)
	}
	if open, err := db.OpenRuns(ctx); err != nil || len(open) != 1 || open[0].ID != "r1" {
		t.Errorf("open runs %+v, %v", open, err)
	}
	clk.add(time.Second)
	if err := db.EndRun(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	if r, err := db.GetRun(ctx, "r1"); err != nil || !r.Ended.Equal(clk.t) || r.Stop != RunStopped {
		t.Errorf("ended run %+v, %v", r, err)
	}
	if open, err := db.OpenRuns(ctx); err != nil || len(open) != 0 {
		t.Errorf("open runs after EndRun %+v, %v", open, err)
	}
	if _, err := db.GetRun(ctx, "nope"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("GetRun of an unknown run: %v", err)
	}
}

// TestEndDeadRuns: the sessions of dead runs end "host-restart" at the
// run's last heartbeat (never before their own last event); live runs and
// the caller's own are untouched; sessions without an open run end too.
func TestEndDeadRuns(t *testing.T) {
	leaktest.Check(t)
	ctx := testCtx(t)
	db := openTest(t, filepath.Join(t.TempDir(), "db"))
	base := time.UnixMilli(1_700_000_000_000).UTC()
	clk := &fakeClock{t: base}
	db.now = clk.now
	for _, r := range []Run{{ID: "dead", Process: proc.ID{PID: 11}}, {ID: "live", Process: proc.ID{PID: 12}}, {ID: "self"}, {ID: "stopped"}} {
		if err := db.StartRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	clk.add(10 * time.Second)
	for _, id := range []string{"dead", "live", "self"} {
		if err := db.Heartbeat(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	hb := clk.t // the dead run's last heartbeat
	if err := db.EndRun(ctx, "stopped"); err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) time.Time { return base.Add(d) }
	for _, s := range []domain.Session{
		{WorkerID: "d-connected", RunID: "dead", State: domain.StateConnected, Created: at(time.Second), Answered: at(time.Second), Connected: at(2 * time.Second)},
		// Created after the last heartbeat: ended at its own last event.
		{WorkerID: "d-late", RunID: "dead", State: domain.StateAnswered, Created: at(12 * time.Second), Answered: at(13 * time.Second)},
		{WorkerID: "d-ended", RunID: "dead", State: domain.StateEnded, Created: at(time.Second), Ended: at(3 * time.Second), EndReason: "worker-closed"},
		{WorkerID: "l-connected", RunID: "live", State: domain.StateConnected, Created: at(time.Second), Connected: at(2 * time.Second)},
		{WorkerID: "s-negotiating", RunID: "self", State: domain.StateNegotiating, Created: at(time.Second)},
		{WorkerID: "legacy", State: domain.StateConnected, Created: at(time.Second), Connected: at(4 * time.Second)},
		{WorkerID: "stopped-left", RunID: "stopped", State: domain.StateConnected, Created: at(time.Second), Connected: at(2 * time.Second)},
		{WorkerID: "unknown-run", RunID: "gone", State: domain.StateNegotiating, Created: at(5 * time.Second)},
	} {
		if err := db.SaveSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	var asked []string
	got, err := db.EndDeadRuns(ctx, "self", func(r Run) bool {
		asked = append(asked, r.ID)
		return r.Process.PID == 11
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(asked) != 2 || asked[0] != "dead" || asked[1] != "live" {
		t.Errorf("dead asked about %v, want the open runs but self", asked)
	}
	if len(got.Runs) != 1 || got.Runs[0].Run.ID != "dead" || got.Runs[0].Sessions != 2 || got.Orphans != 3 || got.Sessions() != 5 ||
		got.Runs[0].Run.Stop != RunDied || !got.Runs[0].Run.Ended.Equal(hb) {
		t.Errorf("EndDeadRuns = %+v", got)
	}
	for id, want := range map[string]struct {
		state, end string
		ended      time.Time
	}{
		"d-connected":   {domain.StateEnded, "host-restart", hb},
		"d-late":        {domain.StateEnded, "host-restart", at(13 * time.Second)},
		"d-ended":       {domain.StateEnded, "worker-closed", at(3 * time.Second)},
		"l-connected":   {domain.StateConnected, "", time.Time{}},
		"s-negotiating": {domain.StateNegotiating, "", time.Time{}},
		"legacy":        {domain.StateEnded, "host-restart", at(4 * time.Second)},
		"stopped-left":  {domain.StateEnded, "host-restart", hb},
		"unknown-run":   {domain.StateEnded, "host-restart", at(5 * time.Second)},
	} {
		s, err := db.GetSession(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if s.State != want.state || s.EndReason != want.end || !s.Ended.Equal(want.ended) {
			t.Errorf("%s: state %q end %q at %v; want %q %q at %v", id, s.State, s.EndReason, s.Ended, want.state, want.end, want.ended)
		}
	}
	if r, err := db.GetRun(ctx, "dead"); err != nil || r.Stop != RunDied || !r.Ended.Equal(hb) {
		t.Errorf("dead run %+v, %v", r, err)
	}
	// Nothing left to do the second time.
	if again, err := db.EndDeadRuns(ctx, "self", func(Run) bool { return true }); err != nil || again.Sessions() != 1 || len(again.Runs) != 1 || again.Runs[0].Run.ID != "live" {
		t.Errorf("second EndDeadRuns (live now dead) = %+v, %v", again, err)
	}
	// A run taken for dead that beats again is open again.
	if err := db.Heartbeat(ctx, "live"); err != nil {
		t.Fatal(err)
	}
	if r, err := db.GetRun(ctx, "live"); err != nil || !r.Ended.IsZero() || r.Stop != "" {
		t.Errorf("run after a late heartbeat %+v, %v", r, err)
	}
}
