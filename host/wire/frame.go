package wire

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/geckohost/geckohost/engine"
)

// FrameKind tells which client frame a ClientFrame holds.
type FrameKind int

// The client frames of the client endpoint.
const (
	// FrameHello is {"messageType":"hello","action":"client-hello",...}.
	FrameHello FrameKind = iota + 1
	// FrameCandidate is {"messageType":"ice","action":"client-candidate",...}.
	FrameCandidate
)

// String returns the frame's action name.
func (k FrameKind) String() string {
	switch k {
	case FrameHello:
		return "client-hello"
	case FrameCandidate:
		return "client-candidate"
	}
	return fmt.Sprintf("FrameKind(%d)", int(k))
}

// ClientHello is the fields of a client-hello frame.
type ClientHello struct {
	// Authorization is the raw authorization field, "Bearer <token>"; empty
	// when the field is missing (host answers 101 then).
	Authorization string
	// Source is the worker JavaScript URL.
	Source string
	// Offer is the client's SDP offer (the webrtcOffer field).
	Offer string
}

// ClientFrame is one parsed frame from a client: Kind says which of Hello
// and Candidate is set.
type ClientFrame struct {
	Kind      FrameKind
	Hello     ClientHello
	Candidate engine.Candidate
}

// ParseClientFrame parses one text frame from a client. Unknown extra fields
// are ignored. Every failure is a *engine.Error with Errno engine.InvalidMessage (103)
// whose reason says what is wrong. It never panics.
func ParseClientFrame(data []byte) (ClientFrame, error) {
	var obj map[string]json.RawMessage
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		if !json.Valid(data) {
			return ClientFrame{}, engine.Errorf(engine.InvalidMessage, "frame is not JSON")
		}
		return ClientFrame{}, engine.Errorf(engine.InvalidMessage, "frame is not a JSON object")
	}
	if err := json.Unmarshal(data, &obj); err != nil {
		return ClientFrame{}, engine.Errorf(engine.InvalidMessage, "frame is not JSON")
	}
	messageType, e := requiredString(obj, "messageType")
	if e != nil {
		return ClientFrame{}, e
	}
	action, e := requiredString(obj, "action")
	if e != nil {
		return ClientFrame{}, e
	}
	switch {
	case messageType == "hello" && action == "client-hello":
		return parseHello(obj)
	case messageType == "ice" && action == "client-candidate":
		return parseCandidateFrame(obj)
	}
	return ClientFrame{}, engine.Errorf(engine.InvalidMessage, "unknown messageType/action %q/%q", clip(messageType), clip(action))
}

func parseHello(obj map[string]json.RawMessage) (ClientFrame, error) {
	f := ClientFrame{Kind: FrameHello}
	auth, ok, e := optionalString(obj, "authorization")
	if e != nil {
		return ClientFrame{}, e
	}
	if ok {
		f.Hello.Authorization = auth
	}
	if f.Hello.Source, e = requiredString(obj, "source"); e != nil {
		return ClientFrame{}, e
	}
	if f.Hello.Offer, e = requiredString(obj, "webrtcOffer"); e != nil {
		return ClientFrame{}, e
	}
	return f, nil
}

func parseCandidateFrame(obj map[string]json.RawMessage) (ClientFrame, error) {
	raw, ok := obj["candidate"]
	if !ok || isNull(raw) {
		return ClientFrame{}, engine.Errorf(engine.InvalidMessage, "missing field candidate")
	}
	c, err := ParseCandidate(raw)
	if err != nil {
		return ClientFrame{}, err
	}
	return ClientFrame{Kind: FrameCandidate, Candidate: c}, nil
}

