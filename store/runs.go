package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/internal/proc"
)

// Run stops, as recorded in Run.Stop.
const (
	// RunStopped: the run stopped cleanly (EndRun).
	RunStopped = "stopped"
	// RunDied: the run's process died without stopping; a later process
	// noticed it (EndDeadRuns).
	RunDied = "died"
)

// Run is the record of one `geckohost serve` process: which process it is,
// when it started and when it last showed it was alive. Sessions name their
// run (Session.RunID), so that the sessions of a run that died can be ended.
type Run struct {
	// ID identifies the run; required.
	ID string
	// Process identifies the serve process (pid and start time on this
	// machine, boot and PID namespace).
	Process proc.ID
	// Hostname is the machine's name, for people reading the records.
	Hostname string
	// Started is when the run began; Heartbeat its last sign of life.
	Started, Heartbeat time.Time
	// Ended is when the run stopped, or, for a run that died, its last
	// heartbeat; zero while it runs (or until its death is noticed).
	Ended time.Time
	// Stop is "" while the run is open, RunStopped or RunDied.
	Stop string
}

// StartRun records a new run. Started and Heartbeat default to now.
func (db *DB) StartRun(ctx context.Context, r Run) error {
	if r.ID == "" {
		return fmt.Errorf("start run: empty run id: %w", domain.ErrInvalid)
	}
	now := db.now()
	if r.Started.IsZero() {
		r.Started = now
	}
	if r.Heartbeat.IsZero() {
		r.Heartbeat = r.Started
	}
	p := r.Process
	_, err := db.sql.ExecContext(ctx, `
INSERT INTO runs (id, pid, proc_start, boot_id, pid_ns, hostname, started, heartbeat)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, p.PID, int64(p.Start), p.Boot, p.NS, r.Hostname, r.Started.UnixMilli(), r.Heartbeat.UnixMilli())
	if err != nil {
		return fmt.Errorf("start run %s: %w", r.ID, err)
	}
	return nil
}

// Heartbeat records that the run is alive now. A run that another process
// took for dead (its heartbeats could not be written for a while) is open
// again afterwards; the records of its live sessions are rewritten by their
// next save. It fails with ErrNotFound for an unknown run.
func (db *DB) Heartbeat(ctx context.Context, id string) error {
	res, err := db.sql.ExecContext(ctx, `UPDATE runs SET heartbeat = ?, ended = NULL, stop = '' WHERE id = ?`,
		db.now().UnixMilli(), id)
	if err != nil {
		return fmt.Errorf("record heartbeat of run %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("record heartbeat of run %s: %w", id, domain.ErrNotFound)
	}
	return nil
}

// EndRun records that the run stopped cleanly, now.
func (db *DB) EndRun(ctx context.Context, id string) error {
	now := db.now().UnixMilli()
	res, err := db.sql.ExecContext(ctx, `UPDATE runs SET heartbeat = ?, ended = ?, stop = ? WHERE id = ?`,
		now, now, RunStopped, id)
	if err != nil {
		return fmt.Errorf("end run %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("end run %s: %w", id, domain.ErrNotFound)
	}
	return nil
}

const runColumns = `id, pid, proc_start, boot_id, pid_ns, hostname, started, heartbeat, ended, stop`

func scanRun(sc scanner) (Run, error) {
	var (
		r                  Run
		start              int64
		started, heartbeat int64
		ended              sql.NullInt64
	)
	if err := sc.Scan(&r.ID, &r.Process.PID, &start, &r.Process.Boot, &r.Process.NS, &r.Hostname,
		&started, &heartbeat, &ended, &r.Stop); err != nil {
		return Run{}, err
	}
	r.Process.Start = uint64(start)
	r.Started, r.Heartbeat = time.UnixMilli(started).UTC(), time.UnixMilli(heartbeat).UTC()
	r.Ended = fromMillis(ended)
	return r, nil
}

// GetRun returns the run with this id, or an error wrapping ErrNotFound.
func (db *DB) GetRun(ctx context.Context, id string) (Run, error) {
	r, err := scanRun(db.sql.QueryRowContext(ctx, `SELECT `+runColumns+` FROM runs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, fmt.Errorf("get run %s: %w", id, domain.ErrNotFound)
	}
	if err != nil {
		return Run{}, fmt.Errorf("get run %s: %w", id, err)
	}
	return r, nil
}

