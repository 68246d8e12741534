//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/internal/bench"
	"github.com/geckohost/geckohost/internal/syncbuf"
	"github.com/geckohost/geckohost/internal/testenv"
	"github.com/geckohost/geckohost/store"
)

// The fault suite: real `geckohost serve` processes (this test binary run
// as geckohost: runChild's "cli") with real Firefox, in the test's network namespace, meeting
// the faults users meet. Each test checks that afterwards no session record
// is left running, no process and no profile is left, and that every client
// got an answer: its echo, or an errno.

// markEnv, in a serve process's environment, marks it and every process it
// starts (Firefox and all its children inherit it): the processes left of
// a serve are found by it, whatever became of their parents.
const markEnv = "GECKOHOST_TEST_MARK"

// faultProc is a `geckohost serve` child process.
type faultProc struct {
	t      *testing.T
	engine serveEngine
	cmd    *exec.Cmd
	pid    int // the serve process
	addr   string
	db     string // its database (a path in its mount namespace)
	tmp    string // its TMPDIR (profiles)
	// ns, in tmpfs mode, is the pid of the shell holding serve's mount
	// namespace; files there are reached through /proc/NS/root, except the
	// database: SQLite resolves that link to "/" and would open the file
	// of the test's namespace, so records are read inside the namespace.
	ns   int
	mark string
	logs *syncbuf.Buffer
	// holder: in tmpfs mode, cmd is a shell holding the mount namespace;
	// closing its stdin lets it exit once serve has.
	holder   io.WriteCloser
	out      *bufio.Reader // the holder's stdout
	exited   chan struct{} // closed once serve has exited
	status   int           // serve's exit status, once exited
	exitedAt time.Time     // when exited was seen
}

// procOpts say how to start a serve process.
type procOpts struct {
	engine  serveEngine // the engine's row (its --engine flag, log lines, profiles)
	db, tmp string      // database path and TMPDIR (both required)
	args    []string    // more serve flags
	// tmpfs, when set (a size such as "8m"), runs serve in a mount
	// namespace of its own where the database's directory is a tmpfs of
	// that size, holding a copy of db; the mount goes with the namespace.
	tmpfs string
}

// startServeProc starts serve (loopback ICE, JSON logs) and waits until it
// is ready. At the end of the test it is killed if still running.
func startServeProc(t *testing.T, ctx context.Context, o procOpts) *faultProc {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	sp := &faultProc{t: t, engine: o.engine, db: o.db, tmp: o.tmp, mark: hex.EncodeToString(b[:]), logs: &syncbuf.Buffer{}, exited: make(chan struct{})}
	args, _ := json.Marshal(append(append([]string{"serve", "--db", o.db, "--listen", "127.0.0.1:0", "--ice-loopback", "--warm", "2",
		"--log-format", "json"}, o.engine.flags()...), o.args...))
	dir := filepath.Dir(o.db)
	if o.tmpfs == "" {
		sp.cmd = exec.Command(self)
	} else {
		const script = `set -e
src=$1; dir=$2; size=$3; shift 3
mount -t tmpfs -o size="$size" geckohost-test "$dir"
cp "$src" "$dir/"
set +e
setpriv --pdeathsig KILL -- "$@" &
echo "serve $!"
wait $!
echo "exit $?"
read _ || true`
		src := filepath.Join(t.TempDir(), filepath.Base(o.db))
		if err := os.Rename(o.db, src); err != nil {
			t.Fatal(err)
		}
		sp.cmd = exec.Command("unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "sh",
			src, dir, o.tmpfs, self)
	}
	sp.cmd.Env = append(os.Environ(), childEnv+"=cli", childArgs+"="+string(args), markEnv+"="+sp.mark, "TMPDIR="+o.tmp)
	sp.cmd.Stderr = sp.logs
	sp.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stdout io.ReadCloser
	if o.tmpfs != "" {
		if sp.holder, err = sp.cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		if stdout, err = sp.cmd.StdoutPipe(); err != nil {
			t.Fatal(err)
		}
		sp.out = bufio.NewReader(stdout)
	}
	if err := sp.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sp.cleanup)
	sp.pid = sp.cmd.Process.Pid
	if o.tmpfs == "" {
		go func() {
			err := sp.cmd.Wait()
			sp.status, sp.exitedAt = exitStatus(err), time.Now()
			close(sp.exited)
		}()
	} else {
		line, err := sp.out.ReadString('\n')
		if _, serr := fmt.Sscanf(line, "serve %d", &sp.pid); err != nil || serr != nil {
			_ = sp.cmd.Wait()
			t.Fatalf("tmpfs shell: %q, %v\n%s", line, err, sp.logs.String())
		}
		sp.ns = sp.cmd.Process.Pid
		go func() {
			line, _ := sp.out.ReadString('\n')
			sp.status = -1
			_, _ = fmt.Sscanf(line, "exit %d", &sp.status)
			sp.exitedAt = time.Now()
			close(sp.exited)
		}()
	}
	sp.addr = waitReady(t, ctx, sp.logs, sp.exited, func() string { return fmt.Sprint("exit status ", sp.status) })
	return sp
}

