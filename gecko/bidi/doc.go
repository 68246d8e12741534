// Package bidi is a small WebDriver BiDi client (https://w3c.github.io/webdriver-bidi/)
// over github.com/coder/websocket, made for driving a headless Firefox.
//
// A Conn owns one WebSocket and one read goroutine. Commands are sent with
// Call (or the typed helpers such as CreateTab, Navigate and CallFunction),
// which is safe to use from many goroutines: each command gets an id, and the
// read loop routes the response to its caller. Error responses come back as
// *Error, script exceptions as *ScriptError. Events (after Subscribe) are
// delivered, in order, to the single callback set with OnEvent. When the
// socket goes away every pending call fails with an error wrapping ErrClosed,
// and Done is closed.
//
// RemoteValue results can be decoded with StringValue, NumberValue,
// BoolValue or Value; script.message and log.entryAdded event parameters
// with ParseScriptMessage and ParseLogEntry.
package bidi
