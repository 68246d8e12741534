package wire

import (
	"context"
	"fmt"
)

// Candidate is an ICE candidate as it travels in "ice" frames, in both
// directions. An empty Candidate string means end of candidates.
type Candidate struct {
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdpMid,omitempty"`
	SDPMLineIndex    *uint16 `json:"sdpMLineIndex,omitempty"`
	UsernameFragment *string `json:"usernameFragment,omitempty"`
}

// Errno is a public geckohost error number (see ../shared/spec/notes.md).
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
	NoGeckoAvailable              Errno = 301
	GeckoTimeout                  Errno = 302
	GeckoCrashed                  Errno = 303
	ShuttingDown                  Errno = 304
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
	NoGeckoAvailable:              "NO_GECKO_AVAILABLE",
	GeckoTimeout:                  "GECKO_TIMEOUT",
	GeckoCrashed:                  "GECKO_CRASHED",
	ShuttingDown:                  "SHUTTING_DOWN",
}

// String returns the errno's public name, such as "INVALID_TOKEN".
func (e Errno) String() string {
	if n, ok := errnoNames[e]; ok {
		return n
	}
	return fmt.Sprintf("ERRNO_%d", int(e))
}

// Error is a failure with a public error number and a human reason. Engines
// return it (or wrap it) so that host can send the right worker-error frame.
// Use errors.As to find it in a chain.
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

// WorkerRequest is what host asks an engine for: one worker running Source
// for a token, answering Offer.
type WorkerRequest struct {
	// WorkerID is chosen by host; the engine uses it in logs and events.
	WorkerID string
	// TokenID and TokenName identify the token; an engine keeps each token's
	// workers apart from every other token's (a browser user context each).
	TokenID   int64
	TokenName string
	// Source is the worker JavaScript URL (already checked by host).
	Source string
	// Offer is the client's SDP offer.
	Offer string
}

// EventKind tells what an Event reports.
type EventKind int

// The kinds of Event, in the order a worker normally produces them.
const (
	// EventAnswer carries the worker's SDP answer (Event.Answer). Exactly once.
	EventAnswer EventKind = iota + 1
	// EventCandidate carries one ICE candidate the worker gathered.
	EventCandidate
	// EventConnected reports that the worker's end of the data channel is open.
	EventConnected
	// EventEnded is the last event: the worker is gone. Event.Err is non-nil
	// when it ended in failure (errno and reason for the client); EndReason
	// says why it ended otherwise ("worker-closed", "idle", "peer-closed", ...).
	EventEnded
)

// Event is one thing an engine reports about a worker.
type Event struct {
	Kind      EventKind
	Answer    string
	Candidate Candidate
	Err       *Error
	EndReason string
}

// Worker is one running worker, as an engine hands it to host. It is
// declared here, in the leaf package, so that an engine's StartWorker can
// return it without importing host.
type Worker interface {
	// Events delivers the worker's events in order and is closed after the
	// EventEnded event. The reader must keep reading until it is closed.
	Events() <-chan Event
	// AddCandidate applies a client ICE candidate (an empty Candidate string
	// means end of candidates). Host calls it only after EventAnswer.
	AddCandidate(ctx context.Context, c Candidate) error
	// Close ends the worker (its peer connection and page) and waits until it
	// is gone; Events then delivers EventEnded and closes. Safe to call more
	// than once and after the worker ended by itself.
	Close(ctx context.Context) error
}
