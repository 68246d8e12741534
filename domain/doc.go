// Package domain is geckohost's records and rules with no storage in them:
// tokens (Token, NewToken, Rate, their secrets and checks), the origin
// patterns of worker sources (ValidateSourcePattern, MatchSource), session
// records (Session, its states, and its one JSON form, SessionJSON), and the
// contracts that the storage adapters fulfil: Tokens (managing tokens), Store
// (what host needs: a token lookup and the session records) and Limiter (the
// tokens' worker and rate limits).
//
// The adapters are store (SQLite, one machine) and cluster (Redis, every
// node); host consumes the contracts, and the engines (gecko) may use the
// rules (MatchSource) without linking any storage.
//
// Timestamps are UTC and, in the records, round to the millisecond; a zero
// time.Time means "none" (never expires, not revoked, never used, not yet
// answered...).
package domain
