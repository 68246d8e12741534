package engine

import (
	"fmt"
	"slices"
)

// Errno is a public geckohost error number, sent to clients in worker-error
// frames (see docs/protocol.md). Numbers are never reused.
type Errno int

// The public error numbers. The names and numbers are a contract with clients.
const (
	InvalidAuthorization          Errno = 101
	InvalidToken                  Errno = 102
	InvalidMessage                Errno = 103
	SourceNotAllowed              Errno = 104
	LimitReached                  Errno = 105
	UnableToFetchWorkerCode       Errno = 201
	SyntaxErrorInWorkerCode       Errno = 202
	UncaughtExceptionInWorkerCode Errno = 203
	InvalidOffer                  Errno = 204
	WorkerLimitExceeded           Errno = 205
	NoGeckoAvailable              Errno = 301
	GeckoTimeout                  Errno = 302
	GeckoCrashed                  Errno = 303
	ShuttingDown                  Errno = 304
	PeerConnectionFailed          Errno = 305
)

// errnoRow is one row of the errno table.
type errnoRow struct {
	errno   Errno
	name    string
	meaning string
}

// errnoTable is the public errno table, in ascending order: the number,
// the name and when a client gets it, one row each. docs/protocol.md
// states the same table (TestDocsErrnoTable compares them).
var errnoTable = []errnoRow{
	{InvalidAuthorization, "INVALID_AUTHORIZATION", "`authorization` missing, or not `Bearer <token>`"},
	{InvalidToken, "INVALID_TOKEN", "the token is unknown, revoked or expired"},
	{InvalidMessage, "INVALID_MESSAGE", "a bad frame (see below), no hello within 10 s, more than 1,000 candidates"},
	{SourceNotAllowed, "SOURCE_NOT_ALLOWED", "the source, or one of its redirects, is not allowed (see below); the reason names the URL"},
	{LimitReached, "LIMIT_REACHED", "the token's concurrent-worker limit or rate limit is reached"},
	{UnableToFetchWorkerCode, "UNABLE_TO_FETCH_WORKER_CODE", "the source could not be fetched (network error, non-2xx status, over 5 redirects, too large, no response within 10 s)"},
	{SyntaxErrorInWorkerCode, "SYNTAX_ERROR_IN_WORKER_CODE", "the source does not parse"},
	{UncaughtExceptionInWorkerCode, "UNCAUGHT_EXCEPTION_IN_WORKER_CODE", "the source throws while it first runs, or the worker closes itself before the data channel opens"},
	{InvalidOffer, "INVALID_OFFER", "the offer has a media section that is not a data channel, more than 4 or none, or the browser refused it"},
	{WorkerLimitExceeded, "WORKER_LIMIT_EXCEEDED", "the worker went past a resource limit (memory, CPU busy time, lifetime) before `connected`; the reason names it"},
	{NoGeckoAvailable, "NO_GECKO_AVAILABLE", "no browser could take the worker within the queue timeout, or the queue is full, or the cluster store is unreachable"},
	{GeckoTimeout, "GECKO_TIMEOUT", "no answer within 30 s of the hello, or not connected within 30 s of the answer (only ever a timeout)"},
	{GeckoCrashed, "GECKO_CRASHED", "the browser running the worker, or its content process, died, or its page went away (cluster: or its node), before `connected`"},
	{ShuttingDown, "SHUTTING_DOWN", "the host is stopping"},
	{PeerConnectionFailed, "PEER_CONNECTION_FAILED", "ICE or DTLS between client and worker failed, or the peer connection closed, before `connected`"},
}

// String returns the errno's public name, such as "INVALID_TOKEN", or
// "ERRNO_<n>" for a number this version does not know.
func (e Errno) String() string {
	if r, ok := lookupErrno(e); ok {
		return r.name
	}
	return fmt.Sprintf("ERRNO_%d", int(e))
}

// Meaning returns when a client gets the errno, in one line (the "when"
// column of the table in docs/protocol.md); "" for a number this version
// does not know.
func (e Errno) Meaning() string {
	r, _ := lookupErrno(e)
	return r.meaning
}

func lookupErrno(e Errno) (errnoRow, bool) {
	i := slices.IndexFunc(errnoTable, func(r errnoRow) bool { return r.errno == e })
	if i < 0 {
		return errnoRow{}, false
	}
	return errnoTable[i], true
}

// Errnos returns every public error number, in ascending order.
func Errnos() []Errno {
	out := make([]Errno, 0, len(errnoTable))
	for _, r := range errnoTable {
		out = append(out, r.errno)
	}
	slices.Sort(out)
	return out
}

// Error is a failure with a public error number and a human reason. Engines
// return it (or wrap it) so that the front can send the right worker-error
// frame. Use errors.As to find it in a chain.
type Error struct {
	Errno  Errno
	Reason string
}

// Errorf returns an *Error with a formatted reason.
func Errorf(errno Errno, format string, args ...any) *Error {
	return &Error{Errno: errno, Reason: fmt.Sprintf(format, args...)}
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("%s (%d): %s", e.Errno, int(e.Errno), e.Reason)
}