func exitStatus(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// cleanup kills what is left of the serve and its holder.
func (sp *faultProc) cleanup() {
	select {
	case <-sp.exited:
	default:
		_ = syscall.Kill(sp.pid, syscall.SIGKILL)
		<-sp.exited
	}
	if sp.holder != nil {
		_ = sp.holder.Close()
		_ = sp.cmd.Wait()
	}
}

// release lets the tmpfs holder exit (its mount goes); serve must have
// exited.
func (sp *faultProc) release() {
	if sp.holder != nil {
		_ = sp.holder.Close()
		if err := sp.cmd.Wait(); err != nil {
			sp.t.Errorf("tmpfs shell: %v", err)
		}
		sp.holder = nil
	}
}

// signal sends sig to serve and waits for it to exit (cleanly, unless sig
// is SIGKILL).
func (sp *faultProc) signal(ctx context.Context, sig syscall.Signal) {
	sp.t.Helper()
	if err := syscall.Kill(sp.pid, sig); err != nil {
		sp.t.Fatal(err)
	}
	select {
	case <-sp.exited:
	case <-ctx.Done():
		sp.t.Fatalf("serve did not exit after %v:\n%s", sig, sp.logs.String())
	}
	if sig != syscall.SIGKILL && sp.status != 0 {
		sp.t.Errorf("serve exited %d after %v:\n%s", sp.status, sig, sp.logs.String())
	}
}

// lines returns the log lines with this msg.
func (sp *faultProc) lines(msg string) []map[string]any {
	var out []map[string]any
	for _, l := range logLines(sp.logs.String()) {
		if l["msg"] == msg {
			out = append(out, l)
		}
	}
	return out
}

// browserPID returns the pid of the browser started last.
func (sp *faultProc) browserPID() int {
	sp.t.Helper()
	ls := sp.lines(sp.engine.started)
	if len(ls) == 0 {
		sp.t.Fatalf("no %s:\n%s", sp.engine.started, sp.logs.String())
	}
	pid, _ := ls[len(ls)-1]["pid"].(float64)
	return int(pid)
}

// waitLog waits until n lines with msg were logged.
func (sp *faultProc) waitLog(ctx context.Context, msg string, n int) {
	sp.t.Helper()
	poll(sp.t, ctx, "log "+msg, func() error {
		if got := len(sp.lines(msg)); got < n {
			return fmt.Errorf("%d %q lines, want %d:\n%s", got, msg, n, sp.logs.String())
		}
		return nil
	})
}

// waitReadyz waits until /readyz answers 200 (a browser is up).
func (sp *faultProc) waitReadyz(ctx context.Context) {
	sp.t.Helper()
	poll(sp.t, ctx, "readyz", func() error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+sp.addr+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%d %s", resp.StatusCode, b)
		}
		return nil
	})
	http.DefaultClient.CloseIdleConnections()
}

