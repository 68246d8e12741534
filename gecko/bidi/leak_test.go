package bidi_test

import (
	"fmt"
	"runtime"
	"strings"
	"time"
)

// goroutines returns the stacks of the current goroutines, keyed by their
// "goroutine N" header.
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
	out := make(map[string]string)
	for _, g := range strings.Split(string(buf), "\n\n") {
		head, _, _ := strings.Cut(g, " [")
		out[head] = g
	}
	return out
}

// leakedGoroutines polls until every goroutine not in before has ended, or
// the timeout passes, and returns the stacks of those still running.
func leakedGoroutines(before map[string]string, timeout time.Duration) string {
	deadline := time.Now().Add(timeout)
	for {
		var leaked []string
		for id, g := range goroutines() {
			if _, ok := before[id]; ok {
				continue
			}
			if strings.Contains(g, "leakedGoroutines") || strings.Contains(g, "testing.(*M)") ||
				strings.Contains(g, "os/signal.signal_recv") {
				continue
			}
			leaked = append(leaked, g)
		}
		if len(leaked) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return fmt.Sprintf("%d leaked goroutines:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
