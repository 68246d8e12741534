package store

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/geckohost/geckohost/domain"
)

// AddToken creates a token and returns it with its plaintext secret. The
// secret is not stored and cannot be recovered: show it once. Errors wrap
// ErrNameTaken when the name is in use and ErrInvalid for bad input.
func (db *DB) AddToken(ctx context.Context, nt domain.NewToken) (domain.Token, string, error) {
	nt, err := nt.Check()
	if err != nil {
		return domain.Token{}, "", fmt.Errorf("add token: %w", err)
	}
	sources := nt.Sources
	srcJSON, err := json.Marshal(sources)
	if err != nil {
		return domain.Token{}, "", fmt.Errorf("add token: encode sources: %w", err)
	}
	secret, prefix, err := domain.NewSecret()
	if err != nil {
		return domain.Token{}, "", fmt.Errorf("add token: %w", err)
	}
	now := db.now().UTC()
	t := domain.Token{
		Name:       nt.Name,
		Prefix:     prefix,
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
		t.Name, t.Prefix, domain.HashSecret(secret), millis(t.Created), millis(t.Expires), string(srcJSON), t.MaxWorkers,
		t.Rate.Count, t.Rate.Window.Milliseconds(), t.WorkerMemory, t.WorkerLifetime.Milliseconds())
	if err != nil {
		var se sqlite3.Error
		if errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintUnique {
			return domain.Token{}, "", fmt.Errorf("add token %q: %w", nt.Name, domain.ErrNameTaken)
		}
		return domain.Token{}, "", fmt.Errorf("add token: %w", err)
	}
	if t.ID, err = res.LastInsertId(); err != nil {
		return domain.Token{}, "", fmt.Errorf("add token: read id: %w", err)
	}
	return t, secret, nil
}

const tokenColumns = `id, name, prefix, created, expires, revoked, last_used, sources, max_workers, rate_count, rate_window_ms, worker_memory, worker_lifetime_ms`

type scanner interface{ Scan(dest ...any) error }

func scanToken(s scanner, extra ...any) (domain.Token, error) {
	var (
		t                          domain.Token
		created                    int64
		expires, revoked, lastUsed sql.NullInt64
		sources                    string
		rateWindowMS, lifetimeMS   int64
	)
	dest := append([]any{&t.ID, &t.Name, &t.Prefix, &created, &expires, &revoked, &lastUsed, &sources, &t.MaxWorkers,
		&t.Rate.Count, &rateWindowMS, &t.WorkerMemory, &lifetimeMS}, extra...)
	if err := s.Scan(dest...); err != nil {
		return domain.Token{}, err
	}
	t.Created = time.UnixMilli(created).UTC()
	t.Rate.Window = time.Duration(rateWindowMS) * time.Millisecond
	t.WorkerLifetime = time.Duration(lifetimeMS) * time.Millisecond
	if t.Rate.Count <= 0 || t.Rate.Window <= 0 {
		t.Rate = domain.Rate{}
	}
	t.Expires, t.Revoked, t.LastUsed = fromMillis(expires), fromMillis(revoked), fromMillis(lastUsed)
	if err := json.Unmarshal([]byte(sources), &t.Sources); err != nil {
		return domain.Token{}, fmt.Errorf("decode sources of token %d: %w", t.ID, err)
	}
	if len(t.Sources) == 0 {
		t.Sources = nil
	}
	return t, nil
}

// ListTokens returns every token (revoked and expired ones included), by id.
func (db *DB) ListTokens(ctx context.Context) ([]domain.Token, error) {
	out, err := queryAll(ctx, db, func(sc scanner) (domain.Token, error) { return scanToken(sc) }, `SELECT `+tokenColumns+` FROM tokens ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

// RevokeToken revokes the token with the given id (when idOrName is all
// digits) or name and returns it. Revoking a revoked token succeeds and keeps
// the first revocation time. Unknown tokens give an error wrapping
// ErrNotFound.
func (db *DB) RevokeToken(ctx context.Context, idOrName string) (domain.Token, error) {
	kind, where, arg := "name", "name = ?", any(idOrName)
	if id, err := strconv.ParseInt(idOrName, 10, 64); err == nil {
		kind, where, arg = "id", "id = ?", id
	}
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return domain.Token{}, fmt.Errorf("revoke token: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	now := db.now().UnixMilli()
	if _, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked = ? WHERE `+where+` AND revoked IS NULL`, now, arg); err != nil {
		return domain.Token{}, fmt.Errorf("revoke token %s: %w", idOrName, err)
	}
	t, err := scanToken(tx.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE `+where, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Token{}, fmt.Errorf("revoke token %s: no token with that %s: %w", idOrName, kind, domain.ErrNotFound)
	}
	if err != nil {
		return domain.Token{}, fmt.Errorf("revoke token %s: %w", idOrName, err)
	}
	if err := tx.Commit(); err != nil {
		return domain.Token{}, fmt.Errorf("revoke token %s: %w", idOrName, err)
	}
	return t, nil
}

// LookupToken finds the token whose secret this is, comparing SHA-256 hashes
// in constant time. It fails with an error wrapping ErrNotFound, ErrRevoked or
// ErrExpired (the latter two also return the token, so callers can log its
// name). On success it records the use in LastUsed; when that write fails
// (disk full, read-only database) it returns the token with an error
// wrapping ErrUseNotRecorded, and the caller may go on with it.
func (db *DB) LookupToken(ctx context.Context, secret string) (domain.Token, error) {
	want := domain.HashSecret(secret)
	var got []byte
	t, err := scanToken(db.sql.QueryRowContext(ctx,
		`SELECT `+tokenColumns+`, hash FROM tokens WHERE hash = ?`, want), &got)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && subtle.ConstantTimeCompare(got, want) != 1) {
		return domain.Token{}, fmt.Errorf("look up token: %w", domain.ErrNotFound)
	}
	if err != nil {
		return domain.Token{}, fmt.Errorf("look up token: %w", err)
	}
	now := db.now()
	if err := t.Status(now); err != nil {
		return t, err
	}
	t.LastUsed = time.UnixMilli(now.UnixMilli()).UTC()
	if _, err := db.sql.ExecContext(ctx, `UPDATE tokens SET last_used = ? WHERE id = ?`, t.LastUsed.UnixMilli(), t.ID); err != nil {
		return t, fmt.Errorf("look up token %q: record use: %w: %w", t.Name, domain.ErrUseNotRecorded, err)
	}
	return t, nil
}
