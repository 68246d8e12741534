package store

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the run when goroutines outlive the tests.
func TestMain(m *testing.M) {
	if path := os.Getenv(helperEnv); path != "" {
		os.Exit(runHelper(path))
	}
	before := len(goroutines())
	code := m.Run()
	if code == 0 {
		if leaked := waitGoroutines(before, 5*time.Second); leaked != "" {
			fmt.Fprintln(os.Stderr, leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// goroutines returns the stacks of the running goroutines, without the
// runtime's long-lived os/signal loop (started by the first signal.Notify,
// e.g. by the fuzzing engine, and never stopped).
func goroutines() []string {
	buf := make([]byte, 1<<20)
	var out []string
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if !strings.Contains(g, "os/signal.loop") {
			out = append(out, g)
		}
	}
	return out
}

// waitGoroutines polls until at most n goroutines run, else returns a
// description with every stack.
func waitGoroutines(n int, d time.Duration) string {
	deadline := time.Now().Add(d)
	for {
		g := goroutines()
		if len(g) <= n {
			return ""
		}
		if time.Now().After(deadline) {
			return fmt.Sprintf("goroutine leak: %d goroutines, want <= %d:\n%s", len(g), n, strings.Join(g, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkLeaks registers a per-test check that every goroutine started during
// the test is gone by its end. Tests using it must not run in parallel.
func checkLeaks(t *testing.T) {
	t.Helper()
	before := len(goroutines())
	t.Cleanup(func() {
		if leaked := waitGoroutines(before, 5*time.Second); leaked != "" {
			t.Error(leaked)
		}
	})
}