// ParseCandidate parses an ICE candidate object ({"candidate":"...",
// "sdpMid":"0","sdpMLineIndex":0}). The candidate string is required;
// sdpMid, sdpMLineIndex and usernameFragment may be missing or null.
// Failures are *engine.Error with Errno engine.InvalidMessage.
func ParseCandidate(raw json.RawMessage) (engine.Candidate, error) {
	var obj map[string]json.RawMessage
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
		return engine.Candidate{}, engine.Errorf(engine.InvalidMessage, "field candidate is not an object")
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return engine.Candidate{}, engine.Errorf(engine.InvalidMessage, "field candidate is not an object")
	}
	var c engine.Candidate
	var e *engine.Error
	if c.Candidate, e = requiredString(obj, "candidate"); e != nil {
		return engine.Candidate{}, engine.Errorf(engine.InvalidMessage, "candidate object: %s", e.Reason)
	}
	if s, ok, e := optionalString(obj, "sdpMid"); e != nil {
		return engine.Candidate{}, engine.Errorf(engine.InvalidMessage, "candidate object: %s", e.Reason)
	} else if ok {
		c.SDPMid = &s
	}
	if s, ok, e := optionalString(obj, "usernameFragment"); e != nil {
		return engine.Candidate{}, engine.Errorf(engine.InvalidMessage, "candidate object: %s", e.Reason)
	} else if ok {
		c.UsernameFragment = &s
	}
	if raw, ok := obj["sdpMLineIndex"]; ok && !isNull(raw) {
		var n uint16
		if err := json.Unmarshal(raw, &n); err != nil {
			return engine.Candidate{}, engine.Errorf(engine.InvalidMessage, "candidate object: field sdpMLineIndex is not an integer in 0..65535")
		}
		c.SDPMLineIndex = &n
	}
	return c, nil
}

func isNull(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

func requiredString(obj map[string]json.RawMessage, name string) (string, *engine.Error) {
	s, ok, err := optionalString(obj, name)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", engine.Errorf(engine.InvalidMessage, "missing field %s", name)
	}
	return s, nil
}

// optionalString returns the string field name; ok is false when it is
// missing or null.
func optionalString(obj map[string]json.RawMessage, name string) (s string, ok bool, err *engine.Error) {
	raw, present := obj[name]
	if !present || isNull(raw) {
		return "", false, nil
	}
	if json.Unmarshal(raw, &s) != nil {
		return "", false, engine.Errorf(engine.InvalidMessage, "field %s is not a string", name)
	}
	return s, true, nil
}

// clip shortens client-supplied text quoted in a reason.
func clip(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// WorkerHello is the host's {"messageType":"hello","action":"worker-hello"}
// frame carrying the worker's SDP answer.
type WorkerHello struct {
	MessageType string `json:"messageType"` // "hello"
	Action      string `json:"action"`      // "worker-hello"
	WorkerID    string `json:"workerId"`
	Answer      string `json:"webrtcAnswer"`
}

// NewWorkerHello returns a worker-hello frame.
func NewWorkerHello(workerID, answer string) WorkerHello {
	return WorkerHello{MessageType: "hello", Action: "worker-hello", WorkerID: workerID, Answer: answer}
}

// WorkerCandidate is the host's {"messageType":"ice","action":"worker-candidate"}
// frame carrying one ICE candidate the worker gathered.
type WorkerCandidate struct {
	MessageType string           `json:"messageType"` // "ice"
	Action      string           `json:"action"`      // "worker-candidate"
	WorkerID    string           `json:"workerId"`
	Candidate   engine.Candidate `json:"candidate"`
}

// NewWorkerCandidate returns a worker-candidate frame.
func NewWorkerCandidate(workerID string, c engine.Candidate) WorkerCandidate {
	return WorkerCandidate{MessageType: "ice", Action: "worker-candidate", WorkerID: workerID, Candidate: c}
}

// Connected is the host's {"messageType":"connected"} frame, sent once the
// worker's end of the data channel is open.
type Connected struct {
	MessageType string `json:"messageType"` // "connected"
	WorkerID    string `json:"workerId"`
}

// NewConnected returns a connected frame.
func NewConnected(workerID string) Connected {
	return Connected{MessageType: "connected", WorkerID: workerID}
}

// WorkerError is the host's {"messageType":"worker-error"} frame. WorkerID is
// nil (JSON null) when the failure came before a worker id was assigned.
type WorkerError struct {
	MessageType string       `json:"messageType"` // "worker-error"
	WorkerID    *string      `json:"workerId"`
	Errno       engine.Errno `json:"errno"`
	Reason      string       `json:"reason"`
}

// NewWorkerError returns a worker-error frame; an empty workerID becomes null.
func NewWorkerError(workerID string, e *engine.Error) WorkerError {
	f := WorkerError{MessageType: "worker-error", Errno: e.Errno, Reason: e.Reason}
	if workerID != "" {
		f.WorkerID = &workerID
	}
	return f
}
