package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/geckohost/geckohost/host"
	"github.com/geckohost/geckohost/internal/leaktest"
	"github.com/geckohost/geckohost/internal/testenv"
)

// TestUserMistakes: what a new user trips over is one clear line.
func TestUserMistakes(t *testing.T) {
	leaktest.Check(t)
	db := filepath.Join(t.TempDir(), "db")
	for _, c := range []struct {
		name string
		args []string
		env  [2]string
		want []string
	}{
		{"command typo", []string{"servee"}, [2]string{}, []string{`unknown command "servee"; did you mean "serve"?`}},
		{"unknown command", []string{"frobnicate"}, [2]string{}, []string{`unknown command "frobnicate"`, "geckohost --help"}},
		{"subcommand typo", []string{"token", "lst"}, [2]string{}, []string{`token: unknown command "lst"; did you mean "list"?`}},
		{"duration without unit", []string{"serve", "--db", db, "--worker-idle", "5"}, [2]string{},
			[]string{`--worker-idle "5" is not a duration`, "90s, 10m or 1h30m"}},
		{"duration from env", []string{"serve", "--db", db}, [2]string{"GECKOHOST_QUEUE_TIMEOUT", "10"},
			[]string{`--queue-timeout "10" (from $GECKOHOST_QUEUE_TIMEOUT) is not a duration`}},
		{"not a number", []string{"serve", "--db", db, "--browsers", "two"}, [2]string{}, []string{`--browsers "two" is not a whole number`}},
		{"flag typo", []string{"serve", "--db", db, "--listn", "x"}, [2]string{}, []string{"unknown flag --listn; did you mean --listen?"}},
		{"firefox missing", []string{"serve", "--db", db, "--firefox", "/nonexistent/firefox"}, [2]string{},
			[]string{"--firefox /nonexistent/firefox: no such file"}},
		{"queue size", []string{"serve", "--db", db, "--queue-size", "-1"}, [2]string{}, []string{"--queue-size -1"}},
		{"queue timeout", []string{"serve", "--db", db, "--queue-timeout", "0s"}, [2]string{}, []string{"--queue-timeout 0s", "positive"}},
		{"metrics listen", []string{"serve", "--db", db, "--metrics-listen", "nowhere"}, [2]string{}, []string{"--metrics-listen"}},
		{"debug listen", []string{"serve", "--db", db, "--debug-listen", "nowhere"}, [2]string{}, []string{"--debug-listen"}},
		{"metrics url alone", []string{"bench", "--token", "x", "--metrics-url", "http://127.0.0.1:1/metrics"}, [2]string{}, []string{"--metrics-url needs --metrics"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.env[0] != "" {
				t.Setenv(c.env[0], c.env[1])
			}
			wantFail(t, geckohost(t, c.args...), c.want...)
		})
	}
	// serve with a missing Firefox said so before creating anything.
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("serve --firefox /nonexistent created the database (%v)", err)
	}

	// version and --version print the same line.
	v, vv := geckohost(t, "version"), geckohost(t, "--version")
	wantOK(t, v)
	wantOK(t, vv)
	if v.stdout != vv.stdout || !strings.HasPrefix(v.stdout, "geckohost "+version) || strings.Count(v.stdout, "\n") != 1 {
		t.Errorf("version %q, --version %q", v.stdout, vv.stdout)
	}

	// Placeholders name what a value is.
	for _, args := range [][]string{{"serve", "--help"}, {"bench", "--help"}, {"sessions", "--help"}, {"token", "add", "--help"}, {"status", "--help"}} {
		r := geckohost(t, args...)
		wantOK(t, r)
		if strings.Contains(r.stdout, " value ") {
			t.Errorf("%v shows a \"value\" placeholder:\n%s", args, r.stdout)
		}
	}
	r := geckohost(t, "serve", "--help")
	for _, f := range []string{"--browsers N", "--queue-size N", "--queue-timeout DURATION", "--worker-idle DURATION",
		"--metrics-listen ADDRESS", "--debug-listen ADDRESS", "GECKOHOST_QUEUE_SIZE", "GECKOHOST_METRICS_LISTEN"} {
		if !strings.Contains(r.stdout, f) {
			t.Errorf("serve --help lacks %q", f)
		}
	}
	// "help serve" still shows serve's help.
	if r := geckohost(t, "help", "serve"); r.code != 0 || !strings.Contains(r.stdout, "geckohost serve") {
		t.Errorf("help serve: %+v", r)
	}
}

