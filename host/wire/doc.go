// Package wire holds the JSON frames of geckohost's client endpoint (see
// docs/protocol.md), for both ends. The host's end: it parses the client's
// client-hello and client-candidate frames (ParseClientFrame) and builds
// the host's worker-hello, worker-candidate, connected and worker-error
// frames. The client's end (package host/client): it builds client-hello
// and client-candidate frames and parses the host's (ParseServerFrame).
// The ICE candidate object and the error numbers are the engine
// contract's (package engine).
package wire
