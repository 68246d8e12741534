// Package host is geckohost's front: the HTTP server, the signaling WebSocket
// on "/" (the client-hello → worker-hello → ICE → connected state machine),
// authentication against store tokens, the source and origin allow-lists,
// and the session records. It drives an Engine, declared here, that gecko
// implements.
package host
