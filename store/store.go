package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/geckohost/geckohost/domain"
)

// busyTimeout is how long a connection waits for another writer (goroutine
// or process) before failing with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// The contracts DB fulfils.
var (
	_ domain.Tokens = (*DB)(nil)
	_ domain.Store  = (*DB)(nil)
)

// DB is an open geckohost store. It is safe for concurrent use by several
// goroutines, and several processes may open the same file.
type DB struct {
	sql  *sql.DB
	path string
	// now is the clock; tests replace it.
	now func() time.Time
}

// DefaultPath returns where the store lives when no --db is given:
// $XDG_DATA_HOME/geckohost/geckohost.db, or, when XDG_DATA_HOME is unset or
// not absolute, ~/.local/share/geckohost/geckohost.db.
func DefaultPath() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "geckohost", "geckohost.db"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find default database path: %w", err)
	}
	return filepath.Join(home, ".local", "share", "geckohost", "geckohost.db"), nil
}

// Open opens the store at path, creating it (and its directory, mode 0700;
// the file mode 0600) when missing, setting an existing file's mode to 0600
// (or failing when it cannot), and brings its schema up to date. It
// returns an error wrapping ErrSchemaTooNew when the file was written by a
// newer geckohost, and a clear error when the file is not a SQLite database.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, fmt.Errorf("open store: empty path: %w", domain.ErrInvalid)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("create store directory: %w", err)
	}
	// Create the file ourselves so that it (and the -wal and -shm files
	// SQLite derives from it) gets mode 0600 whatever the umask.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create store file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("create store file: %w", err)
	}
	// A file that existed with a wider mode (0644 from a copy, an old
	// umask) is made private too, with its -wal and -shm files: it holds
	// the token hashes and every session's addresses.
	for _, p := range []string{abs, abs + "-wal", abs + "-shm"} {
		if err := makePrivate(p); err != nil {
			return nil, fmt.Errorf("open store %s: %w", abs, err)
		}
	}

	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(busyTimeout.Milliseconds()))
	q.Set("_foreign_keys", "on")
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "NORMAL")
	// Every transaction takes the write lock at BEGIN, so two writers never
	// deadlock on a lock upgrade and concurrent migrations serialize.
	q.Set("_txlock", "immediate")
	dsn := "file:" + (&url.URL{Path: abs}).EscapedPath() + "?" + q.Encode()
	sdb, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	db := &DB{sql: sdb, path: abs, now: time.Now}
	if err := db.migrateRetry(ctx); err != nil {
		_ = sdb.Close()
		return nil, fmt.Errorf("open store %s: %w", abs, describe(err))
	}
	return db, nil
}

// makePrivate sets mode 0600 on the file at p unless it has it already or
// does not exist.
func makePrivate(p string) error {
	fi, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check the mode of %s: %w", p, err)
	}
	if fi.Mode().Perm() == 0o600 {
		return nil
	}
	if err := os.Chmod(p, 0o600); err != nil {
		return fmt.Errorf("make %s private (mode %04o, want 0600; chmod 600 it or run as its owner): %w", p, fi.Mode().Perm(), err)
	}
	return nil
}

