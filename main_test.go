package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/internal/leaktest"
	"github.com/geckohost/geckohost/internal/netns"
	"github.com/geckohost/geckohost/internal/proc"
	"github.com/geckohost/geckohost/internal/syncbuf"
	"github.com/geckohost/geckohost/store"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild()) // a process a network test started in its namespace
	}
	if !netns.Inside() && os.Geteuid() == 0 {
		// Re-run inside a private network namespace with only lo, so the
		// end-to-end serve test's WebRTC packets cannot leave the machine.
		os.Exit(netns.Run(m))
	}
	snap := leaktest.Take()
	os.Exit(snap.Code(m.Run()))
}

type result struct {
	code           int
	stdout, stderr string
}

// cliMu serialises in-process runs of the app: urfave/cli applies its
// flags to shared package state (the per-engine subtests run in parallel).
var cliMu sync.Mutex

// geckohost runs the app in-process with args (without the program name).
func geckohost(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	cliMu.Lock()
	defer cliMu.Unlock()
	code := run(ctx, append([]string{"geckohost"}, args...), &out, &errb)
	return result{code, out.String(), errb.String()}
}

// wantFail checks a failed run: exit 1, nothing on stdout, exactly one line
// "geckohost: ..." on stderr containing every want.
func wantFail(t *testing.T, r result, want ...string) {
	t.Helper()
	if r.stdout != "" {
		t.Errorf("stdout %q, want nothing", r.stdout)
	}
	wantOneLineError(t, r, want...)
}

// wantOneLineError checks a failed run that may have printed a report:
// exit 1 and exactly one "geckohost: ..." line on stderr containing every
// want, no stack trace.
func wantOneLineError(t *testing.T, r result, want ...string) {
	t.Helper()
	if r.code != 1 {
		t.Errorf("exit %d, want 1 (stderr %q)", r.code, r.stderr)
	}
	if !strings.HasPrefix(r.stderr, "geckohost: ") || strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Errorf("stderr %q, want one line starting with geckohost:", r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr %q does not contain %q", r.stderr, w)
		}
	}
	if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic") {
		t.Errorf("stderr looks like a stack trace: %q", r.stderr)
	}
}

func wantOK(t *testing.T, r result) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}

var secretRE = regexp.MustCompile(`^gh_[A-Za-z0-9_-]{43}\n$`)

