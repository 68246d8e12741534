package host

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/engine"
)

// Session states, as recorded.
const (
	stateNegotiating = domain.StateNegotiating
	stateAnswered    = domain.StateAnswered
	stateConnected   = domain.StateConnected
	stateEnded       = domain.StateEnded
)

// session is one signaling WebSocket and, once it has one, its worker. One
// goroutine (the WebSocket's handler) drives it from the accept to the
// worker's end, in one loop (session.loop): the negotiation, the relay,
// and the record. Its fields are that goroutine's alone.
type session struct {
	s      *Server
	r      *http.Request
	remote string
	origin string

	ctx     context.Context // cancelled when the session's goroutine returns or Shutdown runs out of time
	cancel  context.CancelFunc
	conn    *websocket.Conn // nil once closed
	netConn net.Conn        // the hijacked connection (for a hard stop)
	frames  chan readResult // from readLoop; nil once the WebSocket is closed
	readers sync.WaitGroup  // readLoop

	worker  engine.Worker
	closing bool           // the worker was asked to close
	closers sync.WaitGroup // the goroutine running worker.Close

	// ICE as seen in the signaling (for a 305's reason), and whether the
	// client is on this machine (else loopback candidates are withheld
	// both ways).
	clientICE, workerICE offered
	localClient          bool

	// ls is the state of the session's loop (negotiate.go).
	ls loopState
	// active is the session's state in geckohost_sessions_active.
	active string

	// The record.
	id        string
	token     domain.Token
	recorded  bool // the session has a record (from the hello on, unless quiet)
	quiet     bool // a failed hello past the burst (hellofail.go): no record, no info line
	counted   bool // counted by the Limiter
	source    string
	helloAt   time.Time
	answerAt  time.Time
	connectAt time.Time
	state     string
	errno     engine.Errno
	reason    string
	endReason engine.EndReason
	// egressRefused counts the worker's requests the engine refused.
	egressRefused int
}

func newSession(s *Server, r *http.Request, conn *websocket.Conn, netConn net.Conn) *session {
	ctx, cancel := context.WithCancel(s.ctx)
	return &session{
		s: s, r: r, remote: r.RemoteAddr, origin: r.Header.Get("Origin"), localClient: isLoopbackAddr(r.RemoteAddr),
		ctx: ctx, cancel: cancel, conn: conn, netConn: netConn,
		frames: make(chan readResult), state: stateNegotiating,
	}
}

// run runs the session to its end.
func (se *session) run() {
	// When Shutdown runs out of time (s.ctx cancelled), close the TCP
	// connection: a close handshake may otherwise wait for seconds.
	stopForce := func() bool { return false }
	if se.netConn != nil {
		stopForce = context.AfterFunc(se.ctx, func() { _ = se.netConn.Close() })
	}
	conn, frames := se.conn, se.frames
	se.readers.Add(1)
	go func() {
		defer se.readers.Done()
		readLoop(se.ctx, conn, se.s.opts.MaxFrame, frames)
	}()
	defer func() {
		stopForce()
		se.cancel()
		_ = conn.CloseNow() // no-op after a Close
		se.readers.Wait()
		se.closers.Wait()
	}()
	se.loop()
	se.finish()
}

// record returns the session's record.
func (se *session) record() domain.Session {
	return domain.Session{
		WorkerID:   se.id,
		TokenID:    se.token.ID,
		TokenName:  se.token.Name,
		Source:     se.source,
		RemoteAddr: se.remote,
		Origin:     se.origin,
		Engine:     se.s.opts.EngineName,
		State:      se.state,
		Errno:      int(se.errno),
		Reason:     se.reason,
		Created:    se.helloAt,
		Answered:   se.answerAt,
		Connected:  se.connectAt,
		// EgressRefused: see engine.Event.EgressRefused.
		EgressRefused: se.egressRefused,
		RunID:         se.s.opts.RunID,
	}
}

// save queues the current record, once the hello was read.
func (se *session) save() {
	if se.recorded {
		se.s.rec.save(se.record())
	}
}

// finish writes the final record, releases the token's worker count, and
// logs the session's one info line.
func (se *session) finish() {
	s := se.s
	if se.endReason == "" {
		se.endReason = engine.EndError
	}
	se.state = stateEnded
	se.countEnd()
	if se.worker != nil {
		s.queue.wake() // its place in a browser is free
	}
	rec := se.record()
	rec.Ended = time.Now()
	rec.EndReason = string(se.endReason)
	if se.recorded {
		s.rec.save(rec)
	}
	if se.counted {
		s.limiter.Release(se.token, se.id)
	}
	if se.id == "" || se.quiet {
		return // no hello (or one of a flood of failures): nothing worth a line
	}
	attrs := []any{"worker", se.id, "token", rec.TokenName, "errno", rec.Errno, "end", rec.EndReason}
	if rec.Errno != 0 {
		reason := rec.Reason
		if engine.Errno(rec.Errno) == engine.PeerConnectionFailed {
			// A 305's reason names the candidates' addresses: those stay at
			// debug level.
			s.log.Debug("peer connection failed", "worker", se.id, "reason", rec.Reason)
			reason = "ICE or DTLS failed (the candidates each side offered are logged at debug level)"
		}
		attrs = append(attrs, "reason", reason)
	}
	if !rec.Answered.IsZero() {
		attrs = append(attrs, "hello_to_answer", rec.Answered.Sub(rec.Created))
	}
	if !rec.Connected.IsZero() {
		attrs = append(attrs, "answer_to_connected", rec.Connected.Sub(rec.Answered))
	}
	if rec.EgressRefused > 0 {
		attrs = append(attrs, "egress_refused", rec.EgressRefused)
	}
	attrs = append(attrs, "total", rec.Ended.Sub(rec.Created))
	s.log.Info("session ended", attrs...)
}
