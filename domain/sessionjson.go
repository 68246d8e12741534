package domain

import (
	"fmt"
	"time"
)

// SessionJSON is a session record in JSON: the one form of `geckohost sessions
// --json`, of `sessions --redis --json` and of the cluster's session stream.
// Times are RFC 3339 UTC (with their milliseconds), null when they did not
// happen; durations are in milliseconds, null when the later event did not
// happen.
type SessionJSON struct {
	WorkerID   string  `json:"worker_id"`
	TokenID    int64   `json:"token_id"`
	TokenName  string  `json:"token_name"`
	Source     string  `json:"source"`
	RemoteAddr string  `json:"remote_addr"`
	Origin     string  `json:"origin"`
	Engine     string  `json:"engine"`
	State      string  `json:"state"`
	Errno      int     `json:"errno"`
	Reason     string  `json:"reason"`
	Created    *string `json:"created"`
	Answered   *string `json:"answered"`
	Connected  *string `json:"connected"`
	Ended      *string `json:"ended"`
	EndReason  string  `json:"end_reason"`
	// EgressRefused: the worker's network requests the egress policy
	// refused (counted per token browser context; see the README).
	EgressRefused int `json:"egress_refused"`
	// NodeID: cluster mode, the node that ran the worker.
	NodeID string `json:"node_id"`
	// RunID: the serve run that hosted the session.
	RunID string `json:"run_id"`
	// AnswerMS is created → answered.
	AnswerMS *int64 `json:"answer_ms"`
	// ConnectMS is answered → connected.
	ConnectMS *int64 `json:"connect_ms"`
	// DurationMS is created → ended.
	DurationMS *int64 `json:"duration_ms"`
}

// JSON returns s in its JSON form; SessionJSON.Session is its inverse.
func (s Session) JSON() SessionJSON {
	return SessionJSON{WorkerID: s.WorkerID, TokenID: s.TokenID, TokenName: s.TokenName,
		Source: s.Source, RemoteAddr: s.RemoteAddr, Origin: s.Origin, Engine: s.Engine, State: s.State,
		Errno: s.Errno, Reason: s.Reason, Created: JSONTime(s.Created), Answered: JSONTime(s.Answered),
		Connected: JSONTime(s.Connected), Ended: JSONTime(s.Ended), EndReason: s.EndReason,
		EgressRefused: s.EgressRefused, NodeID: s.NodeID, RunID: s.RunID,
		AnswerMS: millisBetween(s.Created, s.Answered), ConnectMS: millisBetween(s.Answered, s.Connected),
		DurationMS: millisBetween(s.Created, s.Ended)}
}

// Session returns the record j is the JSON form of (the durations, derived,
// are not read). It fails on a time that is not RFC 3339.
func (j SessionJSON) Session() (Session, error) {
	s := Session{WorkerID: j.WorkerID, TokenID: j.TokenID, TokenName: j.TokenName, Source: j.Source,
		RemoteAddr: j.RemoteAddr, Origin: j.Origin, Engine: j.Engine, State: j.State, Errno: j.Errno,
		Reason: j.Reason, EndReason: j.EndReason, EgressRefused: j.EgressRefused, NodeID: j.NodeID, RunID: j.RunID}
	for _, f := range []struct {
		in  *string
		out *time.Time
	}{{j.Created, &s.Created}, {j.Answered, &s.Answered}, {j.Connected, &s.Connected}, {j.Ended, &s.Ended}} {
		if f.in == nil {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, *f.in)
		if err != nil {
			return Session{}, fmt.Errorf("read session %s: %w", j.WorkerID, err)
		}
		*f.out = t.UTC()
	}
	return s, nil
}

// JSONTime is a timestamp in JSON: RFC 3339 UTC (with its fraction of a
// second), or null when zero.
func JSONTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339Nano)
	return &s
}

// millisBetween returns b-a in milliseconds, or nil when either is zero.
func millisBetween(a, b time.Time) *int64 {
	if a.IsZero() || b.IsZero() {
		return nil
	}
	n := b.Sub(a).Milliseconds()
	return &n
}
