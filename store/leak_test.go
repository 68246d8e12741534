package store

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"
)

// TestMain fails the run when goroutines outlive the tests.
func TestMain(m *testing.M) {
	before := goroutineCount()
	code := m.Run()
	if code == 0 {
		if leaked := waitGoroutines(before, 5*time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutine leak:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

func goroutineCount() int { return runtime.NumGoroutine() }

// waitGoroutines polls until at most n goroutines run, returning the stacks
// of the extra ones when the deadline passes.
func waitGoroutines(n int, d time.Duration) string {
	deadline := time.Now().Add(d)
	for {
		if runtime.NumGoroutine() <= n {
			return ""
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			return fmt.Sprintf("%d goroutines, want <= %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkLeaks registers a per-test check that every goroutine started during
// the test is gone by its end.
func checkLeaks(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		if leaked := waitGoroutines(before, 5*time.Second); leaked != "" {
			t.Errorf("goroutine leak:\n%s", leaked)
		}
	})
}
