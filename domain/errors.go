package domain

import "errors"

// Sentinel errors of the contracts. The adapters wrap them with %w; test with
// errors.Is.
var (
	// ErrNotFound: no token, session or run matches.
	ErrNotFound = errors.New("not found")
	// ErrRevoked: the token exists but was revoked.
	ErrRevoked = errors.New("token revoked")
	// ErrExpired: the token exists but its expiry time has passed.
	ErrExpired = errors.New("token expired")
	// ErrNameTaken: another token already has this name.
	ErrNameTaken = errors.New("token name already taken")
	// ErrInvalid: an argument is malformed (token name, source pattern,
	// negative TTL or limit, empty worker id, ...). The wrapping error says
	// what and why.
	ErrInvalid = errors.New("invalid argument")
	// ErrUseNotRecorded: LookupToken found a valid token (and returns it)
	// but could not record its use (the disk is full, the database is
	// read-only): the token may be used all the same.
	ErrUseNotRecorded = errors.New("token use not recorded")
)
