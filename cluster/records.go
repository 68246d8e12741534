package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/geckohost/geckohost/domain"
)

// DefaultStreamMax is about how many ended sessions the cluster's stream
// keeps (older ones are trimmed; each node's SQLite keeps its own).
const DefaultStreamMax = 100_000

// maxQueuedRecords bounds the records waiting for Redis (during an outage);
// past it the oldest are dropped from the stream (not from SQLite).
const maxQueuedRecords = 10_000

// SessionRecord is an ended session as the cluster's stream keeps it.
type SessionRecord struct {
	domain.Session
	// Front is the node that held the client's WebSocket; Session.NodeID
	// the node that ran the worker.
	Front string
}

// RecordJSON is a SessionRecord in JSON: the session's one JSON form
// (domain.SessionJSON, every field) and the front node. The cluster's stream
// holds it (field "s" of an entry) and `geckohost sessions --redis --json`
// prints it.
type RecordJSON struct {
	domain.SessionJSON
	// Front is the node that held the client's WebSocket.
	Front string `json:"front"`
}

// JSON returns r in its JSON form.
func (r SessionRecord) JSON() RecordJSON {
	return RecordJSON{SessionJSON: r.Session.JSON(), Front: r.Front}
}

// The fields of a stream entry: streamField holds a RecordJSON;
// legacyField a legacyRecordJSON, as nodes before RecordJSON wrote them.
const (
	streamField = "s"
	legacyField = "r"
)

func encodeRecord(r SessionRecord) ([]byte, error) {
	return json.Marshal(r.JSON())
}

// decodeEntry reads a stream entry of either form.
func decodeEntry(values map[string]any) (SessionRecord, error) {
	if raw, ok := values[streamField].(string); ok {
		var j RecordJSON
		if err := json.Unmarshal([]byte(raw), &j); err != nil {
			return SessionRecord{}, fmt.Errorf("decode session record: %w", err)
		}
		s, err := j.Session()
		if err != nil {
			return SessionRecord{}, fmt.Errorf("decode session record: %w", err)
		}
		return SessionRecord{Session: s, Front: j.Front}, nil
	}
	raw, _ := values[legacyField].(string)
	return decodeLegacyRecord([]byte(raw))
}

// legacyRecordJSON is a SessionRecord as nodes wrote it to the stream before
// RecordJSON (times in unix milliseconds, no egress_refused nor run_id); it
// is only read, so that the stream's older entries still list.
type legacyRecordJSON struct {
	WorkerID   string `json:"worker_id"`
	TokenID    int64  `json:"token_id"`
	TokenName  string `json:"token_name"`
	Source     string `json:"source"`
	RemoteAddr string `json:"remote_addr,omitempty"`
	Origin     string `json:"origin,omitempty"`
	Engine     string `json:"engine,omitempty"`
	State      string `json:"state"`
	Errno      int    `json:"errno,omitempty"`
	Reason     string `json:"reason,omitempty"`
	Created    int64  `json:"created,omitempty"`
	Answered   int64  `json:"answered,omitempty"`
	Connected  int64  `json:"connected,omitempty"`
	Ended      int64  `json:"ended,omitempty"`
	EndReason  string `json:"end_reason,omitempty"`
	Node       string `json:"node"`
	Front      string `json:"front"`
}

func msTime(ms int64) time.Time {
	if ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func decodeLegacyRecord(b []byte) (SessionRecord, error) {
	var j legacyRecordJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return SessionRecord{}, fmt.Errorf("decode session record: %w", err)
	}
	return SessionRecord{Front: j.Front, Session: domain.Session{WorkerID: j.WorkerID, TokenID: j.TokenID, TokenName: j.TokenName,
		Source: j.Source, RemoteAddr: j.RemoteAddr, Origin: j.Origin, Engine: j.Engine, State: j.State, Errno: j.Errno,
		Reason: j.Reason, Created: msTime(j.Created), Answered: msTime(j.Answered), Connected: msTime(j.Connected),
		Ended: msTime(j.Ended), EndReason: j.EndReason, NodeID: j.Node}}, nil
}

