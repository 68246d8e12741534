package host

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"

	"github.com/coder/websocket"

	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/host/wire"
)

// readResult is one frame (or failure) from a client's WebSocket.
type readResult struct {
	frame wire.ClientFrame
	err   error // *engine.Error for a bad frame, else the connection's error
}

// serveWebSocket accepts a signaling WebSocket and runs its session until
// the session's worker is gone.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	if !s.track() {
		http.Error(w, "geckohost is shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.wg.Done()

	origin := r.Header.Get("Origin")
	if origin != "" && !s.originAllowed(r, origin) {
		s.log.Info("websocket refused: origin not allowed", "origin", origin, "remote", r.RemoteAddr)
		http.Error(w, "origin not allowed: start serve with --allow-origin "+origin, http.StatusForbidden)
		return
	}
	// The origin is checked above, with our own rules.
	hj := &hijackTracker{ResponseWriter: w}
	conn, err := websocket.Accept(hj, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		s.log.Debug("websocket accept", "remote", r.RemoteAddr, "err", err)
		return
	}
	conn.SetReadLimit(s.opts.MaxFrame + 1) // we stop at MaxFrame+1 ourselves
	se := newSession(s, r, conn, hj.conn)
	se.run()
}

// hijackTracker keeps the hijacked connection, so that a Shutdown that ran
// out of time can close it under a WebSocket close handshake that waits.
type hijackTracker struct {
	http.ResponseWriter
	conn net.Conn
}

// Hijack implements http.Hijacker.
func (h *hijackTracker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err == nil {
		h.conn = c
	}
	return c, rw, err
}

// Unwrap returns the wrapped ResponseWriter (for http.ResponseController).
func (h *hijackTracker) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// readLoop reads client frames and hands them to the session until the
// connection fails or a frame is bad.
func readLoop(ctx context.Context, conn *websocket.Conn, max int64, out chan<- readResult) {
	for {
		var res readResult
		typ, r, err := conn.Reader(ctx)
		if err != nil {
			res.err = err
		} else if data, err := io.ReadAll(io.LimitReader(r, max+1)); err != nil {
			res.err = err
		} else if int64(len(data)) > max {
			res.err = engine.Errorf(engine.InvalidMessage, "frame larger than %d bytes", max)
		} else if typ != websocket.MessageText {
			res.err = engine.Errorf(engine.InvalidMessage, "binary frame; frames are JSON text")
		} else {
			res.frame, res.err = wire.ParseClientFrame(data)
		}
		select {
		case out <- res:
		case <-ctx.Done():
			return
		}
		if res.err != nil {
			return
		}
	}
}
