package leaktest

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// DefaultTimeout is how long a check waits for new goroutines to end when no
// [Timeout] option is given.
const DefaultTimeout = 5 * time.Second

// pollInterval is the step between two looks at the goroutines.
const pollInterval = 20 * time.Millisecond

// alwaysIgnored are frames of goroutines that belong to the runtime or the
// testing framework and can outlive any test: os/signal's loop (one per
// process, started by the first signal.Notify, never stopped) and the main
// goroutine of the test binary.
var alwaysIgnored = []string{"os/signal.loop", "testing.(*M)."}

// An Option changes what a check looks at or how long it waits.
type Option func(*config)

type config struct {
	timeout time.Duration
	ignore  []string
	only    []string
}

// Timeout sets how long a check polls for new goroutines to end before it
// reports them (default [DefaultTimeout]).
func Timeout(d time.Duration) Option {
	return func(c *config) { c.timeout = d }
}

// Ignore skips goroutines whose stack contains one of frames (substrings of
// a stack trace such as "net/http.(*persistConn)"). It adds to earlier
// Ignore options.
func Ignore(frames ...string) Option {
	return func(c *config) { c.ignore = append(c.ignore, frames...) }
}

// Only restricts a check to goroutines whose stack contains one of frames
// (substrings of a stack trace such as "github.com/pion/"); the others are
// neither recorded nor reported. It adds to earlier Only options.
func Only(frames ...string) Option {
	return func(c *config) { c.only = append(c.only, frames...) }
}

// A Snapshot records which goroutines ran when it was taken. Make one with
// [Take].
type Snapshot struct {
	cfg    config
	before map[string]bool // goroutine ids
}

// Take records the goroutines running now, for a later [Snapshot.Wait] or
// [Snapshot.Code].
func Take(opts ...Option) *Snapshot {
	s := &Snapshot{cfg: config{timeout: DefaultTimeout}, before: map[string]bool{}}
	for _, o := range opts {
		o(&s.cfg)
	}
	for id := range s.goroutines() {
		s.before[id] = true
	}
	return s
}

// Wait polls until every goroutine that was not in s (and is not ignored)
// has ended, and returns nil; after the timeout it returns an error with the
// stacks of those still running.
func (s *Snapshot) Wait() error {
	deadline := time.Now().Add(s.cfg.timeout)
	for {
		leaked := s.leaked()
		if len(leaked) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d goroutine(s) leaked (still running after %v):\n\n%s",
				len(leaked), s.cfg.timeout, strings.Join(leaked, "\n\n"))
		}
		time.Sleep(pollInterval) // polling, not synchronization
	}
}

// Code is for TestMain: given the exit code of m.Run, it returns code when
// it is not 0; else it runs [Snapshot.Wait] and returns 0, or 1 after
// printing the leak on stderr.
func (s *Snapshot) Code(code int) int {
	if code != 0 {
		return code
	}
	if err := s.Wait(); err != nil {
		fmt.Fprintf(os.Stderr, "goroutine leak after all tests: %v\n", err)
		return 1
	}
	return 0
}

// Check fails t (with t.Errorf) if goroutines that were not running when
// Check was called are still running, after the timeout, once t and the
// cleanups registered after Check are done. Call it first in a test, so its
// cleanup runs last. Tests that use it must not run in parallel with tests
// that start goroutines.
func Check(t testing.TB, opts ...Option) {
	t.Helper()
	s := Take(opts...)
	t.Cleanup(func() {
		t.Helper() // report the leak at the test's call of Check
		if err := s.Wait(); err != nil {
			t.Errorf("goroutine leak: %v", err)
		}
	})
}

// Running reports whether some goroutine's stack contains frame. Tests use
// it to wait for background work to finish before they take a [Snapshot].
func Running(frame string) bool {
	for _, g := range stacks() {
		if strings.Contains(g, frame) {
			return true
		}
	}
	return false
}

// leaked returns, sorted, the stacks of the goroutines of interest that are
// not in s.
func (s *Snapshot) leaked() []string {
	var out []string
	for id, g := range s.goroutines() {
		if !s.before[id] {
			out = append(out, g)
		}
	}
	slices.Sort(out)
	return out
}

// goroutines returns the stacks of the goroutines s looks at, by id, without
// the calling goroutine.
func (s *Snapshot) goroutines() map[string]string {
	self := id(current())
	out := map[string]string{}
	for _, g := range stacks() {
		gid := id(g)
		if gid == self || containsAny(g, alwaysIgnored) || containsAny(g, s.cfg.ignore) ||
			(len(s.cfg.only) > 0 && !containsAny(g, s.cfg.only)) {
			continue
		}
		out[gid] = g
	}
	return out
}

func containsAny(stack string, frames []string) bool {
	for _, f := range frames {
		if strings.Contains(stack, f) {
			return true
		}
	}
	return false
}

// id returns the id in a stack's header line "goroutine 42 [...]:".
func id(stack string) string {
	f := strings.Fields(stack)
	if len(f) < 2 {
		return ""
	}
	return f[1]
}

// current returns the stack of the calling goroutine.
func current() string {
	buf := make([]byte, 256)
	return string(buf[:runtime.Stack(buf, false)])
}

// stacks returns the stack of every goroutine.
func stacks() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Split(strings.TrimSpace(string(buf[:n])), "\n\n")
		}
		buf = make([]byte, 2*len(buf))
	}
}
