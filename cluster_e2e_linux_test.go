//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/host/client"
	"github.com/geckohost/geckohost/internal/leaktest"
	"github.com/geckohost/geckohost/internal/netns"
	"github.com/geckohost/geckohost/internal/redistest"
	"github.com/geckohost/geckohost/internal/syncbuf"
)

// mainArgsEnv makes the test binary run geckohost with these arguments
// (JSON) instead of the tests: a real "geckohost serve" process the test
// can SIGTERM or kill -9.
const mainArgsEnv = "GECKOHOST_TEST_MAIN_ARGS"

func init() {
	if a := os.Getenv(mainArgsEnv); a != "" {
		var args []string
		if err := json.Unmarshal([]byte(a), &args); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		// As main does: SIGTERM cancels the context.
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, append([]string{"geckohost"}, args...), os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
}

// serveProc is one "geckohost serve" process of the cluster test.
type serveProc struct {
	id   string
	db   string
	tmp  string // its TMPDIR: its Firefox profiles
	addr string
	cmd  *exec.Cmd
	logs *syncbuf.Buffer
	done chan struct{}
	err  error // cmd.Wait's, once done
}

var servingRE = regexp.MustCompile(`"msg":"geckohost serving","url":"http://([^/"]+)/"`)

// placedRecord reads worker id's record in the SQLite file db once it
// names the worker's node: from its answered state on (the hello's first
// row names the node that took it). The records are written
// asynchronously, so a client can have the answer first.
func placedRecord(t *testing.T, ctx context.Context, db, id string) (domain.Session, error) {
	t.Helper()
	st := openStore(t, db)
	for {
		rec, err := st.GetSession(ctx, id)
		if err == nil && !rec.Answered.IsZero() {
			return rec, nil
		}
		select {
		case <-ctx.Done():
			return rec, fmt.Errorf("record of %s not answered: %w (last: %v)", id, ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// startNode runs serve as node id with --redis url.
func startNode(t *testing.T, ctx context.Context, e serveEngine, id, url string, extra ...string) *serveProc {
	t.Helper()
	dir := t.TempDir()
	p := &serveProc{id: id, db: filepath.Join(dir, id+".db"), tmp: filepath.Join(dir, "tmp"), logs: &syncbuf.Buffer{}, done: make(chan struct{})}
	if err := os.Mkdir(p.tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"serve", "--db", p.db, "--listen", "127.0.0.1:0", "--redis", url, "--node-id", id,
		// No default per-token cap (half the capacity: 1 here): a token's
		// next hello right after its session closed must not race the
		// cluster's count of the one that ended.
		"--browsers", "1", "--max-workers-per-browser", "2", "--token-max-workers", "-1", "--warm", "1", "--ice-loopback",
		"--allow-source", "http://127.0.0.1:*", "--log-format", "json", "--log-level", "debug"}, append(e.flags(), extra...)...)
	b, _ := json.Marshal(args)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(self)
	p.cmd.Env = append(os.Environ(), mainArgsEnv+"="+string(b), "TMPDIR="+p.tmp)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill(t)
		if t.Failed() {
			t.Logf("node %s logs:\n%s", id, p.logs.String())
		}
	})
	return p
}

// waitReady waits for the node's "geckohost ready" line.
func (p *serveProc) waitReady(t *testing.T, ctx context.Context) {
	t.Helper()
	for {
		logs := p.logs.String()
		if m := servingRE.FindStringSubmatch(logs); m != nil && strings.Contains(logs, `"msg":"geckohost ready"`) {
			p.addr = m[1]
			return
		}
		select {
		case <-p.done:
			t.Fatalf("node %s exited: %v\n%s", p.id, p.err, logs)
		case <-ctx.Done():
			t.Fatalf("node %s not ready:\n%s", p.id, logs)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *serveProc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	sent := time.Now()
	select {
	case <-p.done:
		if p.err != nil {
			t.Errorf("node %s: %v\n%s", p.id, p.err, p.logs.String())
		}
		t.Logf("node %s exited %v after SIGTERM", p.id, time.Since(sent).Round(time.Millisecond))
	case <-time.After(40 * time.Second):
		t.Errorf("node %s did not exit after SIGTERM", p.id)
	}
	p.reap(t)
}

// kill kills the process (kill -9) and whatever Firefox it left.
func (p *serveProc) kill(t *testing.T) {
	_ = p.cmd.Process.Kill()
	<-p.done
	p.reap(t)
}

// reap kills every process left running with the node's TMPDIR on its
// command line (its Firefox processes, after a kill -9) and waits for them.
func (p *serveProc) reap(t *testing.T) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		pids := procsWith(p.tmp)
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if time.Now().After(deadline) {
			t.Errorf("node %s: processes %v still running", p.id, pids)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// procsWith lists the running processes whose command line contains s.
func procsWith(s string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(b), s) {
			continue
		}
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			if f := strings.Fields(string(st)); len(f) > 2 && f[2] == "Z" {
				continue
			}
		}
		out = append(out, pid)
	}
	return out
}

// dial opens a session through node p for the bundled echo worker (or
// source), checks one echo and returns it.
func (p *serveProc) dial(t *testing.T, ctx context.Context, secret, source string) (*client.Session, error) {
	t.Helper()
	if source == "" {
		source = "http://" + p.addr + "/workers/echo.js"
	}
	dctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	s, err := client.Dial(dctx, "ws://"+p.addr+"/", client.Options{Token: secret, Source: source, Loopback: true})
	if err != nil {
		return nil, err
	}
	got := make(chan string, 1)
	s.Channel.OnMessage(func(m webrtc.DataChannelMessage) {
		select {
		case got <- string(m.Data):
		default:
		}
	})
	if err := s.Channel.SendText("ping " + p.id); err != nil {
		_ = s.Close()
		return nil, err
	}
	select {
	case m := <-got:
		if m != "ping "+p.id {
			_ = s.Close()
			return nil, fmt.Errorf("echo %q", m)
		}
	case <-dctx.Done():
		_ = s.Close()
		return nil, fmt.Errorf("no echo through node %s", p.id)
	}
	return s, nil
}

func mustDial(t *testing.T, ctx context.Context, p *serveProc, secret string) *client.Session {
	t.Helper()
	s, err := p.dial(t, ctx, secret, "")
	if err != nil {
		t.Fatalf("dial node %s: %v", p.id, err)
	}
	return s
}

// wantErrno checks that err is a worker-error errno whose reason contains sub.
func wantErrno(t *testing.T, err error, errno engine.Errno, sub string) {
	t.Helper()
	var we *engine.Error
	if !errors.As(err, &we) || we.Errno != errno || !strings.Contains(we.Reason, sub) {
		t.Fatalf("got %v, want %d containing %q", err, errno, sub)
	}
}

// nodeWorkers returns the live workers per node, from "geckohost nodes".
func nodeWorkers(t *testing.T, url string) map[string]int {
	t.Helper()
	r := geckohost(t, "nodes", "--redis", url, "--json")
	wantOK(t, r)
	var nodes []struct {
		ID      string `json:"id"`
		Workers int    `json:"workers"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &nodes); err != nil {
		t.Fatalf("nodes --json: %v: %s", err, r.stdout)
	}
	out := map[string]int{}
	for _, n := range nodes {
		out[n.ID] = n.Workers
	}
	return out
}

// waitWorkers polls "geckohost nodes" until the live workers are want.
func waitWorkers(t *testing.T, ctx context.Context, url string, want map[string]int) {
	t.Helper()
	for {
		got := nodeWorkers(t, url)
		if fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("workers per node %v, want %v", got, want)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// addToken adds a cluster token and returns its secret.
func addToken(t *testing.T, url, name string, extra ...string) string {
	t.Helper()
	r := geckohost(t, append([]string{"token", "add", "--redis", url, "--name", name}, extra...)...)
	wantOK(t, r)
	return strings.TrimSpace(r.stdout)
}

// TestClusterEndToEnd: three serve processes with real Firefox and one
// Redis, as the cluster issue's "done when" lists.
func TestClusterEndToEnd(t *testing.T) {
	// One engine after the other: three browsers at once are enough for
	// two cores.
	forServeEnginesSerial(t, true, func(t *testing.T, e serveEngine) {
		// Three Firefox processes on two cores, beside other tests: generous.
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		rs := redistest.Start(t)
		url := rs.URL()
		all := addToken(t, url, "all")

		// One after the other: three Firefox starting at once on a loaded
		// machine can miss their start timeout.
		var nodes []*serveProc
		for _, id := range []string{"a", "b", "c"} {
			p := startNode(t, ctx, e, id, url)
			p.waitReady(t, ctx)
			nodes = append(nodes, p)
		}
		a, b, c := nodes[0], nodes[1], nodes[2]
		idle := map[string]int{"a": 0, "b": 0, "c": 0}
		waitWorkers(t, ctx, url, idle)

		// A token added with --redis works on every node.
		for _, p := range nodes {
			s := mustDial(t, ctx, p, all)
			_ = s.Close()
		}

		// A rate of 3/1m spread over three nodes refuses the fourth.
		rated := addToken(t, url, "rated", "--rate", "3/1m")
		for _, p := range nodes {
			s := mustDial(t, ctx, p, rated)
			_ = s.Close()
		}
		_, err := a.dial(t, ctx, rated, "")
		wantErrno(t, err, engine.LimitReached, "rate limit of 3 workers per 1m0s")
		waitWorkers(t, ctx, url, idle)

		// A token's second worker lands beside its first.
		aff := addToken(t, url, "aff")
		s1 := mustDial(t, ctx, a, aff)
		s2 := mustDial(t, ctx, c, aff)
		rec, err := placedRecord(t, ctx, c.db, s2.WorkerID)
		if err != nil || rec.NodeID != "a" {
			t.Errorf("second worker of the token ran on %q (%v), want a (beside the first)", rec.NodeID, err)
		}
		_, _ = s1.Close(), s2.Close()
		waitWorkers(t, ctx, url, idle)

		// Six held sessions through a land two per node.
		var held []*client.Session
		for range 6 {
			held = append(held, mustDial(t, ctx, a, all))
		}
		waitWorkers(t, ctx, url, map[string]int{"a": 2, "b": 2, "c": 2})
		for _, s := range held {
			_ = s.Close()
		}
		waitWorkers(t, ctx, url, idle)

		// A revoke is honoured by every node within 1 s.
		rev := addToken(t, url, "rev")
		s := mustDial(t, ctx, c, rev) // c has looked the token up
		_ = s.Close()
		wantOK(t, geckohost(t, "token", "revoke", "--redis", url, "rev"))
		revoked := time.Now()
		select {
		case <-time.After(time.Until(revoked.Add(time.Second))):
		case <-ctx.Done():
		}
		_, err = c.dial(t, ctx, rev, "")
		wantErrno(t, err, engine.InvalidToken, "revoked")

		// kill -9 of b while it negotiates a client of a: the client gets a
		// 303, and new hellos succeed on a and c. The client below has b's
		// answer but never sends a candidate, so it stays negotiating.
		kb := addToken(t, url, "kb")
		hold := mustDial(t, ctx, b, kb) // the token's node is now b
		defer func() { _ = hold.Close() }()
		neg := helloAnswered(t, ctx, a, kb)
		rec, err = placedRecord(t, ctx, a.db, neg.id)
		if err != nil || rec.NodeID != "b" {
			t.Fatalf("negotiating worker on %q (%v), want b (the token's node)", rec.NodeID, err)
		}
		killed := time.Now()
		b.kill(t)
		neg.expectError(t, ctx, engine.GeckoCrashed, "node b stopped answering")
		t.Logf("303 %v after kill -9 of b", time.Since(killed).Round(time.Millisecond))
		for _, p := range []*serveProc{a, c} {
			s := mustDial(t, ctx, p, kb)
			_ = s.Close()
		}
		waitWorkers(t, ctx, url, map[string]int{"a": 0, "c": 0})

		// Redis stops: 301 and 503, connected sessions untouched; it comes
		// back: hellos succeed again, serve not restarted.
		held1 := mustDial(t, ctx, a, all)
		defer func() { _ = held1.Close() }()
		rs.Stop(t)
		for {
			code, body := httpGet(t, "http://"+a.addr+"/readyz")
			if code == http.StatusServiceUnavailable && strings.Contains(body, "cluster store unreachable") {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("readyz %d %q while Redis is down", code, body)
			case <-time.After(50 * time.Millisecond):
			}
		}
		_, err = c.dial(t, ctx, all, "")
		wantErrno(t, err, engine.NoGeckoAvailable, "cluster store unreachable")
		echo(t, ctx, held1, "during the outage")
		rs.Restart(t)
		for {
			s, err := c.dial(t, ctx, all, "")
			if err == nil {
				_ = s.Close()
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("no hello after Redis came back: %v", err)
			case <-time.After(100 * time.Millisecond):
			}
		}
		echo(t, ctx, held1, "after the outage")
		_ = held1.Close()

		// SIGTERM: each node drains and exits cleanly.
		a.stop(t)
		c.stop(t)
		waitWorkers(t, ctx, url, map[string]int{})
		r := geckohost(t, "sessions", "--redis", url, "--json", "--limit", "100")
		wantOK(t, r)
		var recs []struct {
			NodeID string `json:"node_id"`
			Front  string `json:"front"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &recs); err != nil || len(recs) < 15 {
			t.Errorf("sessions --redis: %d records (%v)", len(recs), err)
		}
	})
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer func() { _ = resp.Body.Close() }()
	var sb strings.Builder
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	sb.Write(buf[:n])
	return resp.StatusCode, sb.String()
}