// TestStatusCommand prints a server's /status as a table and as JSON.
func TestStatusCommand(t *testing.T) {
	leaktest.Check(t)
	st := host.Status{
		Version: "v1.2.3", Commit: "0123456789abcdef0123", BuildDate: "2026-01-02T03:04:05Z",
		Started: time.Now().Add(-time.Hour), Uptime: 3725, Ready: true,
		Browsers: []host.BrowserStatus{
			{Index: 0, PID: 4242, State: host.BrowserRunning, Workers: 3, Capacity: 150, Restarts: 1, PSSBytes: 412 << 20},
			{Index: 1, State: host.BrowserStarting, Capacity: 150, Restarts: 2},
		},
		Workers: 3, Capacity: 150,
		Queue:    host.QueueStatus{Depth: 4, Size: 200, Timeout: 10},
		Sessions: host.SessionsStatus{Negotiating: 5, Connected: 3},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/status" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st)
	}))
	defer srv.Close()
	defer http.DefaultClient.CloseIdleConnections()

	r := geckohost(t, "status", "--url", srv.URL)
	wantOK(t, r)
	t.Logf("\n%s", r.stdout)
	for _, w := range []string{"geckohost v1.2.3 (commit 0123456789ab, built 2026-01-02T03:04:05Z), up 1h2m, ready",
		"sessions: 5 negotiating, 3 connected", "queue: 4 waiting (at most 200, for 10s each)", "workers: 3 of 150",
		"BROWSER", "4242", "running", "3/150", "412 MiB", "starting"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("status lacks %q", w)
		}
	}
	// ws:// is read as http://; --json prints the server's JSON.
	r = geckohost(t, "status", "--url", "ws"+strings.TrimPrefix(srv.URL, "http")+"/", "--json")
	wantOK(t, r)
	var got host.Status
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Version != "v1.2.3" || len(got.Browsers) != 2 {
		t.Errorf("--json: %v %+v", err, got)
	}
	// Not a geckohost, nothing there.
	wantFail(t, geckohost(t, "status", "--url", srv.URL+"/sub/"), "404")
	srv.Close()
	wantFail(t, geckohost(t, "status", "--url", srv.URL), "is geckohost serve running there?")
}

// TestSystemdUnit checks docs/geckohost.service with systemd-analyze
// verify (where it exists), with ExecStart pointing at a built binary.
func TestSystemdUnit(t *testing.T) {
	unit, err := os.ReadFile("docs/geckohost.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"ProtectSystem=strict", "PrivateTmp=yes", "NoNewPrivileges=yes", "ExecStart=/usr/local/bin/geckohost serve",
		"StateDirectory=geckohost", "Environment=HOME=", "KillMode=mixed"} {
		if !strings.Contains(string(unit), w) {
			t.Errorf("the unit lacks %q", w)
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		testenv.Skip(t, "systemd-analyze", "apt-get install systemd")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "geckohost")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "geckohost.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/geckohost", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), analyze, "verify", path).CombinedOutput()
	t.Logf("systemd-analyze verify: %v\n%s", err, out)
	var relevant []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		// Without a running systemd (containers, CI) verify may complain
		// about its own environment; only lines about our unit count.
		if strings.Contains(l, "geckohost.service") {
			relevant = append(relevant, l)
		}
	}
	if len(relevant) > 0 {
		t.Errorf("systemd-analyze verify complains about the unit:\n%s", strings.Join(relevant, "\n"))
	}
}