// poll calls f until it returns nil, failing t with its last error when ctx
// ends.
func poll(t *testing.T, ctx context.Context, what string, f func() error) {
	t.Helper()
	for {
		err := f()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, err)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// markedProcs lists the running (not zombie) processes marked with mark:
// a serve and everything it started.
func markedProcs(mark string) []string {
	want := []byte(markEnv + "=" + mark)
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !bytes.Contains(env, want) {
			continue
		}
		st, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(st, ')')
		if i < 0 || i+2 >= len(st) || st[i+2] == 'Z' || st[i+2] == 'X' {
			continue
		}
		out = append(out, string(st[:i+1]))
	}
	return out
}

// records returns every session record of serve's database. In tmpfs
// mode they are read inside serve's mount namespace with `geckohost
// sessions --json`, which also ends the sessions of dead runs: no record
// may then say host-restart (no serve of this test died).
func (sp *faultProc) records(ctx context.Context) []domain.Session {
	sp.t.Helper()
	if sp.ns == 0 {
		return readSessions(sp.t, ctx, sp.db)
	}
	self, err := os.Executable()
	if err != nil {
		sp.t.Fatal(err)
	}
	args, _ := json.Marshal([]string{"sessions", "--db", sp.db, "--json", "--limit", "100000"})
	cmd := exec.CommandContext(ctx, "nsenter", "-t", strconv.Itoa(sp.ns), "-m", "--", self)
	cmd.Env = append(os.Environ(), childEnv+"=cli", childArgs+"="+string(args))
	out, err := cmd.Output()
	if err != nil {
		sp.t.Fatalf("read records in serve's namespace: %v", err)
	}
	var rows []domain.SessionJSON
	if err := json.Unmarshal(out, &rows); err != nil {
		sp.t.Fatalf("records: %v: %s", err, out)
	}
	var ss []domain.Session
	for _, r := range rows {
		s := domain.Session{WorkerID: r.WorkerID, State: r.State, EndReason: r.EndReason, RunID: r.RunID}
		if r.Ended != nil {
			s.Ended, _ = time.Parse(time.RFC3339Nano, *r.Ended)
		}
		if s.EndReason == string(engine.EndHostRestart) {
			sp.t.Errorf("record %+v ended host-restart", r)
		}
		ss = append(ss, s)
	}
	return ss
}

// hostPath returns where the test reaches path of serve's mount namespace.
func (sp *faultProc) hostPath(path string) string {
	if sp.ns == 0 {
		return path
	}
	return filepath.Join(fmt.Sprintf("/proc/%d/root", sp.ns), path)
}

