// Package host is geckohost's front: the HTTP server, the signaling WebSocket
// on "/" (the client-hello → worker-hello → ICE → connected state machine),
// authentication against store tokens, the source and origin allow-lists,
// and the session records. It drives an engine.Engine (package engine
// holds the contract; gecko.Pool implements it) and never imports an
// engine's package: serve.go wires them.
//
// # Sessions
//
// A client opens a WebSocket on "/" and sends a client-hello within
// Options.HelloTimeout. The server assigns the worker id (16 random bytes,
// hex) as soon as it has read the hello, so every worker-error after the
// hello carries it; errors before a hello (hello timeout, a bad first
// frame, shutdown) carry "workerId": null. Then, in order: the authorization
// must be "Bearer <token>" (101) and name a live token (102); the source must
// be an absolute http(s) URL of at most 2,048 bytes allowed by the server
// (--allow-source, or a bundled demo worker on one of the server's own
// origins under /workers/) and, when the token has a --source list, by that
// list too (104); the offer's media sections must be 1 to 4 data channels
// (204); the token must be
// under its concurrent-worker limit (105, counting connected workers still
// running) and under its rate limit (105: a token with domain.Rate Count/Window
// starts at most Count workers in any Window-long stretch of time; every
// hello that passes the checks before counts as a start, whatever the
// engine then does). By default the limits are kept in memory (they start
// afresh when the server is restarted); Options.Limiter replaces them
// (cluster mode shares them between nodes through Redis). The server then fetches the source (see
// Options.AllowSources: redirects checked hop by hop, addresses resolved
// once and checked; 104 or 201), at most Options.MaxFetchesPerToken at a
// time per token, before it asks the engine for a worker, so that a slow
// source holds no browser slot; the bundled workers come from Options.Web
// in process. The engine then starts a worker (see Queue); client candidates (at most
// 1,000, else 103) are queued
// until the worker's answer and then applied in order; worker candidates
// are relayed as they come. A hello with no answer within
// Options.AnswerTimeout, or an answer with no "connected" within
// Options.ConnectTimeout, is a 302. Any failure sends exactly one
// worker-error and closes the WebSocket, and closes the worker.
//
// A hello timeout is a 103 (INVALID_MESSAGE). A worker that ends before it
// is connected without an error of its own is told by its end reason
// (outcome.go, one row each): a 303 when its browser died, its page went
// away or the reason is unknown; a 203 when it closed itself; a 304 when
// the engine shut it down; a 305 at once when its peer connection failed
// (engine.EndICEFailed) or closed (engine.EndPeerClosed), the reason naming
// the candidate types and addresses each side offered in the signaling
// (and, for a failure, what to do). 302 is only ever a timeout.
//
// Each session runs one loop (negotiate.go) through the phases hello,
// fetching, queued, starting, relaying and connected; the source fetch and
// Engine.StartWorker run in goroutines it waits for, so client frames, the
// timers, stop and the hard stop are handled in one place. Whatever ends a
// session goes through one function (session.outcome, outcome.go) that
// decides the errno, the end reason and the close code.
//
// # ICE
//
// A client that is not on loopback (by its TCP peer address) is sent none
// of the worker's loopback candidates (in the answer or trickled), and the
// worker none of its: neither could reach the other's loopback, and a
// browser tries the higher-priority loopback pairs first. The a=candidate
// lines of the client's offer reach the worker as trickled candidates do,
// once the answer is on its way to the client (the WorkerRequest's Offer
// has none): otherwise the worker's first checks reach a client that has
// neither the answer nor the worker's candidates yet. GET /ice-servers
// answers the token's Options.ICEServers to a bearer of a valid token
// ({"iceServers":[...]}, 401 with the errno otherwise, CORS for allowed
// origins); each worker gets the same list in its WorkerRequest.
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
// a 101/102 leaves one, naming the token when it is revoked or expired,
// except past 20 failures within 10 s from one remote address, which leave
// no row and no log line, summed up in one warning a minute) at
// each transition: negotiating, answered, connected, ended (EndReason "client-left",
// "error", "shutdown", or the engine's reason such as "worker-closed" or
// "idle"). A single goroutine writes them, so the relay never waits for
// the database; Shutdown flushes the queue. Each session that got a hello
// ends with one info log line (worker id, token name, errno, durations);
// tokens, SDP and ICE candidates are logged at debug level at most.
//
// # Queue
//
// When the engine refuses a worker for want of capacity (an error wrapping
// engine.ErrNoCapacity: every browser full, starting or restarting), the
// hello waits in a queue, fair across tokens (round robin between tokens,
// arrival order within one), for at most Options.QueueTimeout with at most
// Options.QueueSize waiting; past either it is a 301 whose reason says
// which. While a hello waits, other hellos queue behind it instead of
// taking a freed place first; a waiting hello tries again when a session's
// worker ends and every 100 ms. Its client candidates are kept, a client
// that leaves is removed at once, and Shutdown ends the waits with 304.
//
// # Metrics and status
//
// GET /metrics serves a Prometheus registry of the Server's own (Go and
// process collectors, sessions by state and result, hello → answer and
// hello → connected histograms, the queue, auth failures, and, with
// Options.Browsers, the engine's browsers); Options.HideMetrics moves it
// off ServeHTTP to MetricsHandler. GET /status serves Status as JSON.
// Labels never hold tokens, sources or addresses.
//
// # Origins
//
// The server's own origins are the address each connection was accepted on
// (and localhost for a loopback one) and Options.PublicURLs, never what the
// request says: a request whose Host header is none of them gets 421. A
// WebSocket request with an Origin header is accepted when the origin is one
// of the server's own or matches an Options.AllowOrigins pattern; else it is
// refused with 403. Requests without Origin (programs) are accepted.
package host
