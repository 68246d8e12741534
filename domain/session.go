package domain

import "time"

// Session states, in the order a session goes through them (Session.State).
const (
	// StateNegotiating: from the hello to the answer.
	StateNegotiating = "negotiating"
	// StateAnswered: the answer went to the client.
	StateAnswered = "answered"
	// StateConnected: the data channel opened.
	StateConnected = "connected"
	// StateEnded: the session is over (Session.EndReason says why).
	StateEnded = "ended"
)

// Session is the record of one worker session, written by host at each
// transition.
type Session struct {
	// WorkerID identifies the session; required.
	WorkerID string
	// TokenID is the token's id; 0 when no valid token was presented.
	TokenID   int64
	TokenName string
	// Source is the worker JavaScript URL; RemoteAddr the client's address;
	// Origin its Origin header (empty for programs); Engine the engine name.
	Source, RemoteAddr, Origin, Engine string
	// State is one of the State* constants.
	State string
	// Errno and Reason are set when the session failed (0 and "" otherwise).
	Errno  int
	Reason string
	// Created is when the hello arrived (zero: the adapter's SaveSession uses now);
	// Answered, Connected and Ended are zero until they happen.
	Created, Answered, Connected, Ended time.Time
	// EndReason says why the session ended, e.g. "client-left",
	// "worker-closed", "error", "shutdown", "idle", "host-restart".
	EndReason string
	// EgressRefused counts the network requests of the worker that the
	// worker egress policy refused (for gecko: those of every worker of
	// the token in the same browser context while this one ran).
	EgressRefused int
	// NodeID is, in cluster mode, the node that ran the worker (or, when
	// it never had one, the node that took the hello); "" otherwise.
	NodeID string
	// RunID is the serve run that hosts the session (store.Run); ""
	// for sessions recorded before runs were.
	RunID string
}

// SessionFilter selects session records to list (store's ListSessions, the
// cluster's Sessions).
type SessionFilter struct {
	// TokenName keeps only this token's sessions; empty: all.
	TokenName string
	// Limit is the most sessions returned; 0: 50. Negative is an error.
	Limit int
}
