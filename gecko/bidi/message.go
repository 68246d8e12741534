package bidi

import (
	"encoding/json"
	"fmt"
)

type messageKind int

const (
	kindSuccess messageKind = iota + 1
	kindError
	kindEvent
)

// message is one decoded message from the remote end.
type message struct {
	kind  messageKind
	id    uint64
	hasID bool

	result json.RawMessage // success

	errCode, errMessage, stacktrace string // error

	method string          // event
	params json.RawMessage // event
}

type wireMessage struct {
	Type       string          `json:"type"`
	ID         *uint64         `json:"id"`
	Result     json.RawMessage `json:"result"`
	Error      string          `json:"error"`
	Message    string          `json:"message"`
	Stacktrace string          `json:"stacktrace"`
	Method     string          `json:"method"`
	Params     json.RawMessage `json:"params"`
}

// decodeMessage parses one message from the remote end: a command response
// ("success" or "error") or an event.
func decodeMessage(data []byte) (message, error) {
	var w wireMessage
	if err := json.Unmarshal(data, &w); err != nil {
		return message{}, fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	m := message{}
	if w.ID != nil {
		m.id, m.hasID = *w.ID, true
	}
	switch w.Type {
	case "success":
		if !m.hasID {
			return message{}, fmt.Errorf("%w: success without id", ErrBadMessage)
		}
		m.kind = kindSuccess
		m.result = w.Result
		if len(m.result) == 0 {
			m.result = json.RawMessage("{}")
		}
	case "error":
		if w.Error == "" {
			return message{}, fmt.Errorf("%w: error without code", ErrBadMessage)
		}
		m.kind = kindError
		m.errCode, m.errMessage, m.stacktrace = w.Error, w.Message, w.Stacktrace
	case "event":
		if w.Method == "" {
			return message{}, fmt.Errorf("%w: event without method", ErrBadMessage)
		}
		m.kind = kindEvent
		m.method, m.params = w.Method, w.Params
		if len(m.params) == 0 {
			m.params = json.RawMessage("{}")
		}
	default:
		return message{}, fmt.Errorf("%w: unknown type %q", ErrBadMessage, w.Type)
	}
	return m, nil
}
