// Package host is geckohost's front: the HTTP server, the signaling WebSocket
// on "/" (the client-hello → worker-hello → ICE → connected state machine),
// authentication against store tokens, the source and origin allow-lists,
// and the session records. It drives an Engine, declared here, that gecko
// implements.
//
// # Sessions
//
// A client opens a WebSocket on "/" and sends a client-hello within
// Options.HelloTimeout. The server assigns the worker id (16 random bytes,
// hex) as soon as it has read the hello, so every worker-error after the
// hello carries it; errors before a hello (hello timeout, a bad first
// frame, shutdown) carry "workerId": null. Then, in order: the authorization
// must be "Bearer <token>" (101) and name a live token (102); the source must
// be an absolute http(s) URL allowed by the server (--allow-source, or a
// bundled demo worker on the server's own origin under /workers/) and, when
// the token has a --source list, by that list too (104); the token must be
// under its concurrent-worker limit (105, counting connected workers still
// running) and under its rate limit (105: a token with store.Rate Count/Window
// starts at most Count workers in any Window-long stretch of time; every
// hello that passes the checks before counts as a start, whatever the
// engine then does). By default the limits are kept in memory (they
// start afresh when the server is restarted); Options.Limiter replaces them
// (cluster mode shares them between nodes through Redis). The engine then starts a worker; client candidates are queued
// until the worker's answer and then applied in order; worker candidates
// are relayed as they come. A hello with no answer within
// Options.AnswerTimeout, or an answer with no "connected" within
// Options.ConnectTimeout, is a 302. Any failure sends exactly one
// worker-error and closes the WebSocket, and closes the worker.
//
// A hello timeout is a 103 (INVALID_MESSAGE). A worker that ends before it
// is connected without an error of its own is a 303.
//
// Close codes: 1000 after "connected"; after a worker-error, 1008 (policy
// violation) for the client's errors (1xx), 1001 (going away) for 304, and
// 1011 (internal error) for the worker's and the engine's errors (2xx, 3xx).
// A client that drops the connection mid-negotiation ends the session
// "client-left".
//
// After "connected" the WebSocket is closed but the worker goes on, peer to
// peer; the server keeps draining its events to record how it ended.
//
// # Records and logs
//
// Sessions are written to the Store from the hello on (a failure before a
// hello, such as a hello timeout or a malformed first frame, leaves no row;
// a 101/102 leaves one, naming the token when it is revoked or expired) at
// each transition: negotiating, answered, connected, ended (EndReason "client-left",
// "error", "shutdown", or the engine's reason such as "worker-closed" or
// "idle"). A single goroutine writes them, so the relay never waits for
// the database; Shutdown flushes the queue. Each session that got a hello
// ends with one info log line (worker id, token name, errno, durations);
// tokens, SDP and ICE candidates are logged at debug level at most.
//
// # Origins
//
// A WebSocket request with an Origin header is accepted when the origin is
// the server's own (http://<Host>) or matches an Options.AllowOrigins
// pattern; else it is refused with 403. Requests without Origin (programs)
// are accepted.
package host
