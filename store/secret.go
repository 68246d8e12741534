package store

import (
	"fmt"
	"time"
)

// NewSecret returns a fresh token secret (SecretPrefix and 256 random bits,
// base64url) and its display prefix, as AddToken makes them. Other token
// stores (the cluster's, in Redis) use it so that every secret has one form.
func NewSecret() (secret, prefix string, err error) {
	secret, err = newSecret()
	if err != nil {
		return "", "", err
	}
	return secret, secret[:prefixLen], nil
}

// HashSecret returns the SHA-256 of secret: what a token store keeps and
// looks up instead of the secret.
func HashSecret(secret string) []byte { return hashSecret(secret) }

// Check validates nt as AddToken does (ValidateTokenName, a TTL and a
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
// ErrRevoked or ErrExpired (naming the token), as LookupToken decides.
func (t Token) Status(now time.Time) error {
	if !t.Revoked.IsZero() {
		return fmt.Errorf("look up token %q: %w", t.Name, ErrRevoked)
	}
	if !t.Expires.IsZero() && !now.Before(t.Expires) {
		return fmt.Errorf("look up token %q: %w", t.Name, ErrExpired)
	}
	return nil
}
