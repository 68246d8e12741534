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

var errnoNames = map[Errno]string{
	InvalidAuthorization:          "INVALID_AUTHORIZATION",
	InvalidToken:                  "INVALID_TOKEN",
	InvalidMessage:                "INVALID_MESSAGE",
	SourceNotAllowed:              "SOURCE_NOT_ALLOWED",
	LimitReached:                  "LIMIT_REACHED",
	UnableToFetchWorkerCode:       "UNABLE_TO_FETCH_WORKER_CODE",
	SyntaxErrorInWorkerCode:       "SYNTAX_ERROR_IN_WORKER_CODE",
	UncaughtExceptionInWorkerCode: "UNCAUGHT_EXCEPTION_IN_WORKER_CODE",
	InvalidOffer:                  "INVALID_OFFER",
	WorkerLimitExceeded:           "WORKER_LIMIT_EXCEEDED",
	NoGeckoAvailable:              "NO_GECKO_AVAILABLE",
	GeckoTimeout:                  "GECKO_TIMEOUT",
	GeckoCrashed:                  "GECKO_CRASHED",
	ShuttingDown:                  "SHUTTING_DOWN",
	PeerConnectionFailed:          "PEER_CONNECTION_FAILED",
}

// String returns the errno's public name, such as "INVALID_TOKEN", or
// "ERRNO_<n>" for a number this version does not know.
func (e Errno) String() string {
	if n, ok := errnoNames[e]; ok {
		return n
	}
	return fmt.Sprintf("ERRNO_%d", int(e))
}

// Errnos returns every public error number, in ascending order.
func Errnos() []Errno {
	out := make([]Errno, 0, len(errnoNames))
	for e := range errnoNames {
		out = append(out, e)
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
