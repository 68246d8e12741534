// Package store is geckohost's persistent state on one machine: a single
// SQLite file (github.com/mattn/go-sqlite3) holding the bearer tokens clients
// authenticate with, one record per worker session and one per serve run. It
// is the SQLite adapter of domain's contracts (domain.Tokens, domain.Store);
// the records and their rules are domain's.
//
// Open creates the file (directory 0700, file 0600), switches it to WAL mode
// with a busy timeout and foreign keys on, and applies the versioned schema
// migrations inside one immediate transaction keyed on PRAGMA user_version,
// so several goroutines or processes may open the same new file at once.
//
// Tokens are 256-bit random secrets ("gh_" + unpadded base64url). Only their
// SHA-256 hash and a short display prefix are stored; LookupToken hashes the
// presented secret and compares hashes in constant time.
//
// Timestamps are stored as UTC unix milliseconds and returned as UTC
// time.Time values (so they round to the millisecond); a zero time.Time
// means "none" (never expires, not revoked, never used, not yet answered...).
package store