// SaveSession implements domain.Store: the record names the node that ran
// the worker (Session.NodeID) and its engine (Session.Engine, where that
// node published one: a cluster's nodes may run different engines) and goes to the node's SQLite (Options.
// Records; without the token id, which is the cluster's, not that file's);
// an ended session is also appended to the cluster's stream.
func (n *Node) SaveSession(ctx context.Context, s domain.Session) error {
	n.mu.Lock()
	pl := n.placed[s.WorkerID]
	if s.State == domain.StateEnded {
		delete(n.placed, s.WorkerID)
	}
	n.mu.Unlock()
	if pl.node == "" {
		pl.node = n.opts.ID
	}
	s.NodeID = pl.node
	if pl.engine != "" {
		s.Engine = pl.engine
	}
	if s.State == domain.StateEnded {
		n.records.put(SessionRecord{Session: s, Front: n.opts.ID})
	}
	if n.opts.Records == nil {
		return nil
	}
	s.TokenID = 0 // the tokens table of this node's SQLite does not have it
	return n.opts.Records.SaveSession(ctx, s)
}

// streamLoop appends the ended sessions to the stream.
func (n *Node) streamLoop() {
	defer n.wg.Done()
	var queue []SessionRecord
	t := time.NewTicker(n.opts.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.records.signal():
		case <-t.C:
		}
		queue = append(queue, n.records.take()...)
		if len(queue) > maxQueuedRecords {
			n.log.Warn("session records dropped from the cluster stream", "node", n.opts.ID, "count", len(queue)-maxQueuedRecords)
			queue = queue[len(queue)-maxQueuedRecords:]
		}
		if len(queue) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(n.ctx, opTimeout)
		err := n.appendRecords(ctx, queue)
		cancel()
		if err == nil {
			queue = nil
		}
	}
}

// flushRecords appends what is queued (at Close).
func (n *Node) flushRecords(ctx context.Context) {
	if q := n.records.take(); len(q) > 0 {
		if err := n.appendRecords(ctx, q); err != nil {
			n.log.Warn("session records not appended to the cluster stream", "node", n.opts.ID, "count", len(q), "err", err)
		}
	}
}

func (n *Node) appendRecords(ctx context.Context, recs []SessionRecord) error {
	pipe := n.c.rdb.Pipeline()
	for _, r := range recs {
		b, err := encodeRecord(r)
		if err != nil {
			continue
		}
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: keySessions, MaxLen: n.opts.StreamMax, Approx: true, Values: []any{streamField, b}})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return unreachable("append session records", err)
	}
	return nil
}

// Sessions returns the cluster's ended sessions matching f, newest first
// (by Created; a session recorded twice, once by its client's node and
// once by a worker's node that outlived it, is shown once, the later
// record).
func (c *Client) Sessions(ctx context.Context, f domain.SessionFilter) ([]SessionRecord, error) {
	if f.Limit < 0 {
		return nil, fmt.Errorf("list sessions: negative limit %d: %w", f.Limit, domain.ErrInvalid)
	}
	if f.Limit == 0 {
		f.Limit = 50
	}
	seen := map[string]bool{}
	var out []SessionRecord
	end := "+"
	for len(out) < f.Limit {
		batch, err := c.rdb.XRevRangeN(ctx, keySessions, end, "-", 500).Result()
		if err != nil {
			return nil, fmt.Errorf("list sessions: %w", unreachable("read the stream", err))
		}
		for _, m := range batch {
			end = "(" + m.ID
			r, err := decodeEntry(m.Values)
			if err != nil || seen[r.WorkerID] {
				continue
			}
			seen[r.WorkerID] = true
			if f.TokenName != "" && r.TokenName != f.TokenName {
				continue
			}
			out = append(out, r)
			if len(out) == f.Limit {
				break
			}
		}
		if len(batch) < 500 {
			break
		}
	}
	slices.SortStableFunc(out, func(a, b SessionRecord) int {
		at, bt := a.Created, b.Created
		if at.IsZero() {
			at = a.Ended
		}
		if bt.IsZero() {
			bt = b.Ended
		}
		return bt.Compare(at)
	})
	return out, nil
}