// readSessions returns every session record of the database at path.
func readSessions(t *testing.T, ctx context.Context, path string) []domain.Session {
	t.Helper()
	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer func() { _ = db.Close() }()
	ss, err := db.ListSessions(ctx, domain.SessionFilter{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

// readRun returns the run record with this id.
func readRun(t *testing.T, ctx context.Context, path, id string) store.Run {
	t.Helper()
	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer func() { _ = db.Close() }()
	r, err := db.GetRun(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// runID returns serve's run id (from its "geckohost serving" line).
func (sp *faultProc) runID() string {
	sp.t.Helper()
	ls := sp.lines("geckohost serving")
	if len(ls) != 1 {
		sp.t.Fatalf("serving lines %v", ls)
	}
	id, _ := ls[0]["run"].(string)
	return id
}

// assertClean checks what a stopped serve leaves: no process, no profile in
// its TMPDIR, no session record running. Call it as soon as serve exited:
// serve returns only once its browsers are gone.
func (sp *faultProc) assertClean(ctx context.Context) {
	sp.t.Helper()
	var left []string
	for _, p := range markedProcs(sp.mark) {
		if sp.ns == 0 || !strings.HasPrefix(p, strconv.Itoa(sp.ns)+" ") { // the namespace's holder
			left = append(left, p)
		}
	}
	if len(left) > 0 {
		sp.t.Errorf("processes left after serve exited: %v", left)
	}
	if left := sp.engine.profilesIn(sp.tmp); len(left) > 0 {
		sp.t.Errorf("profiles left: %v", left)
	}
	for _, s := range sp.records(ctx) {
		if s.State != domain.StateEnded || s.Ended.IsZero() {
			sp.t.Errorf("session left running: %+v", s)
		}
	}
}

// sources is the worker source server of the fault tests: /echo.js,
// /hold.js (an echo worker whose fetch is held until released, so that a
// session stays negotiating before it has a worker) and /slow.js (an echo
// worker whose first run fetches /started.js, then keeps busy for 4 s: a
// session negotiating in Firefox).
type sources struct {
	*httptest.Server
	mu      sync.Mutex
	held    int
	started int
	release chan struct{}
}

func newSources(t *testing.T) *sources {
	s := &sources{release: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := "self.onmessage = (e) => self.postMessage(e.data);"
		switch r.URL.Path {
		case "/echo.js":
		case "/slow.js":
			body = "importScripts('started.js');\nconst t0 = Date.now(); while (Date.now() - t0 < 4000) {}\n" + body
		case "/started.js":
			s.mu.Lock()
			s.started++
			s.mu.Unlock()
			body = ""
		case "/hold.js":
			s.mu.Lock()
			s.held++
			release := s.release
			s.mu.Unlock()
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/javascript")
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(func() {
		s.releaseAll()
		s.Close()
	})
	return s
}

// running returns how many /slow.js workers started their first run.
func (s *sources) running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started
}

// holding returns how many /hold.js fetches arrived.
func (s *sources) holding() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

// releaseAll lets the held fetches (and later ones) through.
func (s *sources) releaseAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.release:
	default:
		close(s.release)
	}
}

// faultServe prepares a database with a token and a TMPDIR for a serve.
func faultServe(t *testing.T) (db, secret, tmp string) {
	t.Helper()
	dir := t.TempDir()
	db = filepath.Join(dir, "db", "geckohost.db")
	if err := os.Mkdir(filepath.Dir(db), 0o700); err != nil {
		t.Fatal(err)
	}
	secret = addDBToken(t, db, "faults")
	tmp = filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	return db, secret, tmp
}

// echoSession opens a session to source and runs one echo round trip on
// it (as bench does); the session is left open in the result's held on
// success.
func echoSession(ctx context.Context, addr, secret, source string) bench.Session {
	return bench.One(ctx, bench.Config{URL: "ws://" + addr + "/", Token: secret, Source: source, Messages: 1, Loopback: true, Hold: true}, 0)
}

// errnoOf returns the errno of the worker-error in err's chain, or 0.
func errnoOf(err error) engine.Errno {
	var we *engine.Error
	if errors.As(err, &we) {
		return we.Errno
	}
	return 0
}

// faultTest is serveTest for the fault tests (a longer bound).
func faultTest(t *testing.T) context.Context { return engineTest(t, 3*time.Minute) }

// killPID sends SIGKILL to pid.
func killPID(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", pid, err)
	}
}

// groupLeft lists the running processes of process group pgid.
func groupLeft(pgid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(st, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(st[i+1:])
		if len(f) > 2 && f[0][0] != 'Z' && f[0][0] != 'X' && string(f[2]) == strconv.Itoa(pgid) {
			out = append(out, pid)
		}
	}
	return out
}

// sessionByID indexes records by worker id.
func sessionByID(ss []domain.Session) map[string]domain.Session {
	m := map[string]domain.Session{}
	for _, s := range ss {
		m[s.WorkerID] = s
	}
	return m
}

// closeHeld closes the session a successful echoSession left open.
func closeHeld(t *testing.T, r bench.Session) {
	t.Helper()
	if r.Held != nil {
		if err := r.Held.Close(); err != nil {
			t.Errorf("close session: %v", err)
		}
	}
}

// TestFaultFirefoxKilled: kill -9 of Firefox while two workers run their
// first run (their clients get 303) and while three are connected (their records end
// browser-died); serve restarts Firefox and serves again, and leaves
// nothing behind at SIGTERM.
func TestFaultFirefoxKilled(t *testing.T) {
	forServeEngines(t, true, func(t *testing.T, e serveEngine) {
		ctx := faultTest(t)
		db, secret, tmp := faultServe(t)
		src := newSources(t)
		sp := startServeProc(t, ctx, procOpts{engine: e, db: db, tmp: tmp, args: []string{"--allow-source", src.URL}})
		first := sp.browserPID()

		// Mid-negotiation: both workers run their first (long) run.
		res := make(chan bench.Session, 2)
		for range 2 {
			go func() { res <- echoSession(ctx, sp.addr, secret, src.URL+"/slow.js") }()
		}
		poll(t, ctx, "workers running", func() error {
			if n := src.running(); n < 2 {
				return fmt.Errorf("%d of 2 running", n)
			}
			return nil
		})
		killPID(t, first)
		for range 2 {
			r := <-res
			closeHeld(t, r)
			if errnoOf(r.Err) != engine.GeckoCrashed {
				t.Errorf("negotiating client got %v, want 303", r.Err)
			}
		}

		// While connected.
		sp.waitLog(ctx, sp.engine.started, 2)
		sp.waitReadyz(ctx)
		second := sp.browserPID()
		var live []bench.Session
		for range 3 {
			r := echoSession(ctx, sp.addr, secret, src.URL+"/echo.js")
			if r.Err != nil {
				t.Fatalf("session before the second kill: %v", r.Err)
			}
			live = append(live, r)
		}
		killPID(t, second)
		poll(t, ctx, "records of the connected sessions", func() error {
			recs := sessionByID(sp.records(ctx))
			for _, r := range live {
				if s := recs[r.Held.WorkerID]; s.State != domain.StateEnded || s.EndReason != string(engine.EndBrowserDied) {
					return fmt.Errorf("record %+v", s)
				}
			}
			return nil
		})
		for _, r := range live {
			closeHeld(t, r)
		}

		// Restarted: serves again; the killed browsers' processes are gone.
		sp.waitLog(ctx, sp.engine.started, 3)
		sp.waitReadyz(ctx)
		r := echoSession(ctx, sp.addr, secret, src.URL+"/echo.js")
		if r.Err != nil {
			t.Fatalf("session after the restart: %v", r.Err)
		}
		closeHeld(t, r)
		for _, pid := range []int{first, second} {
			poll(t, ctx, "killed firefox's processes gone", func() error {
				if left := groupLeft(pid); len(left) > 0 {
					return fmt.Errorf("group %d: %v", pid, left)
				}
				return nil
			})
		}
		poll(t, ctx, "last session ended", func() error {
			if s := sessionByID(sp.records(ctx))[r.Held.WorkerID]; s.State != domain.StateEnded {
				return fmt.Errorf("record %+v", s)
			}
			return nil
		})
		sp.signal(ctx, syscall.SIGTERM)
		sp.assertClean(ctx)
		crashed := 0
		for _, s := range sp.records(ctx) {
			if s.Errno == int(engine.GeckoCrashed) {
				crashed++
			}
		}
		if crashed != 2 {
			t.Errorf("%d records with errno 303, want 2", crashed)
		}
	})
}

// TestFaultServeKilled: kill -9 of serve with three connected sessions and
// one negotiating; its browsers die with it. A restart on the same database
// removes the dead serve's profiles and ends its sessions (host-restart,
// at its last heartbeat) before it serves; then it serves, and stops clean.
func TestFaultServeKilled(t *testing.T) {
	forServeEngines(t, true, func(t *testing.T, e serveEngine) {
		ctx := faultTest(t)
		db, secret, tmp := faultServe(t)
		src := newSources(t)
		args := []string{"--allow-source", src.URL}
		sp := startServeProc(t, ctx, procOpts{engine: e, db: db, tmp: tmp, args: args})
		run1 := sp.runID()
		var live []bench.Session
		for range 3 {
			r := echoSession(ctx, sp.addr, secret, src.URL+"/echo.js")
			if r.Err != nil {
				t.Fatalf("session: %v", r.Err)
			}
			live = append(live, r)
		}
		negotiating := make(chan bench.Session, 1)
		go func() { negotiating <- echoSession(ctx, sp.addr, secret, src.URL+"/hold.js") }()
		poll(t, ctx, "records of the live sessions", func() error {
			n := 0
			for _, s := range readSessions(t, ctx, db) {
				if s.State == domain.StateConnected || (s.State == domain.StateNegotiating && src.holding() == 1) {
					n++
				}
			}
			if n != 4 {
				return fmt.Errorf("%d of 4 live records", n)
			}
			return nil
		})

		killPID(t, sp.pid)
		<-sp.exited
		src.releaseAll()
		if r := <-negotiating; r.Err == nil {
			closeHeld(t, r)
			t.Error("the negotiating client connected to a killed serve")
		} else {
			t.Logf("negotiating client: %v", r.Err)
		}
		for _, r := range live {
			closeHeld(t, r)
		}
		poll(t, ctx, "the killed serve's processes gone", func() error {
			if left := markedProcs(sp.mark); len(left) > 0 {
				return fmt.Errorf("left: %v", left)
			}
			return nil
		})
		left := sp.engine.profilesIn(tmp)
		if len(left) == 0 {
			t.Fatal("the killed serve left no profile: nothing to test")
		}
		running := 0
		for _, s := range readSessions(t, ctx, db) {
			if s.Ended.IsZero() {
				running++
			}
		}
		if running != 4 {
			t.Fatalf("%d records left running by the kill, want 4", running)
		}

		sp2 := startServeProc(t, ctx, procOpts{engine: e, db: db, tmp: tmp, args: args})
		hb := readRun(t, ctx, db, run1)
		if hb.Stop != store.RunDied || !hb.Ended.Equal(hb.Heartbeat) {
			t.Errorf("dead run %+v", hb)
		}
		for _, s := range readSessions(t, ctx, db) {
			if s.RunID != run1 {
				continue
			}
			want := hb.Heartbeat
			for _, e := range []time.Time{s.Created, s.Answered, s.Connected} {
				if e.After(want) {
					want = e
				}
			}
			if s.State != domain.StateEnded || s.EndReason != string(engine.EndHostRestart) || !s.Ended.Equal(want) {
				t.Errorf("record of the killed run: %+v, want ended host-restart at %v", s, want)
			}
		}
		// Before serving: the ending and the removals come before "serving".
		var order []string
		for _, l := range logLines(sp2.logs.String()) {
			order = append(order, fmt.Sprint(l["msg"]))
		}
		text := strings.Join(order, "|")
		reaped, serving := strings.Index(text, "ended the sessions of a serve run that died"), strings.Index(text, "geckohost serving")
		if reaped < 0 || serving < 0 || reaped > serving {
			t.Errorf("log order: %v", order)
		}
		if ls := sp2.lines("ended the sessions of a serve run that died"); len(ls) != 1 || ls[0]["sessions"] != 4.0 || ls[0]["run"] != run1 {
			t.Errorf("reap lines %v", ls)
		} else {
			t.Logf("restart: %v; removed %d stale profiles", ls[0], len(sp2.lines(sp2.engine.stale)))
		}
		removed := map[string]bool{}
		for _, l := range sp2.lines(sp2.engine.stale) {
			removed[fmt.Sprint(l["dir"])] = true
		}
		for _, d := range left {
			if !removed[d] {
				t.Errorf("stale profile %s not removed (removed %v)", d, removed)
			}
			if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("stale profile %s still there: %v", d, err)
			}
		}
		if out := geckohost(t, "sessions", "--db", db); strings.Contains(out.stdout, "+ ") {
			t.Errorf("sessions shows running sessions:\n%s", out.stdout)
		}

		r := echoSession(ctx, sp2.addr, secret, src.URL+"/echo.js")
		if r.Err != nil {
			t.Fatalf("session after the restart: %v", r.Err)
		}
		closeHeld(t, r)
		sp2.signal(ctx, syscall.SIGTERM)
		sp2.assertClean(ctx)
		if run := readRun(t, ctx, db, sp2.runID()); run.Stop != store.RunStopped {
			t.Errorf("second run %+v", run)
		}
	})
}

// TestFaultSigtermUnderLoad: SIGTERM while eight clients at a time open
// sessions, echo once and close (bench style). serve exits cleanly with
// nothing left, and every client got its echo, an errno (304) or a
// refusal of its WebSocket (it came after the shutdown began): a client
// connected as the shutdown began gets its echo, because a connected
// worker ends in order (what is in flight is answered before the channel
// closes), and its session is recorded as ended by the shutdown. None
// waits for a timeout.
func TestFaultSigtermUnderLoad(t *testing.T) {
	forServeEngines(t, true, func(t *testing.T, e serveEngine) {
		ctx := faultTest(t)
		db, secret, tmp := faultServe(t)
		sp := startServeProc(t, ctx, procOpts{engine: e, db: db, tmp: tmp})
		const n, c, termAfter = 200, 8, 100
		cfg := bench.Config{URL: "ws://" + sp.addr + "/", Token: secret, Source: "http://" + sp.addr + "/workers/echo.js", Messages: 1, Loopback: true}
		results := make([]bench.Session, n)
		took := make([]time.Duration, n)
		jobs := make(chan int)
		var wg sync.WaitGroup
		var mu sync.Mutex
		finished := 0
		termed := make(chan time.Time, 1)
		for range c {
			wg.Go(func() {
				for i := range jobs {
					t0 := time.Now()
					results[i] = bench.One(ctx, cfg, i)
					took[i] = time.Since(t0)
					mu.Lock()
					finished++
					if finished == termAfter {
						termed <- time.Now()
						if err := syscall.Kill(sp.pid, syscall.SIGTERM); err != nil {
							t.Error(err)
						}
					}
					mu.Unlock()
				}
			})
		}
		for i := range n {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
		at := <-termed
		select {
		case <-sp.exited:
		case <-ctx.Done():
			t.Fatal("serve did not exit after SIGTERM")
		}
		t.Logf("serve exited %d, %v after SIGTERM", sp.status, sp.exitedAt.Sub(at).Round(time.Millisecond))
		if sp.status != 0 {
			t.Errorf("serve exited %d:\n%s", sp.status, sp.logs.String())
		}
		sp.assertClean(ctx)

		count := map[string]int{}
		for i, r := range results {
			switch e := errnoOf(r.Err); {
			case r.Err == nil:
				count["echo"]++
			case e != 0:
				count[fmt.Sprint("errno ", int(e))]++
				if e != engine.ShuttingDown {
					t.Errorf("client %d: %v", i, r.Err)
				}
			case strings.HasPrefix(r.Err.Error(), "dial signaling:"):
				count["refused"]++
			case r.Timings.Open > 0 && strings.Contains(r.Err.Error(), "data channel closed by the worker"):
				count["closed by the shutdown"]++
				t.Errorf("client %d: connected, then %v: the shutdown did not end its worker in order", i, r.Err)
			default:
				count["other"]++
				t.Errorf("client %d (after %v): %v", i, took[i], r.Err)
			}
			if took[i] > 30*time.Second {
				t.Errorf("client %d waited %v", i, took[i])
			}
		}
		t.Logf("SIGTERM after %d sessions; clients: %v", termAfter, count)
		if count["echo"] < termAfter {
			t.Errorf("%d echoes, want at least the %d before SIGTERM", count["echo"], termAfter)
		}
		shut := 0
		for _, s := range readSessions(t, ctx, db) {
			if s.Errno == int(engine.ShuttingDown) && s.EndReason != string(engine.EndShutdown) {
				t.Errorf("a 304 session ended %q", s.EndReason)
			}
			if !s.Connected.IsZero() && s.EndReason == string(engine.EndShutdown) {
				shut++
			}
		}
		if shut < count["closed by the shutdown"] {
			t.Errorf("%d clients saw their channel closed, %d sessions ended by the shutdown after connecting", count["closed by the shutdown"], shut)
		}
	})
}

// fill writes into dir until its file system is full and returns the
// filler's path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	buf := make([]byte, 64<<10)
	for size := len(buf); size > 0; {
		if _, err := f.Write(buf[:size]); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", dir, err)
			}
			size /= 2 // fill the last pages too
		}
	}
	return path
}

