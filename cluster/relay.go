package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/geckohost/geckohost/engine"
)

// The relay: each node subscribes to its own channel (relayChannel(id))
// and every message names its session by the worker id. The client's node
// (the "front") sends start, cands, close and detach to the worker's node;
// that node answers started or refused, then events (the worker's answer,
// candidates, connected and end, in order, batched), or gone when it does
// not know the session. One goroutine per session and direction publishes,
// each message after the previous one was accepted, so they arrive in
// order.
const (
	msgStart   = "start"   // front → worker's node: run this worker
	msgCands   = "cands"   // front → worker's node: client candidates
	msgClose   = "close"   // front → worker's node: close the worker
	msgDetach  = "detach"  // front → worker's node: the front goes away; keep the connected worker
	msgStarted = "started" // worker's node → front: the worker exists
	msgRefused = "refused" // worker's node → front: it does not (Err says why)
	msgEvents  = "events"  // worker's node → front: worker events
	msgGone    = "gone"    // worker's node → front: no such session here

	// Internal messages, never published.
	msgFrontLost = "front-lost" // the front left the registry
	msgStop      = "stop"       // the node closes
	msgDetached  = "detached"   // the front's Close detached the worker
	msgCut       = "cut"        // the worker's node cannot be told anything
)

// message is one relay message (JSON on the channel).
type message struct {
	Type   string             `json:"t"`
	SID    string             `json:"s"`
	From   string             `json:"f"`
	Start  *startMsg          `json:"start,omitempty"`
	Cands  []engine.Candidate `json:"c,omitempty"`
	Events []eventMsg         `json:"e,omitempty"`
	Err    *errMsg            `json:"err,omitempty"`
}

type startMsg struct {
	TokenID   int64  `json:"token_id"`
	TokenName string `json:"token_name"`
	Source    string `json:"source"`
	Code      string `json:"code"`
	Offer     string `json:"offer"`
	// Deadline is when the front gives up waiting for the answer (unix ms).
	Deadline int64 `json:"deadline"`
	// MemoryLimit (bytes) and LifetimeMS are the token's own limits (0:
	// the running node's).
	MemoryLimit int64 `json:"memory_limit,omitempty"`
	LifetimeMS  int64 `json:"lifetime_ms,omitempty"`
}

type eventMsg struct {
	Kind      string            `json:"k"`
	Answer    string            `json:"answer,omitempty"`
	Candidate *engine.Candidate `json:"cand,omitempty"`
	Reason    string            `json:"reason,omitempty"`
	Err       *errMsg           `json:"err,omitempty"`
	Detail    string            `json:"detail,omitempty"`
	Egress    int               `json:"egress,omitempty"`
}

type errMsg struct {
	Errno  int    `json:"errno"`
	Reason string `json:"reason"`
	// NoCapacity: the node is full or its browsers are starting (it may
	// take the worker later; engine.ErrNoCapacity).
	NoCapacity bool `json:"no_capacity,omitempty"`
}

func toErrMsg(e *engine.Error) *errMsg {
	if e == nil {
		return nil
	}
	return &errMsg{Errno: int(e.Errno), Reason: e.Reason}
}

// startErrMsg is the refusal for a local StartWorker error.
func startErrMsg(node string, err error) *errMsg {
	m := toErrMsg(startError(node, err))
	m.NoCapacity = errors.Is(err, engine.ErrNoCapacity)
	return m
}

func (m *errMsg) engineError() *engine.Error {
	if m == nil {
		return nil
	}
	return &engine.Error{Errno: engine.Errno(m.Errno), Reason: m.Reason}
}

// refusal is the error of a refused start: the *engine.Error, with
// engine.ErrNoCapacity beside it when the node may take it later.
func (m *errMsg) refusal() error {
	e := m.engineError()
	if m.NoCapacity {
		return fmt.Errorf("%w: %w", engine.ErrNoCapacity, e)
	}
	return e
}

var kindNames = map[engine.EventKind]string{
	engine.EventAnswer: "answer", engine.EventCandidate: "candidate",
	engine.EventConnected: "connected", engine.EventEnded: "ended",
}

func toEventMsg(ev engine.Event) eventMsg {
	m := eventMsg{Kind: kindNames[ev.Kind], Answer: ev.Answer, Reason: string(ev.Reason), Err: toErrMsg(ev.Err), Detail: ev.Detail, Egress: ev.EgressRefused}
	if ev.Kind == engine.EventCandidate {
		c := ev.Candidate
		m.Candidate = &c
	}
	return m
}

