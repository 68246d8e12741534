package engine

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Engine runs workers. gecko.Pool implements it; host drives it.
type Engine interface {
	// StartWorker starts a worker for req and returns at once; the answer,
	// candidates, connected and the end are reported on the Worker's Events.
	// It fails with an error wrapping an *Error with errno 301
	// (NoGeckoAvailable) when no browser can take the worker (and, when
	// that may pass by itself, ErrNoCapacity beside it), with one
	// wrapping ErrWorkerLost when what took the request died, and with one
	// wrapping ErrClosed once the engine is closing.
	StartWorker(ctx context.Context, req WorkerRequest) (Worker, error)
	// Ready returns nil once the engine can take a worker without waiting
	// for a browser to start, else an error saying why not.
	Ready() error
}

// ErrClosed is wrapped by StartWorker's error once the engine is closing.
var ErrClosed = errors.New("engine closed")

// ErrWorkerLost is wrapped by StartWorker's error when whatever took the
// request (a browser, a cluster node) died before the worker was handed
// over: a fact the front turns into its errno (303).
var ErrWorkerLost = errors.New("worker lost")

// ErrNoCapacity is wrapped by StartWorker's error, beside a 301 *Error,
// when no browser can take a worker right now but one may soon: every
// browser runs its maximum of workers, or none is up (starting or
// restarting). The front may then queue the request and try again once a
// worker has ended or a little later. Build such an error with
// NoCapacity.
var ErrNoCapacity = errors.New("no capacity")

// NoCapacity returns an error wrapping both ErrNoCapacity and a 301
// (NoGeckoAvailable) *Error with the formatted reason.
func NoCapacity(format string, args ...any) error {
	return fmt.Errorf("%w: %w", ErrNoCapacity, Errorf(NoGeckoAvailable, format, args...))
}

// WorkerRequest is what the front asks an engine for: one worker running
// Source for a token, answering Offer.
type WorkerRequest struct {
	// WorkerID is chosen by the front; the engine uses it in logs.
	WorkerID string
	// TokenID and TokenName identify the token; an engine keeps each token's
	// workers apart from every other token's (a browser user context each).
	TokenID   int64
	TokenName string
	// Source is the worker JavaScript URL (already checked by the front).
	// The engine does not fetch it: Code is its text. Relative URLs in the
	// worker (importScripts) resolve against it, and the engine's network
	// policy treats its origin as the worker's own.
	Source string
	// Code is the worker's JavaScript, fetched by the front from Source
	// (following its checked redirects). An empty Code is an empty script.
	Code string
	// Offer is the client's SDP offer. The host takes its a=candidate
	// lines out and passes them with Worker.AddCandidates, after the
	// answer, ahead of the candidates trickled after the hello.
	Offer string
	// ICEServers are the STUN/TURN servers for the worker's peer
	// connection (the same the client gets from GET /ice-servers, with
	// short-lived TURN credentials). Empty: the engine's own configuration.
	ICEServers []ICEServer
	// Limits are the token's own resource limits; a zero field means the
	// engine's default.
	Limits Limits
}

// Limits bound what one token's workers may use. A zero field means the
// engine's default; a negative one means none.
type Limits struct {
	// Memory bounds, in bytes, the memory of the token's content process
	// in a browser (shared by the token's workers there).
	Memory int64
	// Lifetime bounds each worker's life from its hello.
	Lifetime time.Duration
}

// ICEServer is one STUN or TURN server entry, as in the WebRTC
// RTCIceServer dictionary (and in the JSON of GET /ice-servers).
type ICEServer struct {
	// URLs are stun:, stuns:, turn: or turns: URLs.
	URLs []string `json:"urls"`
	// Username and Credential authenticate with a TURN server.
	Username   string `json:"username,omitempty"`
	Credential string `json:"credential,omitempty"`
}

// Worker is one running worker, as an engine hands it to the front.
type Worker interface {
	// Events delivers the worker's events in order and is closed after the
	// EventEnded event. The reader must keep reading until it is closed.
	Events() <-chan Event
	// AddCandidates applies client ICE candidates, in order (an empty
	// Candidate string means end of candidates). The front calls it only
	// after EventAnswer, never concurrently, and returns when the browser
	// has them.
	AddCandidates(ctx context.Context, cs []Candidate) error
	// Close ends the worker (its peer connection and page) and waits until it
	// is gone; Events then delivers EventEnded and closes. A connected worker
	// ends in order, as one that calls self.close() does: once its data
	// channel has been quiet for a moment (an engine bounds that wait to a
	// few seconds), so that a message in flight either way is answered and
	// delivered before the channel closes. Safe to call more than once and
	// after the worker ended by itself.
	Close(ctx context.Context) error
}

// Candidate is an ICE candidate as it travels in "ice" frames, in both
// directions. An empty Candidate string means end of candidates.
type Candidate struct {
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdpMid,omitempty"`
	SDPMLineIndex    *uint16 `json:"sdpMLineIndex,omitempty"`
	UsernameFragment *string `json:"usernameFragment,omitempty"`
}

// EventKind tells what an Event reports.
type EventKind int

// The kinds of Event, in the order a worker normally produces them.
const (
	// EventAnswer carries the worker's SDP answer (Event.Answer). At most once.
	EventAnswer EventKind = iota + 1
	// EventCandidate carries one ICE candidate the worker gathered.
	EventCandidate
	// EventConnected reports that the worker's end of the data channel is
	// open. At most once, after EventAnswer.
	EventConnected
	// EventEnded is the last event: the worker is gone. Event.Reason says
	// why; Event.Err is set when the worker failed in a way only the engine
	// can tell (its code did not load or run, the offer was refused, the
	// engine failed).
	EventEnded
)

