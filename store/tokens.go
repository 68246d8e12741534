package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode"

	"github.com/mattn/go-sqlite3"
)

// SecretPrefix starts every token secret.
const SecretPrefix = "gh_"

// prefixLen is how many leading characters of a secret (including
// SecretPrefix) are kept for display.
const prefixLen = 8

// maxNameLen bounds token names.
const maxNameLen = 64

// Token is a stored bearer token, without its secret.
type Token struct {
	ID int64
	// Name is unique among tokens and never only digits.
	Name string
	// Prefix is the first few characters of the secret, for display only.
	Prefix string
	// Created is when the token was added. Expires, Revoked and LastUsed are
	// zero when the token never expires, is not revoked, was never used.
	Created, Expires, Revoked, LastUsed time.Time
	// Sources are the origin patterns (see ValidateSourcePattern) the
	// token's worker sources must match; empty means no per-token limit.
	Sources []string
	// MaxWorkers is the token's concurrent-worker limit; 0 means unlimited.
	MaxWorkers int
	// Rate is the token's rate limit; the zero Rate means unlimited.
	Rate Rate
	// WorkerMemory (bytes) and WorkerLifetime are the token's own
	// containment limits (serve's --worker-memory, --worker-max-lifetime
	// for its workers); 0 means the server's.
	WorkerMemory   int64
	WorkerLifetime time.Duration
}

// NewToken describes a token to add.
type NewToken struct {
	// Name is required: 1–64 letters, digits or "._-@", not only digits.
	Name string
	// TTL is how long the token is valid; 0 means it never expires.
	TTL time.Duration
	// Sources are origin patterns (see ValidateSourcePattern); nil or empty
	// means the token adds no restriction.
	Sources []string
	// MaxWorkers is the concurrent-worker limit; 0 means unlimited.
	MaxWorkers int
	// Rate is the rate limit (see Rate.Validate); the zero Rate means
	// unlimited.
	Rate Rate
	// WorkerMemory (bytes, 0 or more) and WorkerLifetime (0 or more,
	// whole milliseconds) are the token's own containment limits; 0 means
	// the server's.
	WorkerMemory   int64
	WorkerLifetime time.Duration
}

// Limits of a Rate.
const (
	// MaxRateCount is the largest Rate.Count.
	MaxRateCount = 1_000_000
	// MinRateWindow and MaxRateWindow bound Rate.Window.
	MinRateWindow = time.Second
	MaxRateWindow = 30 * 24 * time.Hour
)

// Rate is a per-token rate limit: at most Count workers started in any
// Window-long stretch of time. The zero Rate means no limit.
type Rate struct {
	// Count is how many workers may start per Window: 1 to MaxRateCount.
	Count int
	// Window is the length of the window: MinRateWindow to MaxRateWindow,
	// whole milliseconds.
	Window time.Duration
}

// IsZero reports whether r is the zero Rate (no limit).
func (r Rate) IsZero() bool { return r == Rate{} }

// String formats r as "COUNT/WINDOW", such as "60/1m0s", or "" for the zero
// Rate.
func (r Rate) String() string {
	if r.IsZero() {
		return ""
	}
	return strconv.Itoa(r.Count) + "/" + r.Window.String()
}

// Validate returns an error wrapping ErrInvalid unless r is the zero Rate or
// has a Count of 1 to MaxRateCount and a Window of MinRateWindow to
// MaxRateWindow in whole milliseconds.
func (r Rate) Validate() error {
	switch {
	case r.IsZero():
		return nil
	case r.Count < 1 || r.Count > MaxRateCount:
		return fmt.Errorf("rate count %d: want 1 to %d workers per window: %w", r.Count, MaxRateCount, ErrInvalid)
	case r.Window < MinRateWindow || r.Window > MaxRateWindow:
		return fmt.Errorf("rate window %v: want %v to %v (30 days): %w", r.Window, MinRateWindow, MaxRateWindow, ErrInvalid)
	case r.Window%time.Millisecond != 0:
		return fmt.Errorf("rate window %v: want whole milliseconds: %w", r.Window, ErrInvalid)
	}
	return nil
}

