package bidi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// readLimit bounds one incoming message; large RemoteValues (SDP, strings
// sent from pages) must fit.
const readLimit = 64 << 20

// writeTimeout bounds writing one command. Writes do not use the caller's
// context: coder/websocket closes the whole connection when a write's
// context ends mid-frame.
const writeTimeout = 10 * time.Second

// Options configures Dial. The zero value works.
type Options struct {
	// Logger receives protocol traffic at debug level and connection
	// events. nil discards.
	Logger *slog.Logger
}

// Event is one BiDi event, as delivered to the OnEvent callback.
type Event struct {
	// Method is the event name, such as "script.message".
	Method string
	// Params is the event's parameters object.
	Params json.RawMessage
}

// response is what the read loop hands to a waiting Call.
type response struct {
	result json.RawMessage
	err    error
}

// Conn is a WebDriver BiDi connection. It is safe for concurrent use.
type Conn struct {
	ws  *websocket.Conn
	log *slog.Logger

	nextID  atomic.Uint64
	onEvent atomic.Pointer[func(Event)]

	mu      sync.Mutex
	pending map[uint64]chan response
	err     error // set once, when the read loop ends

	done      chan struct{} // closed when the read loop has ended
	closeOnce sync.Once
}

// Dial opens a BiDi WebSocket at wsURL (for Firefox "ws://127.0.0.1:PORT/session")
// and starts its read loop. It does not send session.new; see NewSession.
func Dial(ctx context.Context, wsURL string, opts Options) (*Conn, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &net.Dialer{}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return wrapConn(c), nil
		},
	}
	ws, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		return nil, fmt.Errorf("dial bidi %s: %w", wsURL, err)
	}
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	ws.SetReadLimit(readLimit)
	c := &Conn{
		ws:      ws,
		log:     log,
		pending: make(map[uint64]chan response),
		done:    make(chan struct{}),
	}
	go c.readLoop()
	return c, nil
}

// OnEvent sets the function that receives every event. Set it before
// Subscribe. fn is called from the connection's single read goroutine, in
// the order events arrive, and must not block (hand work to a goroutine or a
// buffered channel). A later call replaces fn; nil drops events.
func (c *Conn) OnEvent(fn func(Event)) {
	if fn == nil {
		c.onEvent.Store(nil)
		return
	}
	c.onEvent.Store(&fn)
}

// Done returns a channel closed when the connection is gone: the socket was
// closed by either side, or reading failed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended (an error wrapping ErrClosed), or nil
// while it is open.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close closes the socket and waits for the read loop to end. Pending calls
// fail with an error wrapping ErrClosed. It is idempotent and always returns
// nil: a socket whose peer is already gone is simply released.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		if err := c.ws.Close(websocket.StatusNormalClosure, ""); err != nil {
			_ = c.ws.CloseNow()
		}
	})
	<-c.done
	return nil
}

// Call sends the command method with params (marshalled to JSON; nil sends
// {}) and waits for its response, decoding the result into result unless
// result is nil. An error response is returned as *Error. When ctx ends
// first, Call stops waiting and returns ctx's error (the command may still
// run remotely). When the connection is lost, the error wraps ErrClosed.
func (c *Conn) Call(ctx context.Context, method string, params, result any) error {
	raw, err := c.call(ctx, method, params)
	if err != nil {
		return err
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(raw, result); err != nil {
		return fmt.Errorf("decode %s result: %w", method, err)
	}
	return nil
}

type command struct {
	ID     uint64 `json:"id"`
	Method string `json:"method"`
	Params any    `json:"params"`
}

func (c *Conn) call(ctx context.Context, method string, params any) (json.RawMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("call %s: %w", method, err)
	}
	if params == nil {
		params = struct{}{}
	}
	id := c.nextID.Add(1)
	msg, err := json.Marshal(command{ID: id, Method: method, Params: params})
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", method, err)
	}
	ch := make(chan response, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, fmt.Errorf("call %s: %w", method, err)
	}
	c.pending[id] = ch
	c.mu.Unlock()

	c.log.Debug("bidi send", "id", id, "method", method, "bytes", len(msg))
	wctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	err = c.ws.Write(wctx, websocket.MessageText, msg)
	cancel()
	if err != nil {
		c.forget(id)
		if cerr := c.Err(); cerr != nil {
			return nil, fmt.Errorf("call %s: %w", method, cerr)
		}
		return nil, fmt.Errorf("call %s: %w: %w", method, ErrClosed, err)
	}

	select {
	case r := <-ch:
		if r.err != nil {
			var be *Error
			if errors.As(r.err, &be) {
				be.Method = method
				return nil, be
			}
			return nil, fmt.Errorf("call %s: %w", method, r.err)
		}
		return r.result, nil
	case <-ctx.Done():
		c.forget(id)
		return nil, fmt.Errorf("call %s: %w", method, ctx.Err())
	}
}

func (c *Conn) forget(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

func (c *Conn) readLoop() {
	var err error
	defer func() { c.finish(err) }()
	for {
		var typ websocket.MessageType
		var data []byte
		typ, data, err = c.ws.Read(context.Background())
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			c.log.Warn("bidi: ignoring binary message", "bytes", len(data))
			continue
		}
		m, derr := decodeMessage(data)
		if derr != nil {
			c.log.Warn("bidi: ignoring malformed message", "err", derr)
			continue
		}
		c.dispatch(m)
	}
}

func (c *Conn) dispatch(m message) {
	switch m.kind {
	case kindEvent:
		c.log.Debug("bidi event", "method", m.method)
		if fn := c.onEvent.Load(); fn != nil {
			(*fn)(Event{Method: m.method, Params: m.params})
		}
	case kindSuccess, kindError:
		if !m.hasID {
			// An error without an id: the remote end could not parse a
			// command of ours. Nothing to route it to.
			c.log.Warn("bidi: error without command id", "code", m.errCode, "message", m.errMessage)
			return
		}
		c.mu.Lock()
		ch, ok := c.pending[m.id]
		delete(c.pending, m.id)
		c.mu.Unlock()
		if !ok {
			c.log.Debug("bidi: response to a forgotten command", "id", m.id)
			return
		}
		if m.kind == kindError {
			ch <- response{err: &Error{Code: m.errCode, Message: m.errMessage, Stacktrace: m.stacktrace}}
			return
		}
		ch <- response{result: m.result}
	}
}

// finish records why the read loop ended, fails every pending call and
// closes done.
func (c *Conn) finish(readErr error) {
	err := fmt.Errorf("%w: %w", ErrClosed, readErr)
	if readErr == nil {
		err = ErrClosed
	}
	c.mu.Lock()
	c.err = err
	pending := c.pending
	c.pending = make(map[uint64]chan response)
	c.mu.Unlock()
	for _, ch := range pending {
		ch <- response{err: err}
	}
	_ = c.ws.CloseNow()
	c.log.Debug("bidi connection ended", "err", readErr)
	close(c.done)
}