// migrateRetry runs migrate, again while SQLite reports the database busy
// (up to busyTimeout). When several processes open a new file at once, one
// switching it to WAL mode makes the others' first statement fail with
// SQLITE_BUSY at once, without waiting for busy_timeout.
func (db *DB) migrateRetry(ctx context.Context) error {
	deadline := time.Now().Add(busyTimeout)
	for pause := 5 * time.Millisecond; ; pause = min(2*pause, 200*time.Millisecond) {
		err := db.migrate(ctx)
		var se sqlite3.Error
		if err == nil || !errors.As(err, &se) || (se.Code != sqlite3.ErrBusy && se.Code != sqlite3.ErrLocked) || time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

// describe turns SQLite's terse corruption errors into something a user can
// act on.
func describe(err error) error {
	var se sqlite3.Error
	if errors.As(err, &se) && (se.Code == sqlite3.ErrNotADB || se.Code == sqlite3.ErrCorrupt) {
		return fmt.Errorf("not a valid geckohost database (corrupt, or another kind of file): %w", err)
	}
	return err
}

// Path returns the absolute path of the database file.
func (db *DB) Path() string { return db.path }

// Close closes the database. Further calls fail.
func (db *DB) Close() error {
	if err := db.sql.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// migrations[i] brings the schema from version i to version i+1.
var migrations = []string{
	// 1: tokens and sessions.
	`
CREATE TABLE tokens (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	name        TEXT    NOT NULL UNIQUE,
	prefix      TEXT    NOT NULL,
	hash        BLOB    NOT NULL UNIQUE,  -- SHA-256 of the secret
	created     INTEGER NOT NULL,         -- unix ms UTC
	expires     INTEGER,                  -- NULL: never
	revoked     INTEGER,                  -- NULL: not revoked
	last_used   INTEGER,                  -- NULL: never used
	sources     TEXT    NOT NULL DEFAULT '[]', -- JSON array of origin patterns
	max_workers INTEGER NOT NULL DEFAULT 0     -- 0: unlimited
);
CREATE TABLE sessions (
	worker_id   TEXT    PRIMARY KEY,
	token_id    INTEGER REFERENCES tokens(id),
	token_name  TEXT    NOT NULL DEFAULT '',
	source      TEXT    NOT NULL DEFAULT '',
	remote_addr TEXT    NOT NULL DEFAULT '',
	origin      TEXT    NOT NULL DEFAULT '',
	engine      TEXT    NOT NULL DEFAULT '',
	state       TEXT    NOT NULL DEFAULT '',
	errno       INTEGER NOT NULL DEFAULT 0,
	reason      TEXT    NOT NULL DEFAULT '',
	created     INTEGER NOT NULL,
	answered    INTEGER,
	connected   INTEGER,
	ended       INTEGER,
	end_reason  TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX sessions_by_created ON sessions(created);
CREATE INDEX sessions_by_token ON sessions(token_name, created);
`,
	// 2: per-token rate limit (0, 0: none).
	`
ALTER TABLE tokens ADD COLUMN rate_count     INTEGER NOT NULL DEFAULT 0; -- most workers started per window
ALTER TABLE tokens ADD COLUMN rate_window_ms INTEGER NOT NULL DEFAULT 0; -- the window, in ms
`,
	// 3: requests the worker egress policy refused, per session.
	`
ALTER TABLE sessions ADD COLUMN egress_refused INTEGER NOT NULL DEFAULT 0;
`,
	// 4: cluster mode: the node that ran the session's worker ('' outside
	// cluster mode).
	`
ALTER TABLE sessions ADD COLUMN node_id TEXT NOT NULL DEFAULT '';
`,
	// 5: serve runs (their process and heartbeat) and each session's run.
	`
CREATE TABLE runs (
	id         TEXT    PRIMARY KEY,
	pid        INTEGER NOT NULL,
	proc_start INTEGER NOT NULL DEFAULT 0,  -- process start, clock ticks since boot (0: unknown)
	boot_id    TEXT    NOT NULL DEFAULT '', -- kernel boot id of the machine
	pid_ns     TEXT    NOT NULL DEFAULT '', -- PID namespace
	hostname   TEXT    NOT NULL DEFAULT '',
	started    INTEGER NOT NULL,            -- unix ms UTC
	heartbeat  INTEGER NOT NULL,            -- last sign of life, unix ms UTC
	ended      INTEGER,                     -- NULL: running (or dead and not noticed yet)
	stop       TEXT    NOT NULL DEFAULT ''  -- '', 'stopped' (clean) or 'died'
);
ALTER TABLE sessions ADD COLUMN run_id TEXT NOT NULL DEFAULT '';
CREATE INDEX sessions_unended ON sessions(run_id) WHERE ended IS NULL;
`,
	// 6: per-token containment limits (0: the server's).
	`
ALTER TABLE tokens ADD COLUMN worker_memory      INTEGER NOT NULL DEFAULT 0; -- bytes
ALTER TABLE tokens ADD COLUMN worker_lifetime_ms INTEGER NOT NULL DEFAULT 0;
`,
}

func (db *DB) migrate(ctx context.Context) error {
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin migration: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("schema version %d, this geckohost knows up to %d (upgrade geckohost): %w",
			v, len(migrations), ErrSchemaTooNew)
	}
	if v == len(migrations) {
		return nil
	}
	for i := v; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("apply migration %d: %w", i+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
		return fmt.Errorf("set schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit migration: %w", err)
	}
	return nil
}

// millis converts t to a nullable unix-millisecond column value.
func millis(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

// fromMillis converts a nullable unix-millisecond column value to a UTC time.
func fromMillis(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.UnixMilli(n.Int64).UTC()
}

// queryAll runs a query and scans every row with scan.
func queryAll[T any](ctx context.Context, db *DB, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.sql.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
