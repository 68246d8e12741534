package bidi

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
)

func TestDecodeMessage(t *testing.T) {
	for _, tc := range []struct {
		in   string
		kind messageKind
		ok   bool
	}{
		{`{"type":"success","id":3,"result":{"a":1}}`, kindSuccess, true},
		{`{"type":"success","id":3}`, kindSuccess, true},
		{`{"type":"error","id":4,"error":"unknown command","message":"x"}`, kindError, true},
		{`{"type":"error","id":null,"error":"invalid argument","message":"x"}`, kindError, true},
		{`{"type":"event","method":"log.entryAdded","params":{}}`, kindEvent, true},
		{`{"type":"success"}`, 0, false},
		{`{"type":"error","id":1}`, 0, false},
		{`{"type":"event"}`, 0, false},
		{`{"type":"nope"}`, 0, false},
		{`[1]`, 0, false},
		{`{"type":"success","id":-1}`, 0, false},
	} {
		m, err := decodeMessage([]byte(tc.in))
		if (err == nil) != tc.ok || (tc.ok && m.kind != tc.kind) {
			t.Errorf("decodeMessage(%s) = %+v, %v", tc.in, m, err)
		}
		if err != nil && !errors.Is(err, ErrBadMessage) {
			t.Errorf("decodeMessage(%s): error %v does not wrap ErrBadMessage", tc.in, err)
		}
	}
}

func TestNumberValue(t *testing.T) {
	for in, want := range map[string]float64{
		`{"type":"number","value":2.5}`:         2.5,
		`{"type":"number","value":"Infinity"}`:  math.Inf(1),
		`{"type":"number","value":"-Infinity"}`: math.Inf(-1),
	} {
		got, err := NumberValue(json.RawMessage(in))
		if err != nil || got != want {
			t.Errorf("NumberValue(%s) = %v, %v", in, got, err)
		}
	}
	if f, err := NumberValue(json.RawMessage(`{"type":"number","value":"NaN"}`)); err != nil || !math.IsNaN(f) {
		t.Errorf("NaN: %v %v", f, err)
	}
	if _, err := NumberValue(json.RawMessage(`{"type":"string","value":"1"}`)); !errors.Is(err, ErrUnexpectedValue) {
		t.Errorf("string as number: %v", err)
	}
}

func TestValueTypes(t *testing.T) {
	if _, err := Value(json.RawMessage(`{"type":"function","handle":"x"}`)); !errors.Is(err, ErrUnexpectedValue) {
		t.Errorf("function: %v", err)
	}
	if _, err := Value(json.RawMessage(`{"type":"object"}`)); !errors.Is(err, ErrUnexpectedValue) {
		t.Errorf("unserialized object: %v", err)
	}
	v, err := Value(json.RawMessage(`{"type":"map","value":[[{"type":"string","value":"k"},{"type":"undefined"}]]}`))
	if m, ok := v.(map[string]any); err != nil || !ok || len(m) != 1 || m["k"] != nil {
		t.Errorf("map = %#v, %v", v, err)
	}
	if b, err := BoolValue(json.RawMessage(`{"type":"boolean","value":true}`)); err != nil || !b {
		t.Errorf("bool = %v, %v", b, err)
	}
}

func TestParseLogEntry(t *testing.T) {
	e, err := ParseLogEntry(json.RawMessage(`{"type":"console","method":"log","level":"info","text":"hi","timestamp":1,"source":{"realm":"r","context":"c"},"args":[]}`))
	if err != nil || e.Text != "hi" || e.Level != "info" || e.Source.Context != "c" {
		t.Fatalf("ParseLogEntry = %+v, %v", e, err)
	}
}

func FuzzDecodeMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"success","id":3,"result":{"a":1}}`,
		`{"type":"error","id":4,"error":"unknown command","message":"x","stacktrace":""}`,
		`{"type":"event","method":"script.message","params":{"channel":"c","data":{"type":"string","value":"v"},"source":{"realm":"r"}}}`,
		`{"type":"event","method":"x","params":null}`,
		`{}`, `null`, `"x"`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeMessage(data)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v does not wrap ErrBadMessage", err)
			}
			return
		}
		switch m.kind {
		case kindSuccess:
			if !m.hasID || len(m.result) == 0 {
				t.Fatalf("success without id or result: %+v", m)
			}
		case kindError:
			if m.errCode == "" {
				t.Fatalf("error without code: %+v", m)
			}
		case kindEvent:
			if m.method == "" || len(m.params) == 0 {
				t.Fatalf("event without method or params: %+v", m)
			}
			// Event params are handed to decoders; they must not panic.
			_, _ = ParseScriptMessage(m.params)
			_, _ = ParseLogEntry(m.params)
			_, _ = Value(m.params)
		default:
			t.Fatalf("no kind: %+v", m)
		}
	})
}