// Event is one thing an engine reports about a worker.
type Event struct {
	Kind      EventKind
	Answer    string    // EventAnswer
	Candidate Candidate // EventCandidate
	Reason    EndReason // EventEnded
	Err       *Error    // EventEnded, when the worker failed
	// Detail is a short human phrase on the end, for the client's reason
	// when the front turns the end into an error (such as "while starting
	// the worker").
	Detail string
	// EgressRefused (EventEnded) counts the network requests the engine's
	// egress policy refused while the worker ran. An engine that cannot
	// tell one worker's requests from another's (gecko: the workers of one
	// token share a browser user context) counts those of every worker in
	// the same context during this worker's life.
	EgressRefused int
}

// EndReason says why a worker or a session ended. The values are recorded
// in the session records and shown by "geckohost sessions".
type EndReason string

// End reasons an engine reports.
const (
	// EndWorkerClosed: the worker called self.close().
	EndWorkerClosed EndReason = "worker-closed"
	// EndPeerClosed: the client closed the data channel or the peer
	// connection closed.
	EndPeerClosed EndReason = "peer-closed"
	// EndIdle: no data-channel message for the engine's idle time.
	EndIdle EndReason = "idle"
	// EndClosed: the front called Worker.Close.
	EndClosed EndReason = "closed"
	// EndShutdown: the engine is closing.
	EndShutdown EndReason = "shutdown"
	// EndBrowserDied: the browser running the worker died.
	EndBrowserDied EndReason = "browser-died"
	// EndTabClosed: the page hosting the worker went away.
	EndTabClosed EndReason = "tab-closed"
	// EndError: the worker failed; Event.Err says how.
	EndError EndReason = "error"
	// EndICEFailed: the worker's peer connection failed (ICE found no
	// working candidate pair, or DTLS failed on the one it found) before
	// the data channel opened. Event.Detail says which ("ICE" or "DTLS").
	EndICEFailed EndReason = "ice-failed"
	// EndContentCrashed: the browser's content process running the worker
	// died (a crash, the OOM killer, a kill) while the browser lived on;
	// every worker of that process (the workers of one token in one
	// browser) ends with it.
	EndContentCrashed EndReason = "content-crashed"
	// EndMemoryLimit: the content process running the worker went past its
	// memory limit and was killed. Event.Detail names the limit.
	EndMemoryLimit EndReason = "memory-limit"
	// EndCPULimit: the worker did not return to its event loop for its
	// busy limit. Event.Detail names the limit.
	EndCPULimit EndReason = "cpu-limit"
	// EndLifetime: the worker reached its maximum lifetime. Event.Detail
	// names the limit.
	EndLifetime EndReason = "lifetime"
)

// LimitEnd reports whether r is the end of a worker that went past one of
// its resource limits (memory, CPU busy time, lifetime): before
// "connected" the front answers it with 205 (WorkerLimitExceeded).
func LimitEnd(r EndReason) bool {
	return r == EndMemoryLimit || r == EndCPULimit || r == EndLifetime
}

// End reasons only the front records.
const (
	// EndClientLeft: the client closed its WebSocket while negotiating.
	EndClientLeft EndReason = "client-left"
	// EndHostRestart: the serve process hosting the session died (killed,
	// crashed, the machine lost power) without recording the session's
	// end; a later serve (or "geckohost sessions") recorded it, at the dead
	// process's last heartbeat.
	EndHostRestart EndReason = "host-restart"
	// EndWorkerGone: the engine closed the worker's events without an
	// EventEnded (an engine's bug).
	EndWorkerGone EndReason = "worker-gone"
)

// endReasonTable says what each end reason means, one row each, in the
// order "geckohost sessions" documents them; the README's end-reason
// table states the same (TestDocsEndReasonTable compares them).
var endReasonTable = []struct {
	reason  EndReason
	meaning string
}{
	{EndWorkerClosed, "the worker called `self.close()`"},
	{EndPeerClosed, "the client closed the data channel, or the peer connection closed (before `connected`: a 305)"},
	{EndIdle, "no data-channel message for `--worker-idle`"},
	{EndClientLeft, "the client closed its WebSocket while negotiating (or while queued)"},
	{EndError, "it failed: the errno and reason columns say how"},
	{EndICEFailed, "the peer connection failed before the data channel opened (errno 305)"},
	{EndShutdown, "`serve` stopped"},
	{EndBrowserDied, "the Firefox running the worker died (before `connected`: a 303; cluster: or its node)"},
	{EndTabClosed, "the worker's page went away (before `connected`: a 303)"},
	{EndContentCrashed, "the content process running the worker died while the browser lived on (before `connected`: a 303)"},
	{EndMemoryLimit, "the worker's content process went past `--worker-memory` and was killed (before `connected`: a 205)"},
	{EndCPULimit, "the worker did not return to its event loop for `--worker-busy-limit` (before `connected`: a 205)"},
	{EndLifetime, "the worker reached `--worker-max-lifetime` (before `connected`: a 205)"},
	{EndClosed, "geckohost closed the worker itself"},
	{EndHostRestart, "the `serve` process running it died (kill -9, a crash, power loss) before it could record the end; recorded later, at its last heartbeat"},
	{EndWorkerGone, "the engine lost track of the worker without saying why (should not happen)"},
}

// EndReasons returns every end reason, in the order of the README's table.
func EndReasons() []EndReason {
	out := make([]EndReason, len(endReasonTable))
	for i, r := range endReasonTable {
		out[i] = r.reason
	}
	return out
}

// Meaning says in one line what the end reason means; "" for one this
// version does not know.
func (r EndReason) Meaning() string {
	for _, row := range endReasonTable {
		if row.reason == r {
			return row.meaning
		}
	}
	return ""
}
