// Package turn is geckohost's embedded TURN relay (serve --turn-listen),
// for clients whose network blocks UDP or has no direct path to this host.
//
// It listens for TURN on one port over both UDP and TCP (pion/turn) and
// relays over UDP only, and only what a session needs: a client's
// allocation may send to and hear from the candidates (address and port)
// of its token's live workers and nothing else, so that the relay is no
// way into other UDP services of this host or its network. The host adds
// each worker candidate it relays to a client ([Server.AddPeer]) and
// removes them when the worker ends ([Server.DropPeers]); permissions
// (per IP, as TURN has them) are granted for those addresses only, and
// every packet is checked against address and port. A worker's own
// allocation may reach this host's addresses and the relay address (where
// its clients' relayed addresses are). Never loopback, never a port below
// 1024. TCP relay allocations (RFC 6062) are refused.
//
// Credentials are short-lived, in the TURN REST style: the username is
// "<expiry unix seconds>:<token id>", the password the base64 HMAC-SHA1 of
// the username under a secret drawn at start (so a restart invalidates
// them), valid for at most 10 minutes. [Server.ICEServer] makes them; the
// host hands them out on GET /ice-servers to clients with a valid token,
// and to that token's workers (as "<expiry>:w<token id>"). Each token's
// clients may hold a bounded number of allocations at a time.
package turn
