package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/geckohost/geckohost/gecko"
	"github.com/geckohost/geckohost/gecko/chromium"
	"github.com/geckohost/geckohost/internal/leaktest"
	"github.com/geckohost/geckohost/internal/netns"
	"github.com/geckohost/geckohost/internal/testenv"
)

// serveEngine is one row of the engine table of the root's end-to-end
// tests (faults, networks, serve, cluster): each such test runs once per
// engine, as subtests named after it (TestFaultFirefoxKilled/chromium).
type serveEngine struct {
	// name is the subtest's name and serve's --engine value.
	name string
	// started is the log message of a browser start (its "pid" field the
	// browser's).
	started string
	// dirs are the glob patterns of the engine's temporary profile (user
	// data) directories.
	dirs []string
	// stale is serve's log message for each stale profile it removes at
	// start (the "dir" field the profile's).
	stale string
	// deb is the Debian package that installs the browser.
	deb string
}

// serveEngines is the table. E2E_ENGINES=firefox (a comma-separated list)
// runs only those rows.
var serveEngines = []serveEngine{
	{name: "firefox", started: "firefox started", dirs: []string{"geckohost-profile-*", "geckohost-template-*"}, stale: "removed a stale browser profile", deb: "firefox-esr"},
	{name: "chromium", started: "chromium started", dirs: []string{"geckohost-chromium-*"}, stale: "removed a stale browser profile", deb: "chromium"},
}

// serveExceptions are the root tests that cannot hold for an engine because
// it lacks a mechanism, with the reason (as the README's per-engine limits
// say); that row skips with "exception: ...".
var serveExceptions = map[string]map[string]string{
	// A known gap of the Chromium engine (issue 23 stays open): a fault
	// still to fix, not a missing mechanism; listed by make test.
	"TestNetworkUDPBlocked": {"chromium": "known gap (issue 23): the worker's relay candidate is trickled about 70-900 ms after its answer, often after the client connected, so the client is not sent one"},
}

// flags are the serve flags that select the engine: none for Firefox (the
// default), --engine NAME for the others.
func (e serveEngine) flags() []string {
	if e.name == "firefox" {
		return nil
	}
	return []string{"--engine", e.name}
}

// profilesIn lists the engine's profile directories in dir.
func (e serveEngine) profilesIn(dir string) []string {
	var out []string
	for _, p := range e.dirs {
		m, _ := filepath.Glob(filepath.Join(dir, p))
		out = append(out, m...)
	}
	return out
}

// rootEngines returns the table's rows to run.
func rootEngines() []serveEngine {
	env := os.Getenv("E2E_ENGINES")
	if env == "" {
		return serveEngines
	}
	var out []serveEngine
	for _, e := range serveEngines {
		if slices.Contains(strings.Split(env, ","), e.name) {
			out = append(out, e)
		}
	}
	return out
}

// needServeEngine skips t when the engine's browser is missing (a missing
// component) or when t is a documented exception for it.
func needServeEngine(t *testing.T, e serveEngine) {
	t.Helper()
	if why, ok := serveExceptions[strings.Split(t.Name(), "/")[0]][e.name]; ok {
		t.Skip("exception: " + e.name + ": " + why)
	}
	var err error
	switch e.name {
	case "firefox":
		_, err = gecko.FindFirefox("")
	case "chromium":
		_, err = chromium.FindChromium("")
	default:
		err = errors.New("unknown engine")
	}
	if err != nil {
		testenv.Skip(t, e.deb, "apt-get install "+e.deb, err)
	}
}

// forServeEngines runs body once per engine as parallel subtests (each
// serve and its browser are the subtest's own). With check, the leak
// check of the test's goroutines is the parent's, around both.
func forServeEngines(t *testing.T, check bool, body func(t *testing.T, e serveEngine)) {
	t.Helper()
	runServeEngines(t, check, true, body)
}

// forServeEnginesSerial is forServeEngines with the subtests one after
// the other (tests that start several browsers at once).
func forServeEnginesSerial(t *testing.T, check bool, body func(t *testing.T, e serveEngine)) {
	t.Helper()
	runServeEngines(t, check, false, body)
}

func runServeEngines(t *testing.T, check, parallel bool, body func(t *testing.T, e serveEngine)) {
	t.Helper()
	netns.Skip(t)
	if check {
		leaktest.Check(t)
	}
	for _, e := range rootEngines() {
		t.Run(e.name, func(t *testing.T) {
			needServeEngine(t, e)
			if parallel {
				t.Parallel()
			}
			body(t, e)
		})
	}
}

// engineTest is serveTestFor for a subtest of forServeEngines (which
// skipped what cannot run and checks leaks): the subtest's context of d.
func engineTest(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// setEngine makes cfg run engine e (in-process serves).
func setEngine(cfg *serveConfig, e serveEngine) error {
	cfg.Engine = e.name
	return nil
}

// engineConfig returns a startServeWith tweak that selects engine e, then
// applies tweak (nil: none).
func engineConfig(t *testing.T, e serveEngine, tweak func(*serveConfig)) func(*serveConfig) {
	return func(c *serveConfig) {
		if err := setEngine(c, e); err != nil {
			t.Fatal(err)
		}
		if tweak != nil {
			tweak(c)
		}
	}
}
