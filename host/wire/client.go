package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/geckohost/geckohost/engine"
)

// The client's end: the frames a client sends (ClientHelloFrame,
// ClientCandidate) and the host's frames as a client reads them
// (ParseServerFrame).

// ClientHelloFrame is the client's {"messageType":"hello","action":"client-hello"}
// frame.
type ClientHelloFrame struct {
	MessageType   string `json:"messageType"` // "hello"
	Action        string `json:"action"`      // "client-hello"
	Authorization string `json:"authorization"`
	Source        string `json:"source"`
	Offer         string `json:"webrtcOffer"`
}

// NewClientHello returns a client-hello frame for the bearer token, the
// worker source URL and the SDP offer.
func NewClientHello(token, source, offer string) ClientHelloFrame {
	return ClientHelloFrame{MessageType: "hello", Action: "client-hello", Authorization: "Bearer " + token, Source: source, Offer: offer}
}

// ClientCandidate is the client's {"messageType":"ice","action":"client-candidate"}
// frame carrying one of its ICE candidates (an empty Candidate string
// means end of candidates).
type ClientCandidate struct {
	MessageType string           `json:"messageType"` // "ice"
	Action      string           `json:"action"`      // "client-candidate"
	Candidate   engine.Candidate `json:"candidate"`
}

// NewClientCandidate returns a client-candidate frame.
func NewClientCandidate(c engine.Candidate) ClientCandidate {
	return ClientCandidate{MessageType: "ice", Action: "client-candidate", Candidate: c}
}

// ServerFrameKind tells which host frame a ServerFrame holds.
type ServerFrameKind int

// The host's frames of the client endpoint.
const (
	// FrameWorkerHello is {"messageType":"hello","action":"worker-hello",...}.
	FrameWorkerHello ServerFrameKind = iota + 1
	// FrameWorkerCandidate is {"messageType":"ice","action":"worker-candidate",...}.
	FrameWorkerCandidate
	// FrameConnected is {"messageType":"connected",...}.
	FrameConnected
	// FrameWorkerError is {"messageType":"worker-error",...}.
	FrameWorkerError
)

// String returns the frame's name: "worker-hello", "worker-candidate",
// "connected" or "worker-error".
func (k ServerFrameKind) String() string {
	switch k {
	case FrameWorkerHello:
		return "worker-hello"
	case FrameWorkerCandidate:
		return "worker-candidate"
	case FrameConnected:
		return "connected"
	case FrameWorkerError:
		return "worker-error"
	}
	return fmt.Sprintf("ServerFrameKind(%d)", int(k))
}

// ErrBadServerFrame is wrapped by ParseServerFrame's errors.
var ErrBadServerFrame = errors.New("bad frame from the host")

// ServerFrame is one parsed frame from the host: Kind says which of its
// fields are set.
type ServerFrame struct {
	Kind ServerFrameKind
	// WorkerID is the frame's workerId; "" when it is null or missing.
	WorkerID string
	// Answer is a worker-hello's SDP answer.
	Answer string
	// Candidate is a worker-candidate's candidate.
	Candidate engine.Candidate
	// Error is a worker-error's errno and reason.
	Error *engine.Error
}

// serverFrame is the union of the host's frames' fields.
type serverFrame struct {
	MessageType string            `json:"messageType"`
	Action      string            `json:"action"`
	WorkerID    *string           `json:"workerId"`
	Answer      string            `json:"webrtcAnswer"`
	Candidate   *engine.Candidate `json:"candidate"`
	Errno       int               `json:"errno"`
	Reason      string            `json:"reason"`
}

// ParseServerFrame parses one text frame from the host, as a client reads
// it. Unknown extra fields are ignored. Failures wrap ErrBadServerFrame.
// It never panics.
func ParseServerFrame(data []byte) (ServerFrame, error) {
	var f serverFrame
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '{' {
		return ServerFrame{}, fmt.Errorf("decode frame: not a JSON object: %w", ErrBadServerFrame)
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return ServerFrame{}, fmt.Errorf("decode frame: %w: %w", ErrBadServerFrame, err)
	}
	out := ServerFrame{}
	if f.WorkerID != nil {
		out.WorkerID = *f.WorkerID
	}
	switch {
	case f.MessageType == "worker-error":
		out.Kind, out.Error = FrameWorkerError, &engine.Error{Errno: engine.Errno(f.Errno), Reason: f.Reason}
	case f.MessageType == "hello" && f.Action == "worker-hello":
		out.Kind, out.Answer = FrameWorkerHello, f.Answer
	case f.MessageType == "ice" && f.Action == "worker-candidate":
		if f.Candidate == nil {
			return ServerFrame{}, fmt.Errorf("worker-candidate without candidate: %w", ErrBadServerFrame)
		}
		out.Kind, out.Candidate = FrameWorkerCandidate, *f.Candidate
	case f.MessageType == "connected":
		out.Kind = FrameConnected
	default:
		return ServerFrame{}, fmt.Errorf("unexpected frame %q/%q: %w", clip(f.MessageType), clip(f.Action), ErrBadServerFrame)
	}
	return out, nil
}