// OpenRuns returns the runs that have not ended, oldest first.
func (db *DB) OpenRuns(ctx context.Context) ([]Run, error) {
	return db.queryRuns(ctx, `SELECT `+runColumns+` FROM runs WHERE ended IS NULL ORDER BY started, rowid`)
}

func (db *DB) queryRuns(ctx context.Context, q string, args ...any) ([]Run, error) {
	rows, err := db.sql.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return out, nil
}

// EndedRun is a run EndDeadRuns found dead, with the number of its sessions
// it ended.
type EndedRun struct {
	Run      Run
	Sessions int
}

// DeadRuns is what EndDeadRuns did.
type DeadRuns struct {
	// Runs are the runs found dead, now ended at their last heartbeat.
	Runs []EndedRun
	// Orphans counts the sessions ended that had no open run: recorded
	// before runs were, or left without an end by a run that stopped
	// (their end could not be written).
	Orphans int
}

// Sessions is the number of sessions ended in all.
func (d DeadRuns) Sessions() int {
	n := d.Orphans
	for _, r := range d.Runs {
		n += r.Sessions
	}
	return n
}

// EndDeadRuns ends what dead serve processes left open, in one transaction:
// every open run other than self for which dead returns true is ended
// (Stop RunDied) at its last heartbeat, and so is each of its sessions
// without an end (state "ended", end reason "host-restart", at the later of
// the heartbeat and the session's last recorded event). Sessions without an
// end whose run is not open (or unknown, or "": recorded before runs were)
// are ended the same way, at the later of their run's end and their last
// event; self's sessions are never touched (self is an open run). self may
// be "" (a process that is no run). dead must be quick; it is called inside
// the transaction.
func (db *DB) EndDeadRuns(ctx context.Context, self string, dead func(Run) bool) (DeadRuns, error) {
	var out DeadRuns
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return out, fmt.Errorf("end dead runs: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	open, err := func() ([]Run, error) {
		rows, err := tx.QueryContext(ctx, `SELECT `+runColumns+` FROM runs WHERE ended IS NULL AND id != ? ORDER BY started, rowid`, self)
		if err != nil {
			return nil, err
		}
		defer func() { _ = rows.Close() }()
		var rs []Run
		for rows.Next() {
			r, err := scanRun(rows)
			if err != nil {
				return nil, err
			}
			rs = append(rs, r)
		}
		return rs, rows.Err()
	}()
	if err != nil {
		return out, fmt.Errorf("end dead runs: list open runs: %w", err)
	}
	reason := string(engine.EndHostRestart)
	for _, r := range open {
		if !dead(r) {
			continue
		}
		hb := r.Heartbeat.UnixMilli()
		if _, err := tx.ExecContext(ctx, `UPDATE runs SET ended = heartbeat, stop = ? WHERE id = ?`, RunDied, r.ID); err != nil {
			return DeadRuns{}, fmt.Errorf("end dead run %s: %w", r.ID, err)
		}
		res, err := tx.ExecContext(ctx, `
UPDATE sessions SET state = ?, end_reason = ?,
	ended = MAX(?, created, COALESCE(answered, 0), COALESCE(connected, 0))
WHERE run_id = ? AND ended IS NULL`, domain.StateEnded, reason, hb, r.ID)
		if err != nil {
			return DeadRuns{}, fmt.Errorf("end sessions of dead run %s: %w", r.ID, err)
		}
		n, _ := res.RowsAffected()
		r.Ended, r.Stop = r.Heartbeat, RunDied
		out.Runs = append(out.Runs, EndedRun{Run: r, Sessions: int(n)})
	}
	res, err := tx.ExecContext(ctx, `
UPDATE sessions SET state = ?, end_reason = ?,
	ended = MAX(created, COALESCE(answered, 0), COALESCE(connected, 0),
		COALESCE((SELECT runs.ended FROM runs WHERE runs.id = sessions.run_id), 0))
WHERE ended IS NULL AND run_id NOT IN (SELECT id FROM runs WHERE ended IS NULL)`,
		domain.StateEnded, reason)
	if err != nil {
		return DeadRuns{}, fmt.Errorf("end sessions without a run: %w", err)
	}
	n, _ := res.RowsAffected()
	out.Orphans = int(n)
	if err := tx.Commit(); err != nil {
		return DeadRuns{}, fmt.Errorf("end dead runs: %w", err)
	}
	return out, nil
}
