package e2e_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/gecko"
	"github.com/geckohost/geckohost/internal/leaktest"
	"github.com/geckohost/geckohost/internal/netns"
	"github.com/geckohost/geckohost/internal/testenv"
)

// engineKind names an engine the end-to-end tests run against: every test
// of a worker's life runs once per engine, as subtests named after it
// (TestEchoTextAndBinary/firefox, TestEchoTextAndBinary/chromium).
type engineKind string

const (
	firefox  engineKind = "firefox"
	chromium engineKind = "chromium"
)

// allEngines are the engines of the table. E2E_ENGINES=firefox (a comma
// separated list) runs only those.
var allEngines = []engineKind{firefox, chromium}

// enginePool is what the tests use of a pool: *gecko.Pool and
// *chromium.Pool both satisfy it (BrowserInfo's fields mean the same for
// both: PID the browser's, BiDi its control URL, Contents its content or
// renderer processes).
type enginePool interface {
	engine.Engine
	Start(ctx context.Context) error
	Close(ctx context.Context) error
	Browsers() []gecko.BrowserInfo
	Slots() []gecko.BrowserInfo
}

var _ enginePool = (*gecko.Pool)(nil)

// exceptions are the tests that cannot hold for an engine because it lacks
// the mechanism they test, with the reason (the README's per-engine limits
// say the same). The test's subtest for that engine skips with
// "exception: <reason>" (listed by make test, not a missing component).
var exceptions = map[string]map[engineKind]string{
	"TestWorkerCapHonest": {chromium: "dom.workers.maxPerDomain is Firefox's per-origin worker cap; Chromium has no such cap to meet"},
}

// engines returns the engines to run: allEngines, or E2E_ENGINES's.
func engines() []engineKind {
	env := os.Getenv("E2E_ENGINES")
	if env == "" {
		return allEngines
	}
	var out []engineKind
	for _, name := range strings.Split(env, ",") {
		if e := engineKind(strings.TrimSpace(name)); slices.Contains(allEngines, e) {
			out = append(out, e)
		}
	}
	return out
}

// needEngine skips t (a missing component) when the engine's browser is
// not installed, and skips it as a documented exception when the test is
// one for this engine.
func needEngine(t testing.TB, e engineKind) {
	t.Helper()
	if why, ok := exceptions[strings.Split(t.Name(), "/")[0]][e]; ok {
		t.Skip("exception: " + string(e) + ": " + why)
	}
	switch e {
	case firefox:
		if _, err := gecko.FindFirefox(""); err != nil {
			testenv.Skip(t, "firefox", "apt-get install firefox-esr", err)
		}
	case chromium:
		if err := findChromium(); err != nil {
			testenv.Skip(t, "chromium", "apt-get install chromium", err)
		}
	}
}

// forEngines runs body once per engine, as parallel subtests named after
// the engine: each builds the stacks it needs (ownStack). The leak check of
// per-session goroutines is the parent's, taken before the subtests start
// and checked once both have ended (their stacks closed).
func forEngines(t *testing.T, body func(t *testing.T, e engineKind)) {
	t.Helper()
	netns.Skip(t)
	leaktest.Check(t, sessionLeaks...)
	for _, e := range engines() {
		t.Run(string(e), func(t *testing.T) {
			needEngine(t, e)
			t.Parallel()
			body(t, e)
		})
	}
}

// forShared runs body once per engine on that engine's shared stack (see
// setup), as parallel subtests named after the engine. The shared stacks
// are started before the parent's leak check, so that their long-lived
// goroutines are not counted.
func forShared(t *testing.T, body func(t *testing.T, s *stack)) {
	t.Helper()
	netns.Skip(t)
	for _, e := range engines() {
		if _, ok := exceptions[t.Name()][e]; !ok {
			startShared(e)
		}
	}
	leaktest.Check(t, sessionLeaks...)
	for _, e := range engines() {
		t.Run(string(e), func(t *testing.T) {
			needEngine(t, e)
			t.Parallel()
			body(t, setup(t, e))
		})
	}
}

// sharedStacks are the stacks shared by the tests, one per engine.
var sharedStacks = struct {
	sync.Mutex
	m map[engineKind]*sharedStack
}{m: map[engineKind]*sharedStack{}}

type sharedStack struct {
	once sync.Once
	s    *stack
	err  error
}

func sharedOf(e engineKind) *sharedStack {
	sharedStacks.Lock()
	defer sharedStacks.Unlock()
	ss := sharedStacks.m[e]
	if ss == nil {
		ss = &sharedStack{}
		sharedStacks.m[e] = ss
	}
	return ss
}

// perEngine picks an engine's value from a per-engine table, falling back
// to Firefox's.
func perEngine[V any](e engineKind, m map[engineKind]V) V {
	if v, ok := m[e]; ok {
		return v
	}
	return m[firefox]
}