func openStore(t *testing.T, path string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestTokenAddPrintsSecretAlone(t *testing.T) {
	leaktest.Check(t)
	db := filepath.Join(t.TempDir(), "sub", "geckohost.db")
	r := geckohost(t, "token", "add", "--db", db, "--name", "me", "--expires", "720h",
		"--source", "http://127.0.0.1:*", "--source", "https://*.example.com", "--max-workers", "3", "--rate", "60/1m",
		"--worker-memory", "256MiB", "--worker-max-lifetime", "2h")
	wantOK(t, r)
	if !secretRE.MatchString(r.stdout) {
		t.Fatalf("stdout %q is not one secret line", r.stdout)
	}
	if !strings.Contains(r.stderr, `created token "me"`) || strings.Contains(r.stderr, strings.TrimSpace(r.stdout)) {
		t.Errorf("stderr %q", r.stderr)
	}
	tok, err := openStore(t, db).LookupToken(context.Background(), strings.TrimSpace(r.stdout))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Name != "me" || tok.MaxWorkers != 3 || len(tok.Sources) != 2 || tok.Expires.Sub(tok.Created) != 720*time.Hour ||
		tok.Rate != (domain.Rate{Count: 60, Window: time.Minute}) || tok.WorkerMemory != 256<<20 || tok.WorkerLifetime != 2*time.Hour {
		t.Errorf("stored token %+v", tok)
	}
	if fi, err := os.Stat(db); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("db file mode: %v, %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Dir(db)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("db dir mode: %v, %v", fi.Mode(), err)
	}
}

func TestTokenListRevoke(t *testing.T) {
	leaktest.Check(t)
	db := filepath.Join(t.TempDir(), "db")
	wantOK(t, geckohost(t, "token", "add", "--db", db, "--name", "alice", "--expires", "30d"))
	bob := geckohost(t, "token", "add", "--db", db, "--name", "bob", "--rate", "10/1s")
	wantOK(t, bob)

	r := geckohost(t, "token", "list", "--db", db)
	wantOK(t, r)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], "alice") || !strings.Contains(lines[2], "bob") {
		t.Errorf("table:\n%s", r.stdout)
	}
	// The RATE column: "-" for alice, 10/1s for bob.
	col := strings.Index(lines[0], "RATE") // the header is ASCII; the rows have a "…"
	from := func(line string) string { return string([]rune(line)[col:]) }
	if col < 0 || !strings.HasPrefix(from(lines[1]), "- ") || !strings.HasPrefix(from(lines[2]), "10/1s ") {
		t.Errorf("RATE column:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout, strings.TrimSpace(bob.stdout)) {
		t.Error("token list shows a secret")
	}

	wantOK(t, geckohost(t, "token", "revoke", "--db", db, "1"))
	r = geckohost(t, "token", "revoke", "--db", db, "bob")
	wantOK(t, r)
	if !strings.Contains(r.stderr, `"bob"`) || r.stdout != "" {
		t.Errorf("revoke output %+v", r)
	}

	r = geckohost(t, "token", "list", "--db", db, "--json")
	wantOK(t, r)
	var toks []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &toks); err != nil {
		t.Fatalf("json: %v\n%s", err, r.stdout)
	}
	if len(toks) != 2 || toks[0]["name"] != "alice" || toks[0]["status"] != "revoked" || toks[1]["status"] != "revoked" ||
		toks[0]["expires"] == nil || toks[1]["expires"] != nil || toks[0]["revoked"] == nil {
		t.Errorf("json tokens %v", toks)
	}
	if rate, ok := toks[0]["rate"]; !ok || rate != nil {
		t.Errorf("alice's json rate %v (present %v), want null", rate, ok)
	}
	if rate, _ := json.Marshal(toks[1]["rate"]); string(rate) != `{"count":10,"window_ms":1000}` {
		t.Errorf("bob's json rate %s", rate)
	}
	if _, ok := toks[0]["hash"]; ok {
		t.Error("json shows the hash")
	}

	// An empty store lists as [] in JSON.
	empty := filepath.Join(t.TempDir(), "empty")
	openStore(t, empty)
	r = geckohost(t, "token", "list", "--db", empty, "--json")
	wantOK(t, r)
	if strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("empty json list %q", r.stdout)
	}
	// Read-only commands do not create a database where there is none.
	missing := filepath.Join(t.TempDir(), "missing", "geckohost.db")
	for _, args := range [][]string{{"token", "list", "--db", missing}, {"token", "revoke", "--db", missing, "x"}, {"sessions", "--db", missing}} {
		wantFail(t, geckohost(t, args...), "no database at "+missing, "geckohost token add")
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a read-only command created %s (%v)", filepath.Dir(missing), err)
	}
}

