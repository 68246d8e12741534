// Package cluster runs geckohost as several nodes that act as one service,
// sharing one Redis (LiveKit's pattern): every node runs the same binary
// (serve --redis URL), nodes reach Redis and never each other, and the
// WebRTC data channels go peer to peer between each client and its worker,
// never through Redis.
//
// A Node is, for its host.Server, three things at once:
//
//   - the token store (domain.Store's LookupToken): tokens live in Redis
//     (Tokens; made by "geckohost token add --redis", the SHA-256 of each
//     secret only, with domain's rules), every node validates every token,
//     and a lookup is reused for at most 500 ms, so a revoke reaches every
//     node within a second;
//   - the Limiter (domain.Limiter): a token's live workers on every node
//     count against its --max-workers and its starts on every node against
//     its --rate, in one Lua script per hello;
//   - the engine (Engine, an engine.Engine): a hello is served by the node
//     that took it when that node has room and the token has no live
//     worker elsewhere; otherwise it goes to the token's node (affinity,
//     while it has room) or to the least loaded ready node. The offer, both
//     directions of ICE, the answer, "connected", the end and the errors
//     travel over Redis pub/sub (one channel per node), so the client sees
//     the same frames and errnos as from one node.
//
// Each node also serves the workers other nodes relay to it, on its own
// engine (the Firefox pool), and keeps its entry in the node registry
// (NodeInfo: state, browsers, workers, capacity) with a heartbeat every
// second; a node silent for 3 s is out: nothing is routed to it, its
// workers stop counting, and clients negotiating with it get a 303.
//
// Session records stay in each node's SQLite (with the node id on every
// row); each ended session is also appended to a capped Redis stream
// ("geckohost sessions --redis").
//
// Failures: while Redis is unreachable a node answers new hellos with 301
// "cluster store unreachable" and its Ready (hence /readyz) fails;
// connected sessions are untouched (their data does not go through Redis),
// and the node recovers by itself when Redis is back. A connected worker
// outlives the node that took its client's hello (Close detaches it).
// Drain (at SIGTERM) publishes the node as draining: nothing is routed to
// it and its own clients' hellos are relayed to other nodes.
package cluster
