package wire_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/host/wire"
)

var frameSeeds = []string{
	`{"messageType":"hello","action":"client-hello","authorization":"Bearer gh_x","source":"https://example.com/w.js","webrtcOffer":"v=0\r\n"}`,
	`{"messageType":"hello","action":"client-hello","source":"s","webrtcOffer":"o"}`,
	`{"messageType":"hello","action":"client-hello","authorization":null,"source":"s","webrtcOffer":"o","extra":[1,2]}`,
	`{"messageType":"ice","action":"client-candidate","candidate":{"candidate":"candidate:2 1 UDP 2122187007 10.252.27.213 41683 typ host","sdpMid":"","sdpMLineIndex":0}}`,
	`{"messageType":"ice","action":"client-candidate","candidate":{"candidate":""}}`,
	`{"messageType":"ice","action":"client-candidate","candidate":{"candidate":"c","sdpMid":null,"sdpMLineIndex":null,"usernameFragment":"u"}}`,
	`{"messageType":"ice","action":"client-candidate","candidate":{"candidate":"c","sdpMLineIndex":70000}}`,
	`{"messageType":"ice","action":"client-candidate","candidate":"c"}`,
	`{"messageType":"ice","action":"client-candidate"}`,
	`{"messageType":"hello","action":"worker-hello"}`,
	`{"messageType":1,"action":"client-hello"}`,
	`[1,2,3]`, `"hello"`, `null`, `42`, `not json`, ``, `{`, `{"a":}`, " \t{}", "\xff\xfe",
}

func FuzzParseClientFrame(f *testing.F) {
	for _, s := range frameSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := wire.ParseClientFrame(data)
		if err != nil {
			var we *engine.Error
			if !errors.As(err, &we) || we.Errno != engine.InvalidMessage || we.Reason == "" {
				t.Fatalf("error %v is not a 103 *engine.Error", err)
			}
			if fr.Kind != 0 {
				t.Fatalf("kind %v with error", fr.Kind)
			}
			return
		}
		switch fr.Kind {
		case wire.FrameHello, wire.FrameCandidate:
		default:
			t.Fatalf("no error and kind %v", fr.Kind)
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
	})
}

func TestParseClientFrame(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		kind   wire.FrameKind
		reason string // substring of the 103 reason; "" means success
	}{
		{"hello", frameSeeds[0], wire.FrameHello, ""},
		{"hello without authorization", frameSeeds[1], wire.FrameHello, ""},
		{"hello null authorization, extra field", frameSeeds[2], wire.FrameHello, ""},
		{"candidate", frameSeeds[3], wire.FrameCandidate, ""},
		{"end of candidates", frameSeeds[4], wire.FrameCandidate, ""},
		{"candidate nulls", frameSeeds[5], wire.FrameCandidate, ""},
		{"sdpMLineIndex out of range", frameSeeds[6], 0, "sdpMLineIndex"},
		{"candidate not an object", frameSeeds[7], 0, "not an object"},
		{"candidate missing", frameSeeds[8], 0, "missing field candidate"},
		{"unknown action", frameSeeds[9], 0, "unknown messageType/action"},
		{"ill-typed messageType", frameSeeds[10], 0, "messageType is not a string"},
		{"array", `[1]`, 0, "not a JSON object"},
		{"string", `"x"`, 0, "not a JSON object"},
		{"not json", `hello`, 0, "not JSON"},
		{"truncated", `{"messageType":`, 0, "not JSON"},
		{"empty", ``, 0, "not JSON"},
		{"missing source", `{"messageType":"hello","action":"client-hello","webrtcOffer":"o"}`, 0, "missing field source"},
		{"missing offer", `{"messageType":"hello","action":"client-hello","source":"s"}`, 0, "missing field webrtcOffer"},
		{"ill-typed authorization", `{"messageType":"hello","action":"client-hello","authorization":5,"source":"s","webrtcOffer":"o"}`, 0, "authorization is not a string"},
		{"missing action", `{"messageType":"hello"}`, 0, "missing field action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr, err := wire.ParseClientFrame([]byte(tt.in))
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("ParseClientFrame: %v", err)
				}
				if fr.Kind != tt.kind {
					t.Fatalf("kind = %v, want %v", fr.Kind, tt.kind)
				}
				return
			}
			var we *engine.Error
			if !errors.As(err, &we) || we.Errno != engine.InvalidMessage {
				t.Fatalf("err = %v, want 103", err)
			}
			if !strings.Contains(we.Reason, tt.reason) {
				t.Fatalf("reason %q does not contain %q", we.Reason, tt.reason)
			}
		})
	}
}

func TestParseClientFrameFields(t *testing.T) {
	fr, err := wire.ParseClientFrame([]byte(frameSeeds[0]))
	if err != nil {
		t.Fatal(err)
	}
	if fr.Hello.Authorization != "Bearer gh_x" || fr.Hello.Source != "https://example.com/w.js" || fr.Hello.Offer != "v=0\r\n" {
		t.Fatalf("hello = %+v", fr.Hello)
	}
	fr, err = wire.ParseClientFrame([]byte(frameSeeds[3]))
	if err != nil {
		t.Fatal(err)
	}
	c := fr.Candidate
	if c.SDPMid == nil || *c.SDPMid != "" || c.SDPMLineIndex == nil || *c.SDPMLineIndex != 0 || c.UsernameFragment != nil {
		t.Fatalf("candidate = %+v", c)
	}
}

func TestWorkerErrorJSON(t *testing.T) {
	b, _ := json.Marshal(wire.NewWorkerError("", engine.Errorf(engine.InvalidToken, "nope")))
	if got, want := string(b), `{"messageType":"worker-error","workerId":null,"errno":102,"reason":"nope"}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	b, _ = json.Marshal(wire.NewWorkerError("ab", engine.Errorf(engine.GeckoTimeout, "slow")))
	if got, want := string(b), `{"messageType":"worker-error","workerId":"ab","errno":302,"reason":"slow"}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func ExampleParseClientFrame() {
	fr, err := wire.ParseClientFrame([]byte(`{"messageType":"ice","action":"client-candidate","candidate":{"candidate":"candidate:1 1 UDP 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}}`))
	fmt.Println(fr.Kind, err, *fr.Candidate.SDPMid)
	_, err = wire.ParseClientFrame([]byte(`{"messageType":"ice"}`))
	fmt.Println(err)
	// Output:
	// client-candidate <nil> 0
	// INVALID_MESSAGE (103): missing field action
}

func BenchmarkParseClientFrame(b *testing.B) {
	hello := []byte(frameSeeds[0])
	ice := []byte(frameSeeds[3])
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.ParseClientFrame(hello); err != nil {
			b.Fatal(err)
		}
		if _, err := wire.ParseClientFrame(ice); err != nil {
			b.Fatal(err)
		}
	}
}
