package cluster

import (
	"encoding/json"
	"testing"

	"github.com/geckohost/geckohost/engine"
)

// FuzzDecodeMessage: any bytes on a relay channel decode to a valid message
// or an error, and a message's events and refusal convert without panic.
func FuzzDecodeMessage(f *testing.F) {
	mid := "0"
	for _, m := range []message{
		{Type: msgStart, SID: "w", From: "a", Start: &startMsg{TokenID: 1, TokenName: "t", Source: "http://x/w.js", Code: "x", Offer: "v=0"}},
		{Type: msgCands, SID: "w", From: "a", Cands: []engine.Candidate{{Candidate: "candidate:1", SDPMid: &mid}}},
		{Type: msgEvents, SID: "w", From: "b", Events: []eventMsg{toEventMsg(engine.Event{Kind: engine.EventAnswer, Answer: "v=0"}),
			toEventMsg(engine.Event{Kind: engine.EventEnded, Reason: engine.EndError, Err: engine.Errorf(202, "x")})}},
		{Type: msgRefused, SID: "w", From: "b", Err: &errMsg{Errno: 301, Reason: "full", NoCapacity: true}},
	} {
		b, _ := json.Marshal(m)
		f.Add(b)
	}
	f.Add([]byte(`{"t":"start","s":"w","f":"a"}`))
	f.Add([]byte(`{"t":"events","s":"w","f":"b","e":[{"k":"nope"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMessage(b)
		if err != nil {
			return
		}
		if m.SID == "" || m.From == "" || (m.Type == msgStart && m.Start == nil) {
			t.Fatalf("decoded %+v", m)
		}
		for _, em := range m.Events {
			if ev, ok := em.event(); ok && (ev.Kind < engine.EventAnswer || ev.Kind > engine.EventEnded) {
				t.Fatalf("event kind %d", ev.Kind)
			}
		}
		if m.Err != nil {
			_ = m.Err.refusal()
		}
	})
}

// FuzzDecodeRecord: stream entries of any shape, in either form, decode or
// fail cleanly, and a record that decodes encodes to one that decodes the
// same.
func FuzzDecodeRecord(f *testing.F) {
	b, _ := encodeRecord(SessionRecord{Front: "a"})
	f.Add(b)
	f.Add([]byte(`{"worker_id":"w","created":"2026-01-02T03:04:05.678Z","egress_refused":3,"run_id":"r"}`))
	f.Add([]byte(`{"worker_id":"w","created":-1,"ended":99999999999999}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeEntry(map[string]any{legacyField: string(b)})
		r, err := decodeEntry(map[string]any{streamField: string(b)})
		if err != nil {
			return
		}
		again, err := encodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := decodeEntry(map[string]any{streamField: string(again)})
		if err != nil || !r2.Created.Equal(r.Created) || r2.WorkerID != r.WorkerID || r2.EgressRefused != r.EgressRefused {
			t.Fatalf("%s: decoded %+v, again %+v, %v", b, r, r2, err)
		}
	})
}

// FuzzParseURL: any --redis value is accepted as a redis:// or rediss://
// URL or refused, and the accepted form never shows a password.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"redis://127.0.0.1:6379/0", "rediss://u:p@h:1/2", "redis:/x", "http://x", "redis://h:99999/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		red, err := ParseURL(s)
		if err != nil {
			return
		}
		if len(red) >= 8 && red[:8] != "redis://" && (len(red) < 9 || red[:9] != "rediss://") {
			t.Fatalf("accepted %q as %q", s, red)
		}
	})
}
