package host

import (
	"strings"
	"testing"

	"github.com/geckohost/geckohost/engine"
)

// TestEarlyEndsNeverTimeout: a worker that ends by itself before
// "connected" is never a 302 (302 is only a timeout), whatever its end
// reason, and its reason names the end reason.
func TestEarlyEndsNeverTimeout(t *testing.T) {
	for _, r := range append(engine.EndReasons(), "", "something-new") {
		var w, c offered
		e := endedError(engine.Event{Kind: engine.EventEnded, Reason: r, Detail: "while testing"}, &w, &c)
		if e.Errno == engine.GeckoTimeout || e.Errno.Meaning() == "" {
			t.Errorf("end %q before connected is %d", r, e.Errno)
		}
		if r != "" && r != engine.EndICEFailed && !strings.Contains(e.Reason, string(r)) {
			t.Errorf("end %q: reason %q does not name it", r, e.Reason)
		}
	}
}

// TestFailedOutcomeCloseCodes: 1008 for 1xx, 1001 for 304, 1011 else.
func TestFailedOutcomeCloseCodes(t *testing.T) {
	for _, e := range engine.Errnos() {
		o := failedOutcome(engine.Errorf(e, "x"))
		want := closeServerError
		switch {
		case e == engine.ShuttingDown:
			want = closeGoingAway
		case e < 200:
			want = closeClientError
		}
		if o.code != want || o.errno != e {
			t.Errorf("errno %d: close %d, want %d", e, o.code, want)
		}
	}
}