// recordNotWritten is the log message of the first record not written.
const recordNotWritten = "session record not written; sessions go on, and the records are written once the database accepts writes again"

// TestFaultDiskFull: the database sits on a small tmpfs that fills up
// while serve runs. Live and new sessions go on; the records that cannot be
// written are logged and written once space returns, so that no record is
// left running.
func TestFaultDiskFull(t *testing.T) {
	forServeEngines(t, true, func(t *testing.T, e serveEngine) {
		ctx := faultTest(t)
		db, secret, tmp := faultServe(t)
		if _, err := exec.LookPath("nsenter"); err != nil {
			testenv.Skip(t, "nsenter", "apt-get install util-linux")
		}
		sp := startServeProc(t, ctx, procOpts{engine: e, db: db, tmp: tmp, tmpfs: "4m"})
		demo := "http://" + sp.addr + "/workers/echo.js"
		dir := sp.hostPath(filepath.Dir(db)) // the tmpfs, seen from here

		a := echoSession(ctx, sp.addr, secret, demo)
		if a.Err != nil {
			t.Fatal(a.Err)
		}
		filler := fill(t, dir)
		// A new session works, and so does the live one.
		b := echoSession(ctx, sp.addr, secret, demo)
		if b.Err != nil {
			t.Fatalf("new session on a full disk: %v", b.Err)
		}
		if _, err := bench.Echo(ctx, a.Held, 0, 1); err != nil {
			t.Fatalf("live session on a full disk: %v", err)
		}
		closeHeld(t, b) // its end cannot be written now
		sp.waitLog(ctx, recordNotWritten, 1)
		t.Logf("disk full: %v", sp.lines(recordNotWritten)[0]["err"])

		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		sp.waitLog(ctx, "session records written again", 1)
		closeHeld(t, a)
		poll(t, ctx, "the records", func() error {
			recs := sp.records(ctx)
			for _, s := range recs {
				if s.State != domain.StateEnded {
					return fmt.Errorf("record %+v", s)
				}
			}
			if len(recs) != 2 {
				return fmt.Errorf("%d records, want 2", len(recs))
			}
			return nil
		})
		sp.signal(ctx, syscall.SIGTERM)
		sp.assertClean(ctx)
		sp.release()
		if os.Getenv("FAULT_DEBUG") != "" {
			t.Logf("logs:\n%s", sp.logs.String())
		}
		if left := markedProcs(sp.mark); len(left) > 0 {
			t.Errorf("left: %v", left)
		}
	})
}