// echo checks that a held session still echoes.
func echo(t *testing.T, ctx context.Context, s *client.Session, when string) {
	t.Helper()
	got := make(chan string, 1)
	s.Channel.OnMessage(func(m webrtc.DataChannelMessage) {
		select {
		case got <- string(m.Data):
		default:
		}
	})
	if err := s.Channel.SendText("still there"); err != nil {
		t.Fatalf("send %s: %v", when, err)
	}
	select {
	case m := <-got:
		if m != "still there" {
			t.Errorf("echo %s: %q", when, m)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no echo %s", when)
	case <-ctx.Done():
		t.Fatalf("no echo %s", when)
	}
}

// rawSession is a signaling session held at "answered": a real pion offer,
// no candidate ever sent.
type rawSession struct {
	c  *websocket.Conn
	pc *webrtc.PeerConnection
	id string
}

// helloAnswered sends a hello through p and reads the worker's answer.
func helloAnswered(t *testing.T, ctx context.Context, p *serveProc, secret string) *rawSession {
	t.Helper()
	pc, err := client.NewAPI(client.Options{Loopback: true}).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	if _, err := pc.CreateDataChannel("geckohost", nil); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := websocket.Dial(ctx, "ws://"+p.addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	b, _ := json.Marshal(map[string]any{"messageType": "hello", "action": "client-hello", "authorization": "Bearer " + secret,
		"source": "http://" + p.addr + "/workers/echo.js", "webrtcOffer": offer.SDP})
	if err := c.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
	rs := &rawSession{c: c, pc: pc}
	m := rs.read(t, ctx)
	if m["action"] != "worker-hello" {
		t.Fatalf("got %v, want worker-hello", m)
	}
	rs.id, _ = m["workerId"].(string)
	return rs
}

func (rs *rawSession) read(t *testing.T, ctx context.Context) map[string]any {
	t.Helper()
	_, b, err := rs.c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("frame %s: %v", b, err)
	}
	return m
}

// expectError reads frames (the worker's candidates) until a worker-error.
func (rs *rawSession) expectError(t *testing.T, ctx context.Context, errno engine.Errno, sub string) {
	t.Helper()
	for {
		m := rs.read(t, ctx)
		if m["messageType"] != "worker-error" {
			continue
		}
		n, _ := m["errno"].(float64)
		reason, _ := m["reason"].(string)
		if engine.Errno(n) != errno || !strings.Contains(reason, sub) {
			t.Fatalf("worker-error %v, want %d containing %q", m, errno, sub)
		}
		return
	}
}

// TestClusterMixedEngines: a cluster's nodes may run different engines.
// "geckohost nodes" names each node's engine, a token's worker relayed to
// a Chromium node from a Firefox node's client runs there and echoes, and
// its record names the engine that ran it.
func TestClusterMixedEngines(t *testing.T) {
	netns.Skip(t)
	leaktest.Check(t)
	ff, cr := serveEngines[0], serveEngines[1]
	needServeEngine(t, ff)
	needServeEngine(t, cr)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rs := redistest.Start(t)
	url := rs.URL()
	// b first: a's view of the registry (read every half heartbeat) has b
	// ready by the time a's own browser is.
	b := startNode(t, ctx, cr, "b", url)
	b.waitReady(t, ctx)
	a := startNode(t, ctx, ff, "a", url)
	a.waitReady(t, ctx)

	r := geckohost(t, "nodes", "--redis", url, "--json")
	wantOK(t, r)
	var nodes []struct{ ID, Engine string }
	if err := json.Unmarshal([]byte(r.stdout), &nodes); err != nil {
		t.Fatalf("nodes --json: %v: %s", err, r.stdout)
	}
	engines := map[string]string{}
	for _, n := range nodes {
		engines[n.ID] = n.Engine
	}
	if engines["a"] != "firefox" || engines["b"] != "chromium" {
		t.Errorf("nodes' engines %v, want a firefox, b chromium", engines)
	}

	mix := addToken(t, url, "mix")
	first := mustDial(t, ctx, b, mix) // the token's node is now b
	defer func() { _ = first.Close() }()
	relayed := mustDial(t, ctx, a, mix)
	defer func() { _ = relayed.Close() }()
	rec, err := placedRecord(t, ctx, a.db, relayed.WorkerID)
	if err != nil || rec.NodeID != "b" || rec.Engine != "chromium" {
		t.Errorf("relayed worker's record: node %q, engine %q (%v); want b, chromium", rec.NodeID, rec.Engine, err)
	}
	echo(t, ctx, relayed, "relayed to a Chromium node")

	own := mustDial(t, ctx, a, addToken(t, url, "own"))
	defer func() { _ = own.Close() }()
	rec, err = placedRecord(t, ctx, a.db, own.WorkerID)
	if err != nil || rec.NodeID != "a" || rec.Engine != "firefox" {
		t.Errorf("local worker's record: node %q, engine %q (%v); want a, firefox", rec.NodeID, rec.Engine, err)
	}
	echo(t, ctx, own, "on the Firefox node")
	_, _, _ = first.Close(), relayed.Close(), own.Close()
	waitWorkers(t, ctx, url, map[string]int{"a": 0, "b": 0})
	a.stop(t)
	b.stop(t)
}