func (m eventMsg) event() (engine.Event, bool) {
	ev := engine.Event{Answer: m.Answer, Reason: engine.EndReason(m.Reason), Err: m.Err.engineError(), Detail: m.Detail, EgressRefused: m.Egress}
	for k, name := range kindNames {
		if name == m.Kind {
			ev.Kind = k
		}
	}
	if m.Candidate != nil {
		ev.Candidate = *m.Candidate
	}
	return ev, ev.Kind != 0
}

// send publishes m to node's channel and returns how many subscribers got
// it (0: the node is not listening).
func (n *Node) send(ctx context.Context, node string, m message) (int64, error) {
	m.From = n.opts.ID
	b, err := json.Marshal(m)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	got, err := n.c.rdb.Publish(ctx, relayChannel(node), b).Result()
	if err != nil {
		return 0, unreachable("relay to node "+node, err)
	}
	return got, nil
}

// subscribeLoop receives the node's relay messages until Close, and
// re-subscribes after Redis comes back. subscribed is closed at the first
// subscription.
func (n *Node) subscribeLoop(subscribed chan<- struct{}) {
	defer n.wg.Done()
	ps := n.c.rdb.Subscribe(n.ctx, relayChannel(n.opts.ID))
	// A blocked read does not watch the context: closing the connection
	// ends it.
	stopClose := context.AfterFunc(n.ctx, func() { _ = ps.Close() })
	defer func() {
		if stopClose() {
			_ = ps.Close()
		}
	}()
	first := true
	pause := 50 * time.Millisecond
	for n.ctx.Err() == nil {
		msg, err := ps.ReceiveTimeout(n.ctx, 2*time.Second)
		if err != nil {
			if n.ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Idle: check that the connection still works.
				pctx, cancel := context.WithTimeout(n.ctx, opTimeout)
				perr := ps.Ping(pctx)
				cancel()
				if perr == nil {
					continue
				}
				err = perr
			}
			n.subscribed.Store(false)
			n.setHealth(unreachable("receive relay messages", err))
			select {
			case <-n.ctx.Done():
				return
			case <-time.After(pause):
			}
			pause = min(2*pause, time.Second)
			continue
		}
		pause = 50 * time.Millisecond
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				n.subscribed.Store(true)
				if first {
					first = false
					close(subscribed)
				}
			}
		case *redis.Message:
			n.dispatch([]byte(m.Payload))
		}
	}
}

// maxRelayMessage bounds one relay message (a start carries the worker's
// code, at most 4 MiB, and the offer).
const maxRelayMessage = 8 << 20

// errBadMessage: a relay message that is not one.
var errBadMessage = errors.New("bad relay message")

// decodeMessage parses one relay message from Redis.
func decodeMessage(b []byte) (message, error) {
	var m message
	if len(b) > maxRelayMessage {
		return message{}, fmt.Errorf("%w: %d bytes", errBadMessage, len(b))
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return message{}, fmt.Errorf("%w: %v", errBadMessage, err)
	}
	if m.SID == "" || m.From == "" || m.Type == "" {
		return message{}, fmt.Errorf("%w: no type, session or sender", errBadMessage)
	}
	if m.Type == msgStart && m.Start == nil {
		return message{}, fmt.Errorf("%w: a start without its request", errBadMessage)
	}
	return m, nil
}

// dispatch hands one relay message to its session; it never blocks.
func (n *Node) dispatch(b []byte) {
	m, err := decodeMessage(b)
	if err != nil {
		n.log.Warn("bad relay message", "node", n.opts.ID, "err", err)
		return
	}
	switch m.Type {
	case msgStart:
		n.serveStart(m)
	case msgCands, msgClose, msgDetach:
		n.mu.Lock()
		sv := n.served[servedKey(m.From, m.SID)]
		n.mu.Unlock()
		if sv == nil {
			if m.Type != msgDetach {
				n.reply(m.From, message{Type: msgGone, SID: m.SID})
			}
			return
		}
		sv.post(m)
	case msgStarted, msgRefused, msgEvents, msgGone:
		n.mu.Lock()
		rw := n.remotes[m.SID]
		n.mu.Unlock()
		if rw == nil || rw.node != m.From {
			if m.Type == msgStarted || m.Type == msgEvents {
				// The front gave up on this worker: have it closed.
				n.reply(m.From, message{Type: msgClose, SID: m.SID})
			}
			return
		}
		rw.post(m)
	default:
		n.log.Debug("unknown relay message", "node", n.opts.ID, "type", m.Type)
	}
}

// reply publishes m to node from a goroutine of its own (dispatch must not
// wait for Redis).
func (n *Node) reply(node string, m message) {
	n.spawn(func() {
		if _, err := n.send(n.ctx, node, m); err != nil {
			n.log.Debug("relay reply", "node", n.opts.ID, "to", node, "type", m.Type, "err", err)
		}
	})
}
