package bidi

import (
	"encoding/json"
	"fmt"
	"math"
)

type remoteValue struct {
	Type  string          `json:"type"`
	Value json.RawMessage `json:"value"`
}

func decodeRemote(raw json.RawMessage) (remoteValue, error) {
	var v remoteValue
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, fmt.Errorf("decode remote value: %w: %w", ErrUnexpectedValue, err)
	}
	if v.Type == "" {
		return v, fmt.Errorf("decode remote value: %w: no type", ErrUnexpectedValue)
	}
	return v, nil
}

// StringValue decodes a RemoteValue of type "string".
func StringValue(raw json.RawMessage) (string, error) {
	v, err := decodeRemote(raw)
	if err != nil {
		return "", err
	}
	if v.Type != "string" {
		return "", fmt.Errorf("decode string: %w: type %q", ErrUnexpectedValue, v.Type)
	}
	var s string
	if err := json.Unmarshal(v.Value, &s); err != nil {
		return "", fmt.Errorf("decode string: %w: %w", ErrUnexpectedValue, err)
	}
	return s, nil
}

// NumberValue decodes a RemoteValue of type "number", including the special
// values "NaN", "Infinity", "-Infinity" and "-0".
func NumberValue(raw json.RawMessage) (float64, error) {
	v, err := decodeRemote(raw)
	if err != nil {
		return 0, err
	}
	if v.Type != "number" {
		return 0, fmt.Errorf("decode number: %w: type %q", ErrUnexpectedValue, v.Type)
	}
	return numberOf(v.Value)
}

func numberOf(raw json.RawMessage) (float64, error) {
	var f float64
	if err := json.Unmarshal(raw, &f); err == nil {
		return f, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, fmt.Errorf("decode number: %w: %w", ErrUnexpectedValue, err)
	}
	switch s {
	case "NaN":
		return math.NaN(), nil
	case "Infinity":
		return math.Inf(1), nil
	case "-Infinity":
		return math.Inf(-1), nil
	case "-0":
		return math.Copysign(0, -1), nil
	}
	return 0, fmt.Errorf("decode number: %w: %q", ErrUnexpectedValue, s)
}

// BoolValue decodes a RemoteValue of type "boolean".
func BoolValue(raw json.RawMessage) (bool, error) {
	v, err := decodeRemote(raw)
	if err != nil {
		return false, err
	}
	if v.Type != "boolean" {
		return false, fmt.Errorf("decode boolean: %w: type %q", ErrUnexpectedValue, v.Type)
	}
	var b bool
	if err := json.Unmarshal(v.Value, &b); err != nil {
		return false, fmt.Errorf("decode boolean: %w: %w", ErrUnexpectedValue, err)
	}
	return b, nil
}

// Value decodes a RemoteValue into plain Go values: undefined and null
// become nil, strings string, numbers float64, booleans bool, bigints their
// decimal string, arrays and sets []any, objects and maps with string keys
// map[string]any. Other types (functions, nodes, ...) and values the remote
// end did not serialize (beyond its depth limit) are an error wrapping
// ErrUnexpectedValue.
func Value(raw json.RawMessage) (any, error) {
	v, err := decodeRemote(raw)
	if err != nil {
		return nil, err
	}
	switch v.Type {
	case "undefined", "null":
		return nil, nil
	case "string":
		return StringValue(raw)
	case "number":
		return numberOf(v.Value)
	case "boolean":
		return BoolValue(raw)
	case "bigint":
		var s string
		if err := json.Unmarshal(v.Value, &s); err != nil {
			return nil, fmt.Errorf("decode bigint: %w: %w", ErrUnexpectedValue, err)
		}
		return s, nil
	case "array", "set":
		var items []json.RawMessage
		if err := json.Unmarshal(v.Value, &items); err != nil || v.Value == nil {
			return nil, fmt.Errorf("decode %s: %w: not serialized", v.Type, ErrUnexpectedValue)
		}
		out := make([]any, 0, len(items))
		for _, it := range items {
			x, err := Value(it)
			if err != nil {
				return nil, err
			}
			out = append(out, x)
		}
		return out, nil
	case "object", "map":
		var pairs [][2]json.RawMessage
		if err := json.Unmarshal(v.Value, &pairs); err != nil || v.Value == nil {
			return nil, fmt.Errorf("decode %s: %w: not serialized", v.Type, ErrUnexpectedValue)
		}
		out := make(map[string]any, len(pairs))
		for _, p := range pairs {
			var key string
			if err := json.Unmarshal(p[0], &key); err != nil {
				// A non-string key is itself a RemoteValue.
				k, kerr := StringValue(p[0])
				if kerr != nil {
					return nil, fmt.Errorf("decode %s key: %w", v.Type, kerr)
				}
				key = k
			}
			x, err := Value(p[1])
			if err != nil {
				return nil, err
			}
			out[key] = x
		}
		return out, nil
	default:
		return nil, fmt.Errorf("decode value: %w: type %q", ErrUnexpectedValue, v.Type)
	}
}

// Source says where a script message or log entry came from.
type Source struct {
	// Realm is the realm id.
	Realm string `json:"realm"`
	// Context is the browsing context id, empty for realms without one
	// (workers).
	Context string `json:"context,omitempty"`
}

// ScriptMessage is the parameters of a "script.message" event: a page
// called a channel function (see ChannelArg) with Data.
type ScriptMessage struct {
	// Channel is the channel name given to ChannelArg.
	Channel string `json:"channel"`
	// Data is the RemoteValue the page passed.
	Data json.RawMessage `json:"data"`
	// Source is the realm and browsing context that sent it.
	Source Source `json:"source"`
}

// ParseScriptMessage decodes the params of a "script.message" event.
func ParseScriptMessage(params json.RawMessage) (ScriptMessage, error) {
	var m ScriptMessage
	if err := json.Unmarshal(params, &m); err != nil {
		return m, fmt.Errorf("decode script.message: %w: %w", ErrBadMessage, err)
	}
	if m.Channel == "" {
		return m, fmt.Errorf("decode script.message: %w: no channel", ErrBadMessage)
	}
	return m, nil
}

// LogEntry is the parameters of a "log.entryAdded" event (console calls and
// uncaught errors in pages).
type LogEntry struct {
	// Type is "console" or "javascript" (an uncaught error).
	Type string `json:"type"`
	// Level is "debug", "info", "warn" or "error".
	Level string `json:"level"`
	// Text is the message text.
	Text string `json:"text"`
	// Method is the console method ("log", "error", ...) for console entries.
	Method string `json:"method,omitempty"`
	// Timestamp is milliseconds since the Unix epoch.
	Timestamp float64 `json:"timestamp"`
	// Source is the realm and browsing context that logged it.
	Source Source `json:"source"`
}

// ParseLogEntry decodes the params of a "log.entryAdded" event.
func ParseLogEntry(params json.RawMessage) (LogEntry, error) {
	var e LogEntry
	if err := json.Unmarshal(params, &e); err != nil {
		return e, fmt.Errorf("decode log.entryAdded: %w: %w", ErrBadMessage, err)
	}
	return e, nil
}