// ValidateTokenName returns an error wrapping ErrInvalid unless name is a
// valid token name: 1–64 ASCII letters, digits or "._-@", not only digits
// (so that "token revoke 12" always means the id).
func ValidateTokenName(name string) error {
	if name == "" {
		return fmt.Errorf("token name is empty: %w", ErrInvalid)
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("token name is longer than %d characters: %w", maxNameLen, ErrInvalid)
	}
	digits := true
	for _, r := range name {
		ok := r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '.' || r == '_' || r == '-' || r == '@')
		if !ok {
			return fmt.Errorf("token name %q: use only letters, digits and . _ - @: %w", name, ErrInvalid)
		}
		if !unicode.IsDigit(r) {
			digits = false
		}
	}
	if digits {
		return fmt.Errorf("token name %q is only digits (it would read as an id): %w", name, ErrInvalid)
	}
	return nil
}

// newSecret returns a fresh 256-bit random secret.
func newSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return SecretPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// AddToken creates a token and returns it with its plaintext secret. The
// secret is not stored and cannot be recovered: show it once. Errors wrap
// ErrNameTaken when the name is in use and ErrInvalid for bad input.
func (db *DB) AddToken(ctx context.Context, nt NewToken) (Token, string, error) {
	nt, err := nt.Check()
	if err != nil {
		return Token{}, "", fmt.Errorf("add token: %w", err)
	}
	sources := nt.Sources
	srcJSON, err := json.Marshal(sources)
	if err != nil {
		return Token{}, "", fmt.Errorf("add token: encode sources: %w", err)
	}
	secret, err := newSecret()
	if err != nil {
		return Token{}, "", fmt.Errorf("add token: %w", err)
	}
	now := db.now().UTC()
	t := Token{
		Name:       nt.Name,
		Prefix:     secret[:prefixLen],
		Created:    time.UnixMilli(now.UnixMilli()).UTC(),
		Sources:    sources,
		MaxWorkers: nt.MaxWorkers,
		Rate:       nt.Rate,

		WorkerMemory:   nt.WorkerMemory,
		WorkerLifetime: nt.WorkerLifetime,
	}
	if nt.TTL > 0 {
		t.Expires = time.UnixMilli(now.Add(nt.TTL).UnixMilli()).UTC()
	}
	res, err := db.sql.ExecContext(ctx,
		`INSERT INTO tokens (name, prefix, hash, created, expires, sources, max_workers, rate_count, rate_window_ms,
		 worker_memory, worker_lifetime_ms)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.Name, t.Prefix, hashSecret(secret), millis(t.Created), millis(t.Expires), string(srcJSON), t.MaxWorkers,
		t.Rate.Count, t.Rate.Window.Milliseconds(), t.WorkerMemory, t.WorkerLifetime.Milliseconds())
	if err != nil {
		var se sqlite3.Error
		if errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintUnique {
			return Token{}, "", fmt.Errorf("add token %q: %w", nt.Name, ErrNameTaken)
		}
		return Token{}, "", fmt.Errorf("add token: %w", err)
	}
	if t.ID, err = res.LastInsertId(); err != nil {
		return Token{}, "", fmt.Errorf("add token: read id: %w", err)
	}
	return t, secret, nil
}

const tokenColumns = `id, name, prefix, created, expires, revoked, last_used, sources, max_workers, rate_count, rate_window_ms, worker_memory, worker_lifetime_ms`

type scanner interface{ Scan(dest ...any) error }

func scanToken(s scanner, extra ...any) (Token, error) {
	var (
		t                          Token
		created                    int64
		expires, revoked, lastUsed sql.NullInt64
		sources                    string
		rateWindowMS, lifetimeMS   int64
	)
	dest := append([]any{&t.ID, &t.Name, &t.Prefix, &created, &expires, &revoked, &lastUsed, &sources, &t.MaxWorkers,
		&t.Rate.Count, &rateWindowMS, &t.WorkerMemory, &lifetimeMS}, extra...)
	if err := s.Scan(dest...); err != nil {
		return Token{}, err
	}
	t.Created = time.UnixMilli(created).UTC()
	t.Rate.Window = time.Duration(rateWindowMS) * time.Millisecond
	t.WorkerLifetime = time.Duration(lifetimeMS) * time.Millisecond
	if t.Rate.Count <= 0 || t.Rate.Window <= 0 {
		t.Rate = Rate{}
	}
	t.Expires, t.Revoked, t.LastUsed = fromMillis(expires), fromMillis(revoked), fromMillis(lastUsed)
	if err := json.Unmarshal([]byte(sources), &t.Sources); err != nil {
		return Token{}, fmt.Errorf("decode sources of token %d: %w", t.ID, err)
	}
	if len(t.Sources) == 0 {
		t.Sources = nil
	}
	return t, nil
}

// ListTokens returns every token (revoked and expired ones included), by id.
func (db *DB) ListTokens(ctx context.Context) ([]Token, error) {
	out, err := queryAll(ctx, db, func(sc scanner) (Token, error) { return scanToken(sc) }, `SELECT `+tokenColumns+` FROM tokens ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

// RevokeToken revokes the token with the given id (when idOrName is all
// digits) or name and returns it. Revoking a revoked token succeeds and keeps
// the first revocation time. Unknown tokens give an error wrapping
// ErrNotFound.
func (db *DB) RevokeToken(ctx context.Context, idOrName string) (Token, error) {
	kind, where, arg := "name", "name = ?", any(idOrName)
	if id, err := strconv.ParseInt(idOrName, 10, 64); err == nil {
		kind, where, arg = "id", "id = ?", id
	}
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return Token{}, fmt.Errorf("revoke token: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	now := db.now().UnixMilli()
	if _, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked = ? WHERE `+where+` AND revoked IS NULL`, now, arg); err != nil {
		return Token{}, fmt.Errorf("revoke token %s: %w", idOrName, err)
	}
	t, err := scanToken(tx.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE `+where, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, fmt.Errorf("revoke token %s: no token with that %s: %w", idOrName, kind, ErrNotFound)
	}
	if err != nil {
		return Token{}, fmt.Errorf("revoke token %s: %w", idOrName, err)
	}
	if err := tx.Commit(); err != nil {
		return Token{}, fmt.Errorf("revoke token %s: %w", idOrName, err)
	}
	return t, nil
}

// LookupToken finds the token whose secret this is, comparing SHA-256 hashes
// in constant time. It fails with an error wrapping ErrNotFound, ErrRevoked or
// ErrExpired (the latter two also return the token, so callers can log its
// name). On success it records the use in LastUsed; when that write fails
// (disk full, read-only database) it returns the token with an error
// wrapping ErrUseNotRecorded, and the caller may go on with it.
func (db *DB) LookupToken(ctx context.Context, secret string) (Token, error) {
	want := hashSecret(secret)
	var got []byte
	t, err := scanToken(db.sql.QueryRowContext(ctx,
		`SELECT `+tokenColumns+`, hash FROM tokens WHERE hash = ?`, want), &got)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && subtle.ConstantTimeCompare(got, want) != 1) {
		return Token{}, fmt.Errorf("look up token: %w", ErrNotFound)
	}
	if err != nil {
		return Token{}, fmt.Errorf("look up token: %w", err)
	}
	now := db.now()
	if err := t.Status(now); err != nil {
		return t, err
	}
	t.LastUsed = time.UnixMilli(now.UnixMilli()).UTC()
	if _, err := db.sql.ExecContext(ctx, `UPDATE tokens SET last_used = ? WHERE id = ?`, t.LastUsed.UnixMilli(), t.ID); err != nil {
		return t, fmt.Errorf("look up token %q: record use: %w: %w", t.Name, ErrUseNotRecorded, err)
	}
	return t, nil
}