func TestErrorsAreOneLine(t *testing.T) {
	leaktest.Check(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	wantOK(t, geckohost(t, "token", "add", "--db", db, "--name", "taken"))
	corrupt := filepath.Join(dir, "corrupt.db")
	if err := os.WriteFile(corrupt, bytes.Repeat([]byte("garbage!"), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"duplicate name", []string{"token", "add", "--db", db, "--name", "taken"}, []string{"taken", "already taken"}},
		{"missing name", []string{"token", "add", "--db", db}, []string{"--name"}},
		{"bad name", []string{"token", "add", "--db", db, "--name", "42"}, []string{"only digits"}},
		{"malformed expires", []string{"token", "add", "--db", db, "--name", "x", "--expires", "tomorrow"}, []string{"--expires", "tomorrow"}},
		{"negative expires", []string{"token", "add", "--db", db, "--name", "x", "--expires", "-1h"}, []string{"--expires"}},
		{"bad source", []string{"token", "add", "--db", db, "--name", "x", "--source", "example.com"}, []string{"example.com"}},
		{"negative max workers", []string{"token", "add", "--db", db, "--name", "x", "--max-workers", "-2"}, []string{"worker limit"}},
		{"zero rate", []string{"token", "add", "--db", db, "--name", "x", "--rate", "0/1m"}, []string{"--rate", "0/1m", "rate count 0"}},
		{"negative rate", []string{"token", "add", "--db", db, "--name", "x", "--rate", "-5/1m"}, []string{"--rate", "rate count -5"}},
		{"rate without slash", []string{"token", "add", "--db", db, "--name", "x", "--rate", "60"}, []string{"--rate", "no slash"}},
		{"rate bad count", []string{"token", "add", "--db", db, "--name", "x", "--rate", "many/1m"}, []string{"--rate", "many"}},
		{"rate bad duration", []string{"token", "add", "--db", db, "--name", "x", "--rate", "60/soon"}, []string{"--rate", "soon"}},
		{"rate no duration", []string{"token", "add", "--db", db, "--name", "x", "--rate", "60/"}, []string{"--rate", "N/DURATION"}},
		{"rate window too short", []string{"token", "add", "--db", db, "--name", "x", "--rate", "5/500ms"}, []string{"--rate", "rate window 500ms"}},
		{"rate window zero", []string{"token", "add", "--db", db, "--name", "x", "--rate", "5/0s"}, []string{"--rate", "rate window 0s"}},
		{"rate window too long", []string{"token", "add", "--db", db, "--name", "x", "--rate", "5/31d"}, []string{"--rate", "rate window 744h0m0s"}},
		{"rate count too big", []string{"token", "add", "--db", db, "--name", "x", "--rate", "1000001/1d"}, []string{"--rate", "rate count 1000001"}},
		{"unknown revoke name", []string{"token", "revoke", "--db", db, "nobody"}, []string{"nobody", "not found"}},
		{"unknown revoke id", []string{"token", "revoke", "--db", db, "77"}, []string{"77", "not found"}},
		{"revoke without arg", []string{"token", "revoke", "--db", db}, []string{"ID or NAME"}},
		{"flag without value", []string{"token", "revoke", "taken", "--db"}, []string{"--db needs a value"}},
		{"corrupt db", []string{"token", "list", "--db", corrupt}, []string{"corrupt.db", "not a valid geckohost database"}},
		{"corrupt db sessions", []string{"sessions", "--db", corrupt}, []string{"not a valid geckohost database"}},
		{"unwritable path", []string{"token", "add", "--db", filepath.Join(file, "db"), "--name", "x"}, []string{"not a directory"}},
		{"unknown flag", []string{"token", "list", "--db", db, "--nope"}, []string{"-nope"}},
		{"unknown global flag", []string{"--nope"}, []string{"-nope"}},
		{"bad limit", []string{"sessions", "--db", db, "--limit", "0"}, []string{"--limit"}},
		{"bad int", []string{"sessions", "--db", db, "--limit", "many"}, []string{"many"}},
		{"extra arg", []string{"sessions", "--db", db, "extra"}, []string{"extra"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantFail(t, geckohost(t, c.args...), c.want...)
		})
	}
	// Nothing was lost: the one token is still there and usable.
	toks, err := openStore(t, db).ListTokens(context.Background())
	if err != nil || len(toks) != 1 || toks[0].Name != "taken" || !toks[0].Revoked.IsZero() {
		t.Errorf("tokens after errors: %+v, %v", toks, err)
	}
}

func TestDBFlagPlacesAndEnv(t *testing.T) {
	leaktest.Check(t)
	dir := t.TempDir()
	envDB, flagDB, xdg := filepath.Join(dir, "env.db"), filepath.Join(dir, "flag.db"), filepath.Join(dir, "xdg")
	t.Setenv("XDG_DATA_HOME", xdg)
	t.Setenv("GECKOHOST_DB", "")
	wantOK(t, geckohost(t, "token", "add", "--name", "default"))
	if _, err := os.Stat(filepath.Join(xdg, "geckohost", "geckohost.db")); err != nil {
		t.Errorf("default path not used: %v", err)
	}

	t.Setenv("GECKOHOST_DB", envDB)
	wantOK(t, geckohost(t, "token", "add", "--name", "fromenv"))
	wantOK(t, geckohost(t, "--db", flagDB, "token", "add", "--name", "global"))
	wantOK(t, geckohost(t, "token", "--db", flagDB, "add", "--name", "middle"))
	wantOK(t, geckohost(t, "token", "add", "--db", flagDB, "--name", "leaf"))
	t.Setenv("GECKOHOST_TOKEN_NAME", "envname")
	t.Setenv("GECKOHOST_TOKEN_RATE", "5/1h")
	wantOK(t, geckohost(t, "token", "add"))

	names := func(path string) string {
		toks, err := openStore(t, path).ListTokens(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, tk := range toks {
			n = append(n, tk.Name)
		}
		return strings.Join(n, ",")
	}
	if got := names(envDB); got != "fromenv,envname" {
		t.Errorf("env db has %q", got)
	}
	if toks, err := openStore(t, envDB).ListTokens(context.Background()); err != nil || len(toks) != 2 ||
		!toks[0].Rate.IsZero() || toks[1].Rate != (domain.Rate{Count: 5, Window: time.Hour}) {
		t.Errorf("GECKOHOST_TOKEN_RATE: %+v, %v", toks, err)
	}
	if got := names(flagDB); got != "global,middle,leaf" {
		t.Errorf("flag db has %q", got)
	}
}

func TestSessionsCommand(t *testing.T) {
	leaktest.Check(t)
	db := filepath.Join(t.TempDir(), "db")
	st := openStore(t, db)
	ctx := context.Background()
	tok, _, err := st.AddToken(ctx, domain.NewToken{Name: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	// w-live's serve run is this process (alive); w-dead's is a process
	// that is gone: sessions ends it (host-restart, at its last heartbeat).
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	deadProc := proc.Self()
	deadProc.PID = gone.Process.Pid
	for _, r := range []store.Run{{ID: "live-run", Process: proc.Self()}, {ID: "dead-run", Process: deadProc, Heartbeat: base.Add(3 * time.Minute)}} {
		if err := st.StartRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range []domain.Session{
		{WorkerID: "w-old", TokenID: tok.ID, TokenName: "alice", Source: "http://127.0.0.1:1/w.js", State: domain.StateEnded,
			Created: base, Answered: base.Add(12 * time.Millisecond), Connected: base.Add(46 * time.Millisecond),
			Ended: base.Add(90 * time.Second), EndReason: "worker-closed"},
		{WorkerID: "w-fail", State: domain.StateEnded, Errno: 102, Reason: "invalid token", Created: base.Add(time.Minute),
			Ended: base.Add(time.Minute), EndReason: "error"},
		{WorkerID: "w-live", TokenID: tok.ID, TokenName: "alice", State: domain.StateConnected,
			Created: base.Add(2 * time.Minute), Answered: base.Add(2*time.Minute + 40*time.Millisecond),
			Connected: base.Add(2*time.Minute + 80*time.Millisecond), RunID: "live-run"},
		{WorkerID: "w-dead", TokenName: "bob", State: domain.StateConnected, RunID: "dead-run",
			Created: base.Add(150 * time.Second), Connected: base.Add(151 * time.Second)},
	} {
		if err := st.SaveSession(ctx, s); err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
	}

	r := geckohost(t, "sessions", "--db", db)
	wantOK(t, r)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 5 || !strings.Contains(lines[1], "w-dead") || !strings.Contains(lines[2], "w-live") || !strings.Contains(lines[3], "w-fail") || !strings.Contains(lines[4], "w-old") {
		t.Fatalf("not newest first:\n%s", r.stdout)
	}
	if !strings.Contains(lines[1], " ended ") || !strings.Contains(lines[1], "host-restart") || !strings.Contains(lines[1], " 30s ") {
		t.Errorf("the dead run's session is not ended at its last heartbeat: %q", lines[1])
	}
	if rec, err := st.GetSession(ctx, "w-dead"); err != nil || rec.EndReason != "host-restart" || !rec.Ended.Equal(base.Add(3*time.Minute)) {
		t.Errorf("w-dead's record %+v, %v", rec, err)
	}
	lines = lines[1:]
	for _, w := range []string{"12ms", "34ms", "1m30s", "worker-closed"} {
		if !strings.Contains(lines[3], w) {
			t.Errorf("row %q lacks %q", lines[3], w)
		}
	}
	if !strings.Contains(lines[2], "102") || !strings.Contains(lines[1], "+") {
		t.Errorf("rows:\n%s", r.stdout)
	}

	r = geckohost(t, "sessions", "--db", db, "--token", "alice", "--limit", "1", "--json")
	wantOK(t, r)
	var ss []domain.SessionJSON
	if err := json.Unmarshal([]byte(r.stdout), &ss); err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 || ss[0].WorkerID != "w-live" || ss[0].AnswerMS == nil || *ss[0].AnswerMS != 40 || ss[0].DurationMS != nil ||
		ss[0].State != "connected" || ss[0].RunID != "live-run" {
		t.Errorf("json %+v", ss)
	}
	r = geckohost(t, "sessions", "--db", db, "--token", "alice", "--json")
	wantOK(t, r)
	if err := json.Unmarshal([]byte(r.stdout), &ss); err != nil || len(ss) != 2 || ss[1].WorkerID != "w-old" || *ss[1].DurationMS != 90000 {
		t.Errorf("json %+v, %v", ss, err)
	}
	wantFail(t, geckohost(t, "sessions", "--db", db, "--token", "nobody"), `no token named "nobody"`, "token list")
	if _, _, err := openStore(t, db).AddToken(context.Background(), domain.NewToken{Name: "idle"}); err != nil {
		t.Fatal(err)
	}
	r = geckohost(t, "sessions", "--db", db, "--token", "idle")
	wantOK(t, r)
	if r.stdout != "" || !strings.Contains(r.stderr, "no sessions") {
		t.Errorf("empty: %+v", r)
	}
	if !strings.Contains(geckohost(t, "sessions", "--db", db, "--json").stdout, `"egress_refused": 0`) {
		t.Error("sessions --json lacks egress_refused")
	}

	// Pruning: w-old ended 58m ago, w-fail 59m ago, w-live never ended
	// (created 58m ago), w-dead ended (host-restart) 57m ago.
	wantFail(t, geckohost(t, "sessions", "prune", "--db", db, "--older-than", "soon"), "--older-than")
	wantFail(t, geckohost(t, "sessions", "prune", "--db", db), "older-than")
	r = geckohost(t, "sessions", "prune", "--db", db, "--older-than", "1d")
	wantOK(t, r)
	if !strings.Contains(r.stderr, "0 session records deleted") {
		t.Errorf("prune 1d: %+v", r)
	}
	r = geckohost(t, "sessions", "prune", "--db", db, "--older-than", "30m")
	wantOK(t, r)
	if !strings.Contains(r.stderr, "4 session records deleted") {
		t.Errorf("prune 30m: %+v", r)
	}
}

func TestHelpAndVersion(t *testing.T) {
	leaktest.Check(t)
	for _, args := range [][]string{
		{"--help"}, {"serve", "--help"}, {"token", "--help"}, {"token", "add", "--help"}, {"token", "list", "--help"},
		{"token", "revoke", "--help"}, {"sessions", "--help"}, {"sessions", "prune", "--help"}, {"version", "--help"},
	} {
		r := geckohost(t, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "USAGE") {
			t.Errorf("%v: exit %d, stdout %q", args, r.code, r.stdout)
		}
	}
	r := geckohost(t, "serve", "--help")
	for _, f := range []string{"--db", "--listen", "--allow-source", "--allow-origin", "--firefox", "--browsers",
		"--max-workers-per-browser", "--warm", "--worker-idle", "--ice-server", "--ice-loopback", "--log-format", "--log-level",
		"--turn-listen", "--turn-public-ip", "GECKOHOST_TURN_LISTEN", "GECKOHOST_TURN_PUBLIC_IP",
		"--public-url", "--worker-egress", "--worker-allow", "--max-fetches-per-token", "--keep-sessions",
		"--worker-memory", "--worker-storage", "--worker-busy-limit", "--worker-max-lifetime", "--token-max-workers",
		"GECKOHOST_LISTEN", "127.0.0.1:8765", "GECKOHOST_WORKER_EGRESS", "GECKOHOST_KEEP_SESSIONS"} {
		if !strings.Contains(r.stdout, f) {
			t.Errorf("serve --help lacks %s", f)
		}
	}
	r = geckohost(t, "version")
	wantOK(t, r)
	if !strings.HasPrefix(r.stdout, "geckohost "+version) {
		t.Errorf("version %q", r.stdout)
	}
}

func TestServeFlagErrors(t *testing.T) {
	leaktest.Check(t)
	db := filepath.Join(t.TempDir(), "db")
	for _, c := range []struct {
		args []string
		env  [2]string
		want string
	}{
		{[]string{"--log-level", "loud"}, [2]string{}, "--log-level"},
		{[]string{"--log-format", "xml"}, [2]string{}, "--log-format"},
		{[]string{"--listen", "nowhere"}, [2]string{}, "--listen"},
		{[]string{"--browsers", "0"}, [2]string{}, "--browsers"},
		{[]string{"--max-workers-per-browser", "0"}, [2]string{}, "--max-workers-per-browser"},
		{[]string{"--warm", "-1"}, [2]string{}, "--warm"},
		{[]string{"--worker-idle", "soon"}, [2]string{}, "soon"},
		{[]string{"--ice-server", "http://x"}, [2]string{}, "--ice-server"},
		{[]string{"--allow-source", "ftp://x"}, [2]string{}, "--allow-source"},
		{[]string{"--allow-origin", "*.x"}, [2]string{}, "--allow-origin"},
		{[]string{"--turn-listen", "nowhere"}, [2]string{}, "--turn-listen"},
		{[]string{"--turn-listen", "example.com:3478"}, [2]string{}, "--turn-listen"},
		{[]string{"--turn-listen", ":3478", "--ice-loopback"}, [2]string{}, "exclude each other"},
		{[]string{"--turn-public-ip", "198.51.100.1"}, [2]string{}, "needs --turn-listen"},
		{[]string{"--turn-listen", ":3478", "--turn-public-ip", "not-an-ip"}, [2]string{}, "--turn-public-ip"},
		{nil, [2]string{"GECKOHOST_TURN_LISTEN", "nowhere"}, "--turn-listen"},
		{nil, [2]string{"GECKOHOST_LOG_LEVEL", "loud"}, "--log-level"},
		{nil, [2]string{"GECKOHOST_WARM", "-3"}, "--warm"},
		{nil, [2]string{"GECKOHOST_LISTEN", "nowhere"}, "--listen"},
		{[]string{"--public-url", "ftp://x"}, [2]string{}, "--public-url"},
		{[]string{"--public-url", "https://x/path"}, [2]string{}, "--public-url"},
		{[]string{"--worker-egress", "some"}, [2]string{}, "--worker-egress"},
		{[]string{"--worker-allow", "*"}, [2]string{}, "--worker-allow"},
		{[]string{"--worker-allow", "10.0.0.0/8"}, [2]string{}, "--worker-allow"},
		{[]string{"--max-fetches-per-token", "-1"}, [2]string{}, "--max-fetches-per-token"},
		{[]string{"--keep-sessions", "forever"}, [2]string{}, "--keep-sessions"},
		{[]string{"--worker-memory", "lots"}, [2]string{}, "--worker-memory"},
		{[]string{"--worker-busy-limit", "-1s"}, [2]string{}, "--worker-busy-limit"},
		{nil, [2]string{"GECKOHOST_WORKER_MEMORY", "12TB"}, "--worker-memory"},
		{nil, [2]string{"GECKOHOST_WORKER_EGRESS", "open"}, "--worker-egress"},
		{nil, [2]string{"GECKOHOST_KEEP_SESSIONS", "-1h"}, "--keep-sessions"},
	} {
		t.Run(strings.Join(append(c.args, c.env[:]...), " "), func(t *testing.T) {
			if c.env[0] != "" {
				t.Setenv(c.env[0], c.env[1])
			}
			wantFail(t, geckohost(t, append([]string{"serve", "--db", db}, c.args...)...), c.want)
		})
	}
	// A port in use: a clear error, not a hang.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	wantFail(t, geckohost(t, "serve", "--db", db, "--listen", ln.Addr().String()), "listen on", "address already in use")
}

// TestServeHealthz runs `geckohost serve` in-process, finds its address in
// the log, checks /healthz and stops it by cancelling its context.
func TestServeHealthz(t *testing.T) {
	leaktest.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var stdout, stderr syncbuf.Buffer
	done := make(chan int, 1)
	db := filepath.Join(t.TempDir(), "db")
	go func() {
		done <- run(runCtx, []string{"geckohost", "serve", "--db", db, "--listen", "127.0.0.1:0", "--log-format", "json"}, &stdout, &stderr)
	}()

	var url string
	for url == "" {
		for _, line := range strings.Split(stderr.String(), "\n") {
			var rec struct{ Msg, URL string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "geckohost serving" {
				url = rec.URL
			}
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited %d early: %s", code, stderr.String())
		case <-ctx.Done():
			t.Fatalf("serve did not log its address: %s", stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
		t.Errorf("/healthz: %d %q", resp.StatusCode, body)
	}

	stop()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exited %d: %s", code, stderr.String())
		}
	case <-ctx.Done():
		t.Fatal("serve did not stop")
	}
	if !strings.Contains(stderr.String(), "geckohost stopped") || stdout.String() != "" {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
}

// TestRunServeDirect drives runServe with a serveConfig, as the coordinator
// will when it wires in host, gecko and web.
func TestRunServeDirect(t *testing.T) {
	leaktest.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addrc := make(chan net.Addr, 1)
	cfg := serveConfig{DBPath: filepath.Join(t.TempDir(), "db"), Listen: "127.0.0.1:0", Browsers: 1, MaxWorkersPerBrowser: 150,
		Warm: 4, WorkerIdle: time.Minute, LogFormat: "text", LogLevel: "debug", onListen: func(a net.Addr) { addrc <- a }}
	runCtx, stop := context.WithCancel(ctx)
	errc := make(chan error, 1)
	var logs syncbuf.Buffer
	go func() { errc <- runServe(runCtx, cfg, &logs) }()
	var addr net.Addr
	select {
	case addr = <-addrc:
	case err := <-errc:
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr.String() + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/nope: %d", resp.StatusCode)
	}
	stop()
	if err := <-errc; err != nil {
		t.Errorf("runServe: %v", err)
	}
}

func TestParseExpires(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 0, "0": 0, "never": 0, "720h": 720 * time.Hour, "90m": 90 * time.Minute, "30d": 30 * 24 * time.Hour} {
		if got, err := parseExpires(in); err != nil || got != want {
			t.Errorf("parseExpires(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"x", "-1h", "1.5d", "d", "10", "0s", "-3d", "99999999d", "9999999999h"} {
		if _, err := parseExpires(in); err == nil {
			t.Errorf("parseExpires(%q) succeeded", in)
		}
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]domain.Rate{
		"":           {},
		" ":          {},
		"60/1m":      {Count: 60, Window: time.Minute},
		"10/1s":      {Count: 10, Window: time.Second},
		"1000/24h":   {Count: 1000, Window: 24 * time.Hour},
		"1000/1d":    {Count: 1000, Window: 24 * time.Hour},
		"1/30d":      {Count: 1, Window: 30 * 24 * time.Hour},
		"1000000/1s": {Count: 1000000, Window: time.Second},
		" 5 / 90m ":  {Count: 5, Window: 90 * time.Minute},
	} {
		if got, err := parseRate(in); err != nil || got != want {
			t.Errorf("parseRate(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"0", "0/1m", "-1/1m", "60", "60/", "/1m", "x/1m", "60/x", "60/1.5d", "60/999ms",
		"60/0s", "60/-1m", "60/31d", "60/721h", "1000001/1h", "1e6/1h", "60/1m/2", "60/1s1ns"} {
		if r, err := parseRate(in); err == nil {
			t.Errorf("parseRate(%q) = %+v, want an error", in, r)
		}
	}
}

// TestNetworkWarnings: serve says at start which clients --ice-loopback
// cannot serve.
func TestNetworkWarnings(t *testing.T) {
	if w := (serveConfig{Listen: "127.0.0.1:8765"}).networkWarnings(); len(w) != 0 {
		t.Errorf("default: %q", w)
	}
	w := (serveConfig{Listen: "127.0.0.1:8765", ICELoopback: true}).networkWarnings()
	if len(w) != 1 || !strings.Contains(w[0], "stock Firefox") || !strings.Contains(w[0], "305") {
		t.Errorf("--ice-loopback: %q", w)
	}
	w = (serveConfig{Listen: "0.0.0.0:8765", ICELoopback: true}).networkWarnings()
	if len(w) != 2 || !strings.Contains(w[1], "other machines") {
		t.Errorf("--ice-loopback on 0.0.0.0: %q", w)
	}
}

// TestICEServersWiring: /ice-servers and the workers get the --ice-server
// URLs and the relay with the token's credentials.
func TestICEServersWiring(t *testing.T) {
	if iceServers(nil, nil) != nil {
		t.Fatal("no servers: want nil")
	}
	got := iceServers([]string{"stun:stun.example.com"}, nil)(domain.Token{ID: 3}, false)
	if len(got) != 1 || got[0].URLs[0] != "stun:stun.example.com" || got[0].Username != "" {
		t.Fatalf("static: %+v", got)
	}
}
