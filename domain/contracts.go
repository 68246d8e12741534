package domain

import (
	"context"
	"strconv"
	"time"

	"github.com/geckohost/geckohost/engine"
)

// Tokens manages tokens: `geckohost token` runs on it. The adapters are
// store.DB (SQLite) and cluster.Tokens (Redis).
type Tokens interface {
	// AddToken checks nt (NewToken.Check), creates the token and returns it
	// with its secret, which is not stored: show it once. Errors wrap
	// ErrNameTaken or ErrInvalid.
	AddToken(ctx context.Context, nt NewToken) (Token, string, error)
	// ListTokens returns every token (revoked and expired ones included),
	// by id.
	ListTokens(ctx context.Context) ([]Token, error)
	// RevokeToken revokes the token with this id (all digits) or name and
	// returns it; revoking twice keeps the first time. Errors wrap
	// ErrNotFound.
	RevokeToken(ctx context.Context, idOrName string) (Token, error)
	// LookupToken finds the token whose secret this is (Token.Status), as
	// Store's does.
	LookupToken(ctx context.Context, secret string) (Token, error)
}

// Store is what host needs from the token and session store. The adapters
// are store.DB (SQLite) and cluster.Node (the tokens in Redis, the records
// in the node's SQLite and the cluster's stream).
type Store interface {
	// LookupToken finds a token by its secret; it fails with (a wrapped)
	// ErrNotFound, ErrRevoked or ErrExpired (the latter two with the token),
	// or returns the token with ErrUseNotRecorded when its use could not be
	// written.
	LookupToken(ctx context.Context, secret string) (Token, error)
	// SaveSession writes a session record, replacing the one with the same
	// WorkerID.
	SaveSession(ctx context.Context, s Session) error
}

// Limiter enforces the tokens' concurrent-worker limit (Token.MaxWorkers)
// and rate limit (Token.Rate). host has an in-memory one (this process's
// workers only); cluster.Node is the one every node shares.
type Limiter interface {
	// Reserve counts a live worker (workerID, chosen by host) for tok and
	// records its start against the token's rate limit, unless the token
	// is at its MaxWorkers or its Rate: then it returns a 105 *engine.Error
	// (MaxWorkersError, RateLimitError) and counts nothing. Any other
	// failure is an error; one wrapping an *engine.Error is sent to the
	// client as that error, any other as a 301.
	Reserve(ctx context.Context, tok Token, workerID string) error
	// Release ends the count Reserve made for workerID, once its session
	// is over. It does not block on the network.
	Release(tok Token, workerID string)
}

// MaxWorkersError is the 105 for a token at its concurrent-worker limit.
func MaxWorkersError(tok Token) *engine.Error {
	noun := "concurrent workers"
	if tok.MaxWorkers == 1 {
		noun = "concurrent worker"
	}
	return engine.Errorf(engine.LimitReached, "token %q already has its maximum of %s %s", tok.Name, strconv.Itoa(tok.MaxWorkers), noun)
}

// RateLimitError is the 105 for a token at its rate limit; wait is how
// long until its next start is allowed.
func RateLimitError(tok Token, wait time.Duration) *engine.Error {
	workers := "workers"
	if tok.Rate.Count == 1 {
		workers = "worker"
	}
	return engine.Errorf(engine.LimitReached, "token %q reached its rate limit of %d %s per %v; next in %v",
		tok.Name, tok.Rate.Count, workers, tok.Rate.Window, roundUpWait(wait))
}

// roundUpWait rounds a wait up to whole seconds (whole milliseconds under a
// second), so that "next in" is never too early.
func roundUpWait(d time.Duration) time.Duration {
	unit := time.Second
	if d < time.Second {
		unit = time.Millisecond
	}
	if r := d % unit; r != 0 {
		d += unit - r
	}
	return d
}
