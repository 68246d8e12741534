package web_test

import (
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"
)

// checkLeaks fails t if, once t and its cleanups are done, goroutines that
// were not there when checkLeaks was called are still running after a grace
// period. Call it first in a test, so its cleanup runs last.
func checkLeaks(t *testing.T) {
	t.Helper()
	before := goroutines()
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		var extra []string
		for {
			extra = extra[:0]
			now := goroutines()
			for id, stack := range now {
				if _, ok := before[id]; !ok && !benign(stack) {
					extra = append(extra, stack)
				}
			}
			if len(extra) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond) // polling, not synchronization
		}
		if len(extra) > 0 {
			sort.Strings(extra)
			t.Errorf("%d goroutine(s) leaked:\n\n%s", len(extra), strings.Join(extra, "\n\n"))
		}
	})
}

// goroutines returns the stack of every goroutine, keyed by its header line
// ("goroutine 42 [...]:" without the state).
func goroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		head, _, _ := strings.Cut(g, "\n")
		id, _, _ := strings.Cut(head, " [")
		out[id] = g
	}
	return out
}

// benign reports goroutines that belong to the runtime or the test framework.
func benign(stack string) bool {
	for _, s := range []string{
		"testing.(*T).Run",
		"testing.tRunner",
		"testing.(*M).",
		"runtime.goexit0",
		"os/signal.signal_recv",
		"runtime.ensureSigM",
		"created by runtime.gc",
		"runtime.forcegchelper",
		"runtime.bgsweep",
		"runtime.bgscavenge",
		"runtime.runfinq",
		"net/http.(*persistConn)", // idle keep-alive connections of http.DefaultClient
	} {
		if strings.Contains(stack, s) && !strings.Contains(stack, "geckohost") {
			return true
		}
	}
	return false
}
