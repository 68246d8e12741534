package bidi

import (
	"encoding/json"
	"errors"
	"fmt"
)

// ErrClosed is wrapped by the errors of calls that fail because the
// connection is closed or was lost.
var ErrClosed = errors.New("bidi: connection closed")

// ErrBadMessage is wrapped by errors about messages from the remote end that
// do not follow the protocol.
var ErrBadMessage = errors.New("bidi: malformed message")

// ErrUnexpectedValue is returned by the RemoteValue decoders when a value is
// not of the asked type.
var ErrUnexpectedValue = errors.New("bidi: unexpected remote value")

// Error is an error response to a command.
type Error struct {
	// Method is the command that failed.
	Method string
	// Code is the BiDi error code, such as "unknown command" or
	// "no such frame".
	Code string
	// Message is the remote end's human-readable message.
	Message string
	// Stacktrace is the remote end's stack trace, often empty.
	Stacktrace string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("bidi: %s: %s", e.Method, e.Code)
	}
	return fmt.Sprintf("bidi: %s: %s: %s", e.Method, e.Code, e.Message)
}

// ScriptError is an exception thrown by script run with CallFunction
// (the "exception" result of script.callFunction).
type ScriptError struct {
	// Text is the exception's text, such as "Error: boom".
	Text string
	// LineNumber and ColumnNumber locate the throw (zero-based, as BiDi
	// reports them).
	LineNumber, ColumnNumber int
	// Exception is the thrown value as a RemoteValue.
	Exception json.RawMessage
	// StackTrace is the BiDi script.StackTrace JSON.
	StackTrace json.RawMessage
}

// Error implements error.
func (e *ScriptError) Error() string {
	return "bidi: script exception: " + e.Text
}
