// Package wire holds the JSON frames of geckohost's client endpoint (see
// docs/protocol.md): it parses the client's client-hello and
// client-candidate frames and builds the host's worker-hello,
// worker-candidate, connected and worker-error frames. The ICE candidate
// object and the error numbers are the engine contract's (package engine).
package wire
