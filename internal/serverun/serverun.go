// Package serverun is the record of a serve run and the reaping of dead ones:
// each `geckohost serve` is a run (store.Run) with a heartbeat, and every
// session record names its run, so that the sessions of a serve that died
// (kill -9, a crash, power loss) can be told from live ones and ended
// (engine.EndHostRestart). serve starts its Run; `geckohost sessions` ends
// what dead runs left open, or shows it ended when the database takes no
// writes.
package serverun

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/internal/proc"
	"github.com/geckohost/geckohost/store"
)

const (
	// HeartbeatEvery is how often a serve run records that it is alive
	// (Start's default).
	HeartbeatEvery = 5 * time.Second
	// staleRunAfter: a run of another machine or PID namespace whose last
	// heartbeat is older than this is taken for dead.
	staleRunAfter = time.Minute
	// reapEvery is how often a serve looks for runs that died meanwhile.
	reapEvery = time.Minute
	// runWriteTimeout bounds one write of the run record.
	runWriteTimeout = 5 * time.Second
	// runLogEvery is the most often failing heartbeats are logged.
	runLogEvery = time.Minute
)

// Run is this serve process's run: its id, and the goroutine that writes
// its heartbeat and ends the sessions of runs that die meanwhile.
type Run struct {
	db     *store.DB
	id     string
	log    *slog.Logger
	every  time.Duration // heartbeat period
	cancel context.CancelFunc
	done   chan struct{}
}

// Start records a new run for this process, ends what dead runs left open
// (before any hello is served) and starts the heartbeat, every every (0:
// HeartbeatEvery). Close ends the run.
func Start(ctx context.Context, db *store.DB, log *slog.Logger, every time.Duration) (*Run, error) {
	if every <= 0 {
		every = HeartbeatEvery
	}
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	id := hex.EncodeToString(b[:])
	hostname, _ := os.Hostname()
	if err := db.StartRun(ctx, store.Run{ID: id, Process: proc.Self(), Hostname: hostname}); err != nil {
		return nil, fmt.Errorf("record this serve run: %w", err)
	}
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &Run{db: db, id: id, log: log, every: every, cancel: cancel, done: make(chan struct{})}
	r.endDead(ctx)
	go r.loop(lctx)
	return r, nil
}

// ID is the run's id, which the session records name (domain.Session.RunID).
func (r *Run) ID() string { return r.id }

// Dead reports whether r's process is gone. On this machine, in this
// boot and PID namespace, its pid and start time tell for sure (a serve
// that is stopped or hung but exists is alive, whatever its heartbeat);
// elsewhere a heartbeat older than staleRunAfter does.
func Dead(r store.Run, now time.Time) bool {
	switch proc.Check(r.Process) {
	case proc.Gone:
		return true
	case proc.Running:
		return false
	}
	return now.Sub(r.Heartbeat) > staleRunAfter
}

// EndDead ends the dead runs and their sessions (host-restart), and the
// sessions left without a run; self is the caller's own run ("" for none).
func EndDead(ctx context.Context, db *store.DB, self string) (store.DeadRuns, error) {
	now := time.Now()
	return db.EndDeadRuns(ctx, self, func(r store.Run) bool { return Dead(r, now) })
}

// endDead ends what dead runs left open and logs it.
func (r *Run) endDead(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, runWriteTimeout)
	defer cancel()
	got, err := EndDead(ctx, r.db, r.id)
	if err != nil {
		r.log.Error("end the sessions of dead serve runs", "err", err)
		return
	}
	for _, e := range got.Runs {
		r.log.Info("ended the sessions of a serve run that died", "run", e.Run.ID, "pid", e.Run.Process.PID,
			"host", e.Run.Hostname, "last_heartbeat", e.Run.Heartbeat, "sessions", e.Sessions, "end", engine.EndHostRestart)
	}
	if got.Orphans > 0 {
		r.log.Info("ended sessions left without a live serve run", "sessions", got.Orphans, "end", engine.EndHostRestart)
	}
}

// loop writes the heartbeat every r.every and ends dead runs every
// reapEvery, until cancelled.
func (r *Run) loop(ctx context.Context) {
	defer close(r.done)
	beat := time.NewTicker(r.every)
	defer beat.Stop()
	reap := time.NewTicker(reapEvery)
	defer reap.Stop()
	var failing time.Time // since when heartbeats fail; zero: they don't
	var lastLog time.Time
	failed := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-reap.C:
			r.endDead(ctx)
		case <-beat.C:
			wctx, cancel := context.WithTimeout(ctx, runWriteTimeout)
			err := r.db.Heartbeat(wctx, r.id)
			cancel()
			now := time.Now()
			switch {
			case err == nil && !failing.IsZero():
				r.log.Info("serve run heartbeat written again", "failing_for", now.Sub(failing).Round(time.Second))
				failing = time.Time{}
			case err == nil, ctx.Err() != nil:
			case failing.IsZero():
				failing, lastLog, failed = now, now, 0
				r.log.Error("serve run heartbeat not written; serving goes on", "err", err)
			default:
				failed++
				if now.Sub(lastLog) >= runLogEvery {
					r.log.Error("serve run heartbeats not written", "failed", failed, "failing_for", now.Sub(failing).Round(time.Second), "err", err)
					lastLog, failed = now, 0
				}
			}
		}
	}
}

// Close stops the heartbeat and records the clean end of the run.
func (r *Run) Close(ctx context.Context) error {
	r.cancel()
	<-r.done
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), runWriteTimeout)
	defer cancel()
	if err := r.db.EndRun(ctx, r.id); err != nil {
		return fmt.Errorf("record the end of this serve run: %w", err)
	}
	return nil
}

// ShowEnded returns ss with the sessions whose serve run is gone shown as
// ended (host-restart, at the run's last heartbeat or end), as EndDead would
// record them; for a database that takes no writes. It changes ss in place.
func ShowEnded(ctx context.Context, db *store.DB, ss []domain.Session) []domain.Session {
	open, err := db.OpenRuns(ctx)
	if err != nil {
		return ss
	}
	byID := map[string]store.Run{}
	for _, r := range open {
		byID[r.ID] = r
	}
	now := time.Now()
	for i, s := range ss {
		if !s.Ended.IsZero() {
			continue
		}
		at := s.Created
		if r, ok := byID[s.RunID]; ok {
			if !Dead(r, now) {
				continue
			}
			at = r.Heartbeat
		} else if r, err := db.GetRun(ctx, s.RunID); err == nil {
			at = r.Ended
		}
		for _, t := range []time.Time{s.Created, s.Answered, s.Connected} {
			if t.After(at) {
				at = t
			}
		}
		ss[i].State, ss[i].EndReason, ss[i].Ended = domain.StateEnded, string(engine.EndHostRestart), at
	}
	return ss
}
