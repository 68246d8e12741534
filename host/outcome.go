package host

import (
	"context"
	"errors"

	"github.com/coder/websocket"

	"github.com/geckohost/geckohost/engine"
)

// How a session ends. Whatever ends a session (a failure host or the
// engine named, a StartWorker error, the worker's end, the client leaving,
// shutdown) is an ending; session.outcome, the one place that decides,
// turns it into the errno, the reason, the end reason and the close code
// the client and the record see. Engines report facts (the worker ended,
// why, with detail); host alone decides the errno.

// Close codes the host uses after a worker-error frame: 1008 (policy
// violation) for the client's errors (1xx), 1001 (going away) for 304, and
// 1011 (internal error) for the worker's and the engine's errors (2xx, 3xx).
// After "connected" it closes with 1000.
const (
	closeClientError = websocket.StatusPolicyViolation
	closeGoingAway   = websocket.StatusGoingAway
	closeServerError = websocket.StatusInternalError
)

// endingKind tells what ended a session.
type endingKind int

const (
	endFailed       endingKind = iota + 1 // ending.err: a failure already named (admission, fetch, a bad frame, a timeout, the queue)
	endStartFailed                        // ending.startErr: Engine.StartWorker failed
	endWorker                             // ending.ev: the worker's EventEnded
	endClientLeft                         // the client closed its WebSocket (or a write to it failed)
	endNoAnswer                           // no answer within Options.AnswerTimeout (ending.while: what the session was doing)
	endNotConnected                       // no "connected" within Options.ConnectTimeout of the answer
	endStop                               // Shutdown began
	endHardStop                           // Shutdown ran out of time
)

// ending is what happened that ends a session.
type ending struct {
	kind     endingKind
	err      *engine.Error
	startErr error
	ev       engine.Event
	while    string
}

// failure is the ending of a failure host (or the engine, for a frame or a
// fetch) named with its errno.
func failure(e *engine.Error) ending { return ending{kind: endFailed, err: e} }

// outcome is how a session ends: the record's errno, reason and end
// reason, and the close code the client's WebSocket is closed with after
// the worker-error frame (0: no frame, the connection is dropped, as for
// a client that left or a hard stop; after "connected" the WebSocket is
// already closed).
type outcome struct {
	errno  engine.Errno
	reason string
	end    engine.EndReason
	code   websocket.StatusCode
}

// earlyEnd is what the client is told about a worker that ended by itself
// before "connected": the errno, and the reason's phrase (the engine's
// detail and the end reason follow it).
type earlyEnd struct {
	errno engine.Errno
	what  string
}

// earlyEnds maps the end reason of a worker that ended before "connected"
// without an error of its own to the client's errno: one row per end
// reason. An end reason not here is a 303.
var earlyEnds = map[engine.EndReason]earlyEnd{
	engine.EndShutdown:       {engine.ShuttingDown, "geckohost is shutting down"},
	engine.EndBrowserDied:    {engine.GeckoCrashed, "the browser running the worker died"},
	engine.EndTabClosed:      {engine.GeckoCrashed, "the worker's page was closed"},
	engine.EndContentCrashed: {engine.GeckoCrashed, "the browser's content process running the worker died"},
	engine.EndMemoryLimit:    {engine.WorkerLimitExceeded, "the worker went past a resource limit:"},
	engine.EndCPULimit:       {engine.WorkerLimitExceeded, "the worker went past a resource limit:"},
	engine.EndLifetime:       {engine.WorkerLimitExceeded, "the worker went past a resource limit:"},
	engine.EndWorkerClosed:   {engine.UncaughtExceptionInWorkerCode, "the worker closed itself before the data channel opened"},
	engine.EndPeerClosed:     {engine.PeerConnectionFailed, "the worker's peer connection closed before the data channel opened"},
	engine.EndICEFailed:      {engine.PeerConnectionFailed, ""}, // the reason is peerFailed's
}

