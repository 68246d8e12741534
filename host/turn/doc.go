// Package turn is geckohost's embedded TURN relay (serve --turn-listen),
// for clients whose network blocks UDP or has no direct path to this host.
//
// It listens for TURN on one port over both UDP and TCP (pion/turn) and
// relays over UDP only, and only between a client and this host: an
// allocation may send to and hear from addresses of this host's own
// network interfaces (where its workers are) and the relay address, never
// anywhere else, never loopback and never a port below 1024. TCP relay
// allocations (RFC 6062) are refused.
//
// Credentials are short-lived, in the TURN REST style: the username is
// "<expiry unix seconds>:<token id>", the password the base64 HMAC-SHA1 of
// the username under a secret drawn at start (so a restart invalidates
// them), valid for at most 10 minutes. [Server.ICEServer] makes them; the
// host hands them out on GET /ice-servers to clients with a valid token,
// and to that token's workers (as "<expiry>:w<token id>"). Each token's
// clients may hold a bounded number of allocations at a time.
package turn
