// Package engine is the contract between geckohost's front (package host)
// and the engines that run workers (package gecko's Firefox pool, and any
// later one: a remote node, another browser).
//
// An Engine starts a Worker for a WorkerRequest. The Worker reports what
// happens to it as Events, in order: its SDP answer, its ICE candidates,
// that its end of the data channel is open, and finally that it ended, with
// an EndReason (and an *Error when it failed in a way only the engine can
// tell, such as a syntax error in the worker's code). The front alone turns
// those events into what the client is told: the errno of a worker that
// ended before it was connected, 304 while the host shuts down, and the
// session record.
//
// The error numbers (Errno) and their names are a public contract with
// clients; see docs/protocol.md.
//
// The package is a leaf: it imports nothing of geckohost.
package engine
