// Package client is a Go client for a geckohost server: it dials the
// signaling WebSocket, offers a WebRTC data channel to a worker with
// pion/webrtc, relays ICE both ways and returns once the data channel is
// open. Tests, benchmarks and `geckohost bench` use it.
package client