// outcome decides how the session ends for what happened: the one place
// that maps an ending to the errno, the end reason and the close code.
// After "connected" only the record is left to decide (errno 0 unless the
// engine named a failure).
func (se *session) outcome(what ending) outcome {
	connected := se.ls.phase == phaseConnected
	switch what.kind {
	case endHardStop:
		return outcome{errno: engine.ShuttingDown, reason: "geckohost stopped", end: engine.EndShutdown}
	case endClientLeft:
		return outcome{end: engine.EndClientLeft}
	case endStop:
		if connected {
			return outcome{end: engine.EndShutdown}
		}
		return failedOutcome(shuttingDown())
	case endStartFailed:
		return failedOutcome(se.s.startError(what.startErr))
	case endNoAnswer:
		return failedOutcome(se.s.noAnswer(what.while))
	case endNotConnected:
		return failedOutcome(engine.Errorf(engine.GeckoTimeout, "not connected within %s of the answer", se.s.opts.ConnectTimeout))
	case endWorker:
		return se.workerOutcome(what.ev, connected)
	}
	return failedOutcome(what.err)
}

// failedOutcome is the outcome of a failure sent to the client as e.
func failedOutcome(e *engine.Error) outcome {
	o := outcome{errno: e.Errno, reason: e.Reason, end: engine.EndError, code: closeServerError}
	switch {
	case e.Errno == engine.ShuttingDown:
		o.end, o.code = engine.EndShutdown, closeGoingAway
	case e.Errno < 200:
		o.code = closeClientError
	}
	return o
}

// workerOutcome is the outcome of the worker's end (ev): after "connected"
// its reason as recorded; before, the error the client is told.
func (se *session) workerOutcome(ev engine.Event, connected bool) outcome {
	if connected {
		switch {
		case ev.Err != nil:
			return outcome{errno: ev.Err.Errno, reason: ev.Err.Reason, end: engine.EndError}
		case ev.Reason == "":
			return outcome{end: engine.EndWorkerClosed}
		}
		return outcome{end: ev.Reason}
	}
	o := failedOutcome(endedError(ev, &se.workerICE, &se.clientICE))
	if ev.Err == nil && ev.Reason != "" && o.errno != engine.ShuttingDown {
		o.end = ev.Reason
	}
	return o
}

// endedError is what the client is told when its worker ended before it was
// connected; worker and client are the candidates each side offered (for
// a 305).
func endedError(ev engine.Event, worker, client *offered) *engine.Error {
	if ev.Err != nil {
		return ev.Err
	}
	detail := ""
	if ev.Detail != "" {
		detail = " " + ev.Detail
	}
	why := string(ev.Reason)
	if why == "" {
		why = "no reason given"
	}
	row, ok := earlyEnds[ev.Reason]
	switch {
	case !ok:
		return engine.Errorf(engine.GeckoCrashed, "the worker ended before it was connected (%s)%s", why, detail)
	case ev.Reason == engine.EndICEFailed:
		return engine.Errorf(engine.PeerConnectionFailed, "%s", peerFailed(ev.Detail, worker, client))
	case row.errno == engine.PeerConnectionFailed:
		return engine.Errorf(row.errno, "%s%s (%s); the worker offered %s, the client offered %s", row.what, detail, why, worker, client)
	}
	return engine.Errorf(row.errno, "%s%s (%s)", row.what, detail, why)
}

// shuttingDown is the 304 a session gets when the host stops before it is
// connected.
func shuttingDown() *engine.Error {
	return engine.Errorf(engine.ShuttingDown, "geckohost is shutting down")
}

// noAnswer is the 302 of a hello with no answer within the answer timeout;
// while says what the session was doing ("" once the engine has the
// worker).
func (s *Server) noAnswer(while string) *engine.Error {
	if while != "" {
		while = " (" + while + ")"
	}
	return engine.Errorf(engine.GeckoTimeout, "no answer from the gecko within %s of the hello%s", s.opts.AnswerTimeout, while)
}

// startError maps a StartWorker error to the client's error: 304 while
// the host stops (or the engine closed), 303 when what took the request
// died (engine.ErrWorkerLost), a *engine.Error in the chain as is, a
// deadline as 302, else 301.
func (s *Server) startError(err error) *engine.Error {
	var we *engine.Error
	switch {
	case errors.Is(err, engine.ErrClosed), s.stopCtx.Err() != nil && !errors.As(err, &we):
		return shuttingDown()
	case errors.Is(err, engine.ErrWorkerLost):
		return engine.Errorf(engine.GeckoCrashed, "the browser running the worker died before it started (%v)", err)
	case errors.As(err, &we):
		return we
	case errors.Is(err, context.DeadlineExceeded):
		return s.noAnswer("")
	}
	return engine.Errorf(engine.NoGeckoAvailable, "no gecko could take the worker: %v", err)
}
