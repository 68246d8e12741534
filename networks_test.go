package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/gecko"
	"github.com/geckohost/geckohost/internal/browsers"
	"github.com/geckohost/geckohost/internal/netns"
	"github.com/geckohost/geckohost/internal/syncbuf"
	"github.com/geckohost/geckohost/internal/testenv"
	"github.com/geckohost/geckohost/store"
)

// The network tests: real topologies of named network namespaces (only
// documentation addresses), a real `geckohost serve` in the host's
// namespace (this test binary re-executed as the CLI), and stock clients
// in the client's (re-executed too: stock headless Chromium and stock
// Firefox through geckohost.js on the demo page, and the Go client with
// its zero Options). Each asserts the echo, the path, the errno and the
// session record.

// netTest skips t unless the topologies can be built and a serve can run,
// and returns its context (generous: the machine is shared).
func netTest(t *testing.T, nft bool) (context.Context, *netns.Topology) {
	t.Helper()
	if _, err := gecko.FindFirefox(""); err != nil {
		testenv.Skip(t, "firefox-esr", "apt-get install firefox-esr", err)
	}
	if _, err := os.Stat(browsers.ChromiumPath); err != nil {
		testenv.Skip(t, "chromium", "apt-get install chromium")
	}
	tp := netns.NewTopology(t, nft)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	return ctx, tp
}

// netServe is a `geckohost serve` running inside a namespace.
type netServe struct {
	page  string // http://listen/
	db    string
	token string
	logs  *syncbuf.Buffer
	// exited gets the process's end (put back by whoever reads it early).
	exited chan error
}

// startNetServe runs `geckohost serve --listen listen flags...` in ns,
// with a fresh database and token; waitReady waits until it is ready. It
// is stopped with SIGTERM at cleanup and must exit cleanly (serve closes
// its Firefox; the topology reports anything left in ns).
func startNetServe(t *testing.T, e serveEngine, ns *netns.Namespace, listen string, flags ...string) *netServe {
	t.Helper()
	db := filepath.Join(t.TempDir(), "geckohost.db")
	r := geckohost(t, "token", "add", "--db", db, "--name", "net")
	wantOK(t, r)
	s := &netServe{page: "http://" + listen + "/", db: db, token: strings.TrimSpace(r.stdout), logs: &syncbuf.Buffer{}, exited: make(chan error, 1)}
	args, _ := json.Marshal(append([]string{"serve", "--db", db, "--listen", listen, "--warm", "2",
		"--log-format", "json", "--log-level", "info"}, append(e.flags(), flags...)...))
	sctx, stop := context.WithCancel(context.Background())
	cmd, err := ns.Reexec(sctx, []string{childEnv + "=cli", childArgs + "=" + string(args)})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := cmd.Start(); err != nil {
		stop()
		t.Fatalf("start serve in %s: %v", ns.Name, err)
	}
	go func() { s.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		stop() // SIGTERM: serve stops gracefully
		<-s.exited
		if code := cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("serve %s: exit %d (%v)\n%s", listen, code, cmd.ProcessState, s.logs.String())
		}
		if !strings.Contains(s.logs.String(), `"msg":"geckohost stopped"`) {
			t.Errorf("serve %s did not stop cleanly:\n%s", listen, s.logs.String())
		}
	})
	return s
}

