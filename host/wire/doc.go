// Package wire holds geckohost's signaling vocabulary: the JSON frames of the
// client endpoint (../shared/spec/client-endpoint.txt), the ICE candidate
// object, the public error numbers, and the events an engine reports about a
// worker. It is a leaf package shared by host (the server) and gecko (the
// engines), so that neither has to import the other.
package wire
