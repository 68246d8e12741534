package domain

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"time"
	"unicode"
)

// SecretPrefix starts every token secret.
const SecretPrefix = "gh_"

// PrefixLen is how many leading characters of a secret (including
// SecretPrefix) are kept for display, as Token.Prefix.
const PrefixLen = 8

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

// NewSecret returns a fresh token secret (SecretPrefix and 256 random bits,
// base64url) and its display prefix (its first PrefixLen characters), for a
// Tokens adapter's AddToken: every adapter (SQLite, the cluster's Redis) uses
// it so that every secret has one form.
func NewSecret() (secret, prefix string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("read random bytes: %w", err)
	}
	secret = SecretPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, secret[:PrefixLen], nil
}

// HashSecret returns the SHA-256 of secret: what a token store keeps and
// looks up instead of the secret.
func HashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// Check validates nt as every AddToken does (ValidateTokenName, a TTL and a
// MaxWorkers of 0 or more, Rate.Validate, ValidateSourcePattern for each
// source) and returns it with its Sources normalized (never nil). Errors
// wrap ErrInvalid.
func (nt NewToken) Check() (NewToken, error) {
	if err := ValidateTokenName(nt.Name); err != nil {
		return NewToken{}, err
	}
	if nt.TTL < 0 {
		return NewToken{}, fmt.Errorf("negative TTL %v: %w", nt.TTL, ErrInvalid)
	}
	if nt.MaxWorkers < 0 {
		return NewToken{}, fmt.Errorf("negative worker limit %d: %w", nt.MaxWorkers, ErrInvalid)
	}
	if err := nt.Rate.Validate(); err != nil {
		return NewToken{}, err
	}
	if nt.WorkerMemory < 0 || nt.WorkerLifetime < 0 {
		return NewToken{}, fmt.Errorf("negative worker memory %d or lifetime %v: %w", nt.WorkerMemory, nt.WorkerLifetime, ErrInvalid)
	}
	nt.WorkerLifetime = nt.WorkerLifetime.Truncate(time.Millisecond)
	sources := make([]string, 0, len(nt.Sources))
	for _, p := range nt.Sources {
		norm, err := ValidateSourcePattern(p)
		if err != nil {
			return NewToken{}, err
		}
		sources = append(sources, norm)
	}
	nt.Sources = sources
	return nt, nil
}

// Status says whether t can be used at now: nil, or an error wrapping
// ErrRevoked or ErrExpired (naming the token), as every LookupToken decides.
func (t Token) Status(now time.Time) error {
	if !t.Revoked.IsZero() {
		return fmt.Errorf("look up token %q: %w", t.Name, ErrRevoked)
	}
	if !t.Expires.IsZero() && !now.Before(t.Expires) {
		return fmt.Errorf("look up token %q: %w", t.Name, ErrExpired)
	}
	return nil
}
