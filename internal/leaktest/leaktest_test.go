package leaktest_test

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/geckohost/geckohost/internal/leaktest"
)

func TestMain(m *testing.M) {
	snap := leaktest.Take()
	os.Exit(snap.Code(m.Run()))
}

// recorder is a testing.TB whose cleanups run on demand and whose errors are
// recorded instead of failing the test.
type recorder struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
	errs     []string
}

func (r *recorder) Helper()          {}
func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// finish runs the cleanups, last registered first, and returns the errors.
func (r *recorder) finish() []string {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	return r.errs
}

// blocked runs until release is closed; its name shows in its stack.
func blocked(release <-chan struct{}, done *sync.WaitGroup) {
	defer done.Done()
	<-release
}

// start runs f(release, done) in a new goroutine and returns once f runs (a
// goroutine that has not run yet shows only the go statement's wrapper).
func start(f func(<-chan struct{}, *sync.WaitGroup), release <-chan struct{}, done *sync.WaitGroup) {
	done.Add(1)
	started := make(chan struct{})
	go func() {
		close(started)
		f(release, done)
	}()
	<-started
}

func TestCheckReportsLeak(t *testing.T) {
	var wg sync.WaitGroup
	release := make(chan struct{})
	defer wg.Wait()
	defer close(release)

	r := &recorder{TB: t}
	leaktest.Check(r, leaktest.Timeout(100*time.Millisecond))
	start(blocked, release, &wg)
	errs := r.finish()
	if len(errs) != 1 || !strings.Contains(errs[0], "leaktest_test.blocked") || !strings.Contains(errs[0], "1 goroutine(s) leaked") {
		t.Fatalf("errors = %q, want one naming leaktest_test.blocked", errs)
	}
}

func TestCheckWaitsForGoroutinesToEnd(t *testing.T) {
	var wg sync.WaitGroup
	release := make(chan struct{})
	r := &recorder{TB: t}
	leaktest.Check(r)
	start(blocked, release, &wg)
	// Registered after Check, so it runs first: the goroutine ends while
	// Check polls.
	r.Cleanup(func() { time.AfterFunc(100*time.Millisecond, func() { close(release) }) })
	if errs := r.finish(); len(errs) != 0 {
		t.Fatalf("errors = %q, want none", errs)
	}
	wg.Wait()
}

func TestOldGoroutinesAreNotReported(t *testing.T) {
	var wg sync.WaitGroup
	release := make(chan struct{})
	defer wg.Wait()
	defer close(release)
	start(blocked, release, &wg)

	r := &recorder{TB: t}
	leaktest.Check(r, leaktest.Timeout(50*time.Millisecond))
	if errs := r.finish(); len(errs) != 0 {
		t.Fatalf("errors = %q, want none", errs)
	}
}

// A leak is caught even when another goroutine ended meanwhile, so that
// the number of goroutines did not grow.
func TestReplacedGoroutineIsReported(t *testing.T) {
	var oldWG, newWG sync.WaitGroup
	oldRelease, newRelease := make(chan struct{}), make(chan struct{})
	start(blocked, oldRelease, &oldWG)
	defer newWG.Wait()
	defer close(newRelease)

	snap := leaktest.Take(leaktest.Timeout(50 * time.Millisecond))
	close(oldRelease)
	oldWG.Wait()
	start(blocked, newRelease, &newWG)
	if err := snap.Wait(); err == nil || !strings.Contains(err.Error(), "leaktest_test.blocked") {
		t.Fatalf("Wait = %v, want the new goroutine reported", err)
	}
}

// sessionLoop is blocked under another name.
func sessionLoop(release <-chan struct{}, done *sync.WaitGroup) {
	defer done.Done()
	<-release
}

func TestOnlyAndIgnore(t *testing.T) {
	var wg sync.WaitGroup
	release := make(chan struct{})
	defer wg.Wait()
	defer close(release)

	only := leaktest.Take(leaktest.Only("leaktest_test.sessionLoop"), leaktest.Timeout(50*time.Millisecond))
	ignore := leaktest.Take(leaktest.Ignore("leaktest_test.blocked"), leaktest.Timeout(50*time.Millisecond))
	start(blocked, release, &wg)
	start(sessionLoop, release, &wg)

	err := only.Wait()
	if err == nil || !strings.Contains(err.Error(), "sessionLoop") || strings.Contains(err.Error(), "leaktest_test.blocked") {
		t.Errorf("Only: Wait = %v, want only sessionLoop reported", err)
	}
	err = ignore.Wait()
	if err == nil || !strings.Contains(err.Error(), "sessionLoop") || strings.Contains(err.Error(), "leaktest_test.blocked") {
		t.Errorf("Ignore: Wait = %v, want only sessionLoop reported", err)
	}
}

func TestCode(t *testing.T) {
	var wg sync.WaitGroup
	release := make(chan struct{})
	defer wg.Wait()
	defer close(release)

	snap := leaktest.Take(leaktest.Timeout(50 * time.Millisecond))
	if got := snap.Code(3); got != 3 {
		t.Errorf("Code(3) = %d, want 3", got)
	}
	if got := snap.Code(0); got != 0 {
		t.Errorf("Code(0) without leak = %d, want 0", got)
	}
	start(blocked, release, &wg)
	if got := snap.Code(0); got != 1 {
		t.Errorf("Code(0) with a leak = %d, want 1", got)
	}
}

// runningLoop is started by TestRunning only.
func runningLoop(release <-chan struct{}, done *sync.WaitGroup) {
	defer done.Done()
	<-release
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRunning(t *testing.T) {
	const frame = "leaktest_test.runningLoop"
	if leaktest.Running(frame) {
		t.Fatal("Running before the goroutine started")
	}
	var wg sync.WaitGroup
	release := make(chan struct{})
	start(runningLoop, release, &wg)
	eventually(t, "Running never saw the goroutine", func() bool { return leaktest.Running(frame) })
	close(release)
	wg.Wait()
	eventually(t, "Running still sees the goroutine after it ended", func() bool { return !leaktest.Running(frame) })
}
