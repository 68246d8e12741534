package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/geckohost/geckohost/domain"
)

// SaveSession inserts the session or, when one with the same WorkerID
// exists, replaces every field with s's.
func (db *DB) SaveSession(ctx context.Context, s domain.Session) error {
	if s.WorkerID == "" {
		return fmt.Errorf("save session: empty worker id: %w", domain.ErrInvalid)
	}
	if s.Created.IsZero() {
		s.Created = db.now()
	}
	tokenID := sql.NullInt64{Int64: s.TokenID, Valid: s.TokenID != 0}
	_, err := db.sql.ExecContext(ctx, `
INSERT INTO sessions (worker_id, token_id, token_name, source, remote_addr, origin, engine, state,
	errno, reason, created, answered, connected, ended, end_reason, egress_refused, node_id, run_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (worker_id) DO UPDATE SET
	token_id = excluded.token_id, token_name = excluded.token_name, source = excluded.source,
	remote_addr = excluded.remote_addr, origin = excluded.origin, engine = excluded.engine,
	state = excluded.state, errno = excluded.errno, reason = excluded.reason,
	created = excluded.created, answered = excluded.answered, connected = excluded.connected,
	ended = excluded.ended, end_reason = excluded.end_reason, egress_refused = excluded.egress_refused,
	node_id = excluded.node_id, run_id = excluded.run_id`,
		s.WorkerID, tokenID, s.TokenName, s.Source, s.RemoteAddr, s.Origin, s.Engine, s.State,
		s.Errno, s.Reason, s.Created.UnixMilli(), millis(s.Answered), millis(s.Connected), millis(s.Ended), s.EndReason,
		s.EgressRefused, s.NodeID, s.RunID)
	if err != nil {
		return fmt.Errorf("save session %s: %w", s.WorkerID, err)
	}
	return nil
}

const sessionColumns = `worker_id, token_id, token_name, source, remote_addr, origin, engine, state,
	errno, reason, created, answered, connected, ended, end_reason, egress_refused, node_id, run_id`

func scanSession(sc scanner) (domain.Session, error) {
	var (
		s                          domain.Session
		tokenID                    sql.NullInt64
		created                    int64
		answered, connected, ended sql.NullInt64
	)
	if err := sc.Scan(&s.WorkerID, &tokenID, &s.TokenName, &s.Source, &s.RemoteAddr, &s.Origin, &s.Engine,
		&s.State, &s.Errno, &s.Reason, &created, &answered, &connected, &ended, &s.EndReason, &s.EgressRefused, &s.NodeID,
		&s.RunID); err != nil {
		return domain.Session{}, err
	}
	s.TokenID = tokenID.Int64
	s.Created = time.UnixMilli(created).UTC()
	s.Answered, s.Connected, s.Ended = fromMillis(answered), fromMillis(connected), fromMillis(ended)
	return s, nil
}

// GetSession returns the session with this worker id, or an error wrapping
// ErrNotFound.
func (db *DB) GetSession(ctx context.Context, workerID string) (domain.Session, error) {
	s, err := scanSession(db.sql.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE worker_id = ?`, workerID))
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Session{}, fmt.Errorf("get session %s: %w", workerID, domain.ErrNotFound)
	}
	if err != nil {
		return domain.Session{}, fmt.Errorf("get session %s: %w", workerID, err)
	}
	return s, nil
}

// ListSessions returns the sessions matching f, newest (by Created) first.
func (db *DB) ListSessions(ctx context.Context, f domain.SessionFilter) ([]domain.Session, error) {
	if f.Limit < 0 {
		return nil, fmt.Errorf("list sessions: negative limit %d: %w", f.Limit, domain.ErrInvalid)
	}
	if f.Limit == 0 {
		f.Limit = 50
	}
	q := `SELECT ` + sessionColumns + ` FROM sessions`
	args := []any{}
	if f.TokenName != "" {
		q += ` WHERE token_name = ?`
		args = append(args, f.TokenName)
	}
	q += ` ORDER BY created DESC, rowid DESC LIMIT ?`
	args = append(args, f.Limit)
	out, err := queryAll(ctx, db, scanSession, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	return out, nil
}

// pruneBatch is how many rows one PruneSessions statement deletes, so that
// a large prune never holds the write lock for long.
const pruneBatch = 5000

// PruneSessions deletes the sessions that ended before cutoff, and those
// that never ended (a geckohost that stopped uncleanly) created before it,
// and returns how many it deleted. It deletes in batches, each its own
// transaction.
func (db *DB) PruneSessions(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	for {
		res, err := db.sql.ExecContext(ctx, `
DELETE FROM sessions WHERE rowid IN (
	SELECT rowid FROM sessions WHERE COALESCE(ended, created) < ? LIMIT ?)`, cutoff.UnixMilli(), pruneBatch)
		if err != nil {
			return total, fmt.Errorf("prune sessions: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("prune sessions: %w", err)
		}
		total += n
		if n < pruneBatch {
			return total, nil
		}
	}
}