// waitReady waits until serve logged that it is ready.
func (s *netServe) waitReady(t *testing.T, ctx context.Context) {
	t.Helper()
	for !strings.Contains(s.logs.String(), `"msg":"geckohost ready"`) {
		select {
		case err := <-s.exited:
			s.exited <- err
			t.Fatalf("serve %s exited before ready: %v\n%s", s.page, err, s.logs.String())
		case <-ctx.Done():
			t.Fatalf("serve %s not ready: %v\n%s", s.page, ctx.Err(), s.logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// job is a client job against s.
func (s *netServe) job(client string, runs int) clientJob {
	return clientJob{Client: client, Page: s.page, Token: s.token, Runs: runs}
}

// runClients runs the jobs in one client process inside ns and returns
// each job's results.
func runClients(t *testing.T, ctx context.Context, ns *netns.Namespace, jobs ...clientJob) [][]runResult {
	t.Helper()
	b, _ := json.Marshal(jobs)
	cmd, err := ns.Reexec(ctx, []string{childEnv + "=client", childJobs + "=" + string(b)})
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("clients in %s: %v\nstderr:\n%s", ns.Name, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var out [][]runResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &out); err != nil || len(out) != len(jobs) {
		t.Fatalf("client results %q: %v\nstderr:\n%s", stdout.String(), err, stderr.String())
	}
	return out
}

// wantEcho checks a connection that must have worked, and its record.
func wantEcho(t *testing.T, ctx context.Context, s *netServe, what string, r runResult) {
	t.Helper()
	if r.Echo != "hello over the network" || r.Errno != 0 || r.Path == nil {
		t.Errorf("%s: %+v, want the echo and a path", what, r)
		return
	}
	t.Logf("%s: via %s → %s (%s %s→%s), answer→connected %.1f ms, connect() %.0f ms",
		what, r.Path.Local, r.Path.Remote, r.Path.Protocol+"/"+r.Path.RelayProtocol, r.Path.LocalAddress, r.Path.RemoteAddress,
		r.Timings.Connected-r.Timings.Answer, r.MS)
	rec := waitRecord(t, ctx, s, r.WorkerID, func(rec domain.Session) bool { return !rec.Connected.IsZero() })
	if rec.Errno != 0 || rec.Answered.IsZero() {
		t.Errorf("%s: record %+v", what, rec)
	}
}

// wantFailure checks a connection that must have failed with errno
// within limit, with a reason containing every want, and its record.
func wantFailure(t *testing.T, ctx context.Context, s *netServe, what string, r runResult, errno engine.Errno, limit time.Duration, want ...string) {
	t.Helper()
	if engine.Errno(r.Errno) != errno || r.Name != errno.String() || r.Echo != "" {
		t.Errorf("%s: %+v, want %d %s", what, r, errno, errno)
		return
	}
	if d := time.Duration(r.MS * float64(time.Millisecond)); d > limit {
		t.Errorf("%s: %d after %v, want it within %v", what, r.Errno, d, limit)
	}
	for _, w := range want {
		if !strings.Contains(r.Reason, w) {
			t.Errorf("%s: reason %q lacks %q", what, r.Reason, w)
		}
	}
	t.Logf("%s: %d %s after %.0f ms: %s", what, r.Errno, r.Name, r.MS, r.Reason)
	if r.WorkerID == "" {
		t.Errorf("%s: no worker id", what)
		return
	}
	rec := waitRecord(t, ctx, s, r.WorkerID, func(rec domain.Session) bool { return rec.State == domain.StateEnded })
	if engine.Errno(rec.Errno) != errno || rec.EndReason != string(engine.EndICEFailed) || rec.Reason != r.Reason {
		t.Errorf("%s: record %+v, want errno %d, end ice-failed and the client's reason", what, rec, errno)
	}
}

// waitRecord polls s's database until the worker's record satisfies ok.
func waitRecord(t *testing.T, ctx context.Context, s *netServe, id string, ok func(domain.Session) bool) domain.Session {
	t.Helper()
	db, err := store.Open(ctx, s.db)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for {
		rec, err := db.GetSession(ctx, id)
		if err == nil && ok(rec) {
			return rec
		}
		select {
		case <-ctx.Done():
			t.Fatalf("record of %s: %+v, %v", id, rec, errors.Join(err, ctx.Err()))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func loopbackAddr(a string) bool { return a == "127.0.0.1" || a == "::1" }

// TestNetworkSameMachine: the client on the machine that runs serve, the
// page at http://127.0.0.1:8765/. The machine has a network (an uplink
// with a default route, as a workstation has; nothing answers there).
// With serve's defaults, stock Chromium, stock Firefox and the Go client
// connect. With --ice-loopback, Chromium and the Go client connect over
// loopback and stock Firefox (which does not use loopback) gets a 305 that
// says so. Offline (the uplink down, only lo), stock Chromium gathers
// nothing: a 305 that says so, within 10 s; the Go client still connects
// over loopback.
func TestNetworkSameMachine(t *testing.T) {
	forServeEngines(t, false, func(t *testing.T, e serveEngine) {
		ctx, tp := netTest(t, false)
		h := tp.Namespace("host")
		up := tp.Namespace("uplink")
		hIf, _ := tp.Link(h, "192.0.2.2/24", up, "192.0.2.1/24")
		h.Route("default", "192.0.2.1")

		// One after the other: two Firefox starting at once on a loaded
		// 2-core machine can take longer than gecko's 30 s start bound.
		def := startNetServe(t, e, h, "127.0.0.1:8765")
		def.waitReady(t, ctx)
		loop := startNetServe(t, e, h, "127.0.0.1:8766", "--ice-loopback")
		loop.waitReady(t, ctx)
		if !strings.Contains(loop.logs.String(), "--ice-loopback: workers use loopback candidates only") {
			t.Errorf("serve --ice-loopback did not say which clients it cannot serve:\n%s", loop.logs.String())
		}
		res := runClients(t, ctx, h,
			def.job("chromium", 1), def.job("firefox", 1), def.job("go", 1),
			loop.job("chromium", 1), loop.job("go", 1), loop.job("firefox", 1))
		wantEcho(t, ctx, def, "default, chromium", res[0][0])
		wantEcho(t, ctx, def, "default, firefox", res[1][0])
		wantEcho(t, ctx, def, "default, go", res[2][0])
		for i, what := range map[int]string{3: "--ice-loopback, chromium", 4: "--ice-loopback, go"} {
			r := res[i][0]
			wantEcho(t, ctx, loop, what, r)
			if r.Path != nil && !loopbackAddr(r.Path.RemoteAddress) {
				t.Errorf("%s: remote %s, want the worker's loopback address", what, r.Path.RemoteAddress)
			}
		}
		wantFailure(t, ctx, loop, "--ice-loopback, firefox", res[5][0], engine.PeerConnectionFailed, 10*time.Second,
			"the worker offered host 127.0.0.1", "only mDNS .local names", "run serve without --ice-loopback")

		// Offline: the uplink is down, only lo is left.
		h.IP("link", "set", hIf, "down")
		res = runClients(t, ctx, h, def.job("chromium", 1), def.job("go", 1))
		wantFailure(t, ctx, def, "offline, chromium", res[0][0], engine.PeerConnectionFailed, 10*time.Second,
			"the client offered no candidates", "no network route")
		wantEcho(t, ctx, def, "offline, go", res[1][0]) // over loopback
	})
}

// TestNetworkLAN: the client on another machine of the LAN (a veth
// between two namespaces), serve --listen on the host's LAN address with
// its defaults otherwise. Stock Chromium (several times, for the answer →
// connected figure), stock Firefox and the Go client connect host to
// host, never offered the worker's loopback candidates.
func TestNetworkLAN(t *testing.T) {
	forServeEngines(t, false, func(t *testing.T, e serveEngine) {
		ctx, tp := netTest(t, false)
		h := tp.Namespace("host")
		c := tp.Namespace("client")
		tp.Link(h, "198.51.100.1/24", c, "198.51.100.2/24")
		c.Route("default", "198.51.100.1")

		s := startNetServe(t, e, h, "198.51.100.1:8765")
		s.waitReady(t, ctx)
		const runs = 10
		res := runClients(t, ctx, c, s.job("chromium", runs), s.job("firefox", 1), s.job("go", 1))
		var connect, record []float64
		for i, r := range res[0] {
			wantEcho(t, ctx, s, fmt.Sprintf("chromium %d", i+1), r)
			if r.Path != nil && r.Path.RemoteAddress != "198.51.100.1" {
				t.Errorf("chromium %d: remote %s, want 198.51.100.1", i+1, r.Path.RemoteAddress)
			}
			connect = append(connect, r.Timings.Connected-r.Timings.Answer)
			rec := waitRecord(t, ctx, s, r.WorkerID, func(rec domain.Session) bool { return !rec.Connected.IsZero() })
			record = append(record, float64(rec.Connected.Sub(rec.Answered).Microseconds())/1000)
		}
		wantEcho(t, ctx, s, "firefox", res[1][0])
		wantEcho(t, ctx, s, "go", res[2][0])
		for _, r := range []runResult{res[1][0], res[2][0]} {
			if r.Path != nil && r.Path.RemoteAddress != "198.51.100.1" && r.Path.RemoteAddress != "" {
				t.Errorf("remote %s, want 198.51.100.1", r.Path.RemoteAddress)
			}
		}
		t.Logf("LAN, stock Chromium, answer → connected over %d runs: client p50 %.1f ms (min %.1f, max %.1f); host record p50 %.1f ms (min %.1f, max %.1f)",
			runs, p50(connect), slices.Min(connect), slices.Max(connect), p50(record), slices.Min(record), slices.Max(record))
	})
}

func p50(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// TestNetworkUDPBlocked: client → router → host, the router forwarding
// TCP but dropping every forwarded UDP packet (nftables), as corporate
// and hotel networks do. With serve --turn-listen, stock Chromium and the
// Go client fetch the relay from /ice-servers and connect through it over
// TCP. With no TURN, stock Chromium gets a 305 that says so, within 10 s.
func TestNetworkUDPBlocked(t *testing.T) {
	forServeEngines(t, false, func(t *testing.T, e serveEngine) {
		ctx, tp := netTest(t, true)
		c := tp.Namespace("client")
		r := tp.Namespace("router")
		h := tp.Namespace("host")
		tp.Link(c, "203.0.113.2/24", r, "203.0.113.1/24")
		tp.Link(r, "198.51.100.254/24", h, "198.51.100.1/24")
		c.Route("default", "203.0.113.1")
		h.Route("default", "198.51.100.254")
		r.Forward()
		r.NFT("table inet geckohost_test {\n chain forward {\n  type filter hook forward priority 0;\n  meta l4proto udp drop\n }\n}\n")

		turn := startNetServe(t, e, h, "198.51.100.1:8765", "--turn-listen", "198.51.100.1:3478")
		turn.waitReady(t, ctx)
		plain := startNetServe(t, e, h, "198.51.100.1:8766")
		plain.waitReady(t, ctx)
		noTURN := plain.job("chromium", 1)
		res := runClients(t, ctx, c, turn.job("chromium", 1), turn.job("go", 1), noTURN)
		for i, what := range []string{"turn, chromium", "turn, go"} {
			r := res[i][0]
			wantEcho(t, ctx, turn, what, r)
			if r.Path != nil && (r.Path.Local != "relay" || r.Path.RelayProtocol != "tcp") {
				t.Errorf("%s: path %+v, want a local relay candidate reached over TCP", what, r.Path)
			}
		}
		// The workers use the same relay (the host hands them its servers).
		if !slices.Contains(res[0][0].RemoteTypes, "relay") {
			t.Errorf("the worker offered %v, want a relay candidate among them", res[0][0].RemoteTypes)
		}
		wantFailure(t, ctx, plain, "no turn, chromium", res[2][0], engine.PeerConnectionFailed, 10*time.Second,
			"ICE found no candidate pair", "--turn-listen")
	})
}
