package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/geckohost/geckohost/gecko"
	"github.com/geckohost/geckohost/host"
	"github.com/geckohost/geckohost/host/client"
	"github.com/geckohost/geckohost/internal/leaktest"
	"github.com/geckohost/geckohost/internal/netns"
	"github.com/geckohost/geckohost/internal/syncbuf"
	"github.com/geckohost/geckohost/internal/testenv"
)

// TestServeEndToEnd runs the real `serve` wiring (store, Firefox pool, host,
// web) as a user would after `geckohost token add`, connects a pion client
// to the bundled echo worker, and checks the echo and the session record.
func TestServeEndToEnd(t *testing.T) {
	forServeEngines(t, true, func(t *testing.T, e serveEngine) {
		ctx := engineTest(t, 90*time.Second)
		addr, secret, db, _ := startServeWith(t, ctx, "e2e", engineConfig(t, e, nil))

		sess, err := client.Dial(ctx, "ws://"+addr+"/", client.Options{
			Token: secret, Source: "http://" + addr + "/workers/echo.js", Loopback: true})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		got := make(chan string, 1)
		sess.Channel.OnMessage(func(m webrtc.DataChannelMessage) { got <- string(m.Data) })
		if err := sess.Channel.SendText("hello gecko"); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-got:
			if m != "hello gecko" {
				t.Errorf("echo %q", m)
			}
		case <-ctx.Done():
			t.Fatal("no echo")
		}
		if err := sess.Close(); err != nil {
			t.Error(err)
		}

		// The session is recorded; once the peer closed, it ends.
		for {
			r := geckohost(t, "sessions", "--db", db, "--json")
			wantOK(t, r)
			var rows []struct {
				WorkerID string `json:"worker_id"`
				State    string `json:"state"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
				t.Fatalf("sessions --json: %v: %s", err, r.stdout)
			}
			if len(rows) == 1 && rows[0].WorkerID == sess.WorkerID && rows[0].State == "ended" {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("session not ended: %s", r.stdout)
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
}

// startServe starts a real `serve` (store, Firefox pool with loopback ICE,
// host, web) in-process, as a user would after `geckohost token add --name
// token`, and returns its address, the token's secret and the database
// path; it is stopped, and checked to stop cleanly, when the test ends.
// serveTest skips t where a real serve cannot run (not root, no Firefox),
// checks it for leaked goroutines and returns its 90 s context.
func serveTest(t *testing.T) context.Context { return serveTestFor(t, 90*time.Second) }

// serveTestFor is serveTest with a context of d.
func serveTestFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	netns.Skip(t)
	if _, err := gecko.FindFirefox(""); err != nil {
		testenv.Skip(t, "firefox-esr", "apt-get install firefox-esr", err)
	}
	leaktest.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func startServe(t *testing.T, ctx context.Context, token string) (addr, secret, db string) {
	t.Helper()
	addr, secret, db, _ = startServeWith(t, ctx, token, nil)
	return addr, secret, db
}

// startServeWith is startServe with the configuration changed by tweak; it
// also returns serve's (JSON) logs.
func startServeWith(t *testing.T, ctx context.Context, token string, tweak func(*serveConfig)) (addr, secret, db string, logs *syncbuf.Buffer) {
	t.Helper()
	db = filepath.Join(t.TempDir(), "geckohost.db")
	secret = addDBToken(t, db, token)

	cfg := serveConfig{DBPath: db, Listen: "127.0.0.1:0", Browsers: 1, MaxWorkersPerBrowser: 150,
		Warm: 2, WorkerIdle: time.Minute, ICELoopback: true, LogFormat: "json", LogLevel: "info",
		QueueSize: 200}
	if tweak != nil {
		tweak(&cfg)
	}
	runCtx, stop := context.WithCancel(ctx)
	logs = &syncbuf.Buffer{}
	var serveErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		serveErr = runServe(runCtx, cfg, logs)
	}()
	t.Cleanup(func() {
		stop()
		<-done
		if serveErr != nil {
			t.Errorf("serve: %v\n%s", serveErr, logs.String())
		}
	})
	addr = waitReady(t, ctx, logs, done, func() string { return fmt.Sprint(serveErr) })
	return addr, secret, db, logs
}

// addDBToken adds a token named name to the database at db (creating it)
// with `geckohost token add` and returns its secret.
func addDBToken(t *testing.T, db, name string, flags ...string) string {
	t.Helper()
	r := geckohost(t, append([]string{"token", "add", "--db", db, "--name", name}, flags...)...)
	wantOK(t, r)
	return strings.TrimSpace(r.stdout)
}

// waitReady waits until a serve's JSON logs say "geckohost ready" and
// returns the address of its "geckohost serving" line. It fails t when the
// serve stops first (done closed; why says why) or ctx ends.
func waitReady(t *testing.T, ctx context.Context, logs *syncbuf.Buffer, done <-chan struct{}, why func() string) string {
	t.Helper()
	for {
		var addr string
		ready := false
		for _, l := range logLines(logs.String()) {
			switch l["msg"] {
			case "geckohost serving":
				u, _ := l["url"].(string)
				addr = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://"), "/")
			case "geckohost ready":
				ready = true
			}
		}
		if ready && addr != "" {
			return addr
		}
		select {
		case <-done:
			t.Fatalf("serve stopped before ready: %s\n%s", why(), logs.String())
		case <-ctx.Done():
			t.Fatalf("serve not ready: %s", logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// logLines parses JSON log lines (others are skipped).
func logLines(s string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(s, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// TestServeOps runs a real serve with --metrics-listen and --debug-listen:
// /metrics moved to its own address, pprof served, `geckohost status`
// reads the real pool, bench --metrics reads the server's histograms, and
// the start log line names the version `geckohost version` prints.
func TestServeOps(t *testing.T) {
	forServeEngines(t, true, func(t *testing.T, e serveEngine) {
		ctx := engineTest(t, 90*time.Second)
		addr, secret, _, logs := startServeWith(t, ctx, "ops", engineConfig(t, e, func(c *serveConfig) {
			c.MetricsListen = "127.0.0.1:0"
			c.DebugListen = "127.0.0.1:0"
		}))
		defer http.DefaultClient.CloseIdleConnections()
		urls := map[string]string{}
		var serving struct{ Version, Commit string }
		for _, line := range strings.Split(logs.String(), "\n") {
			var rec struct{ Msg, URL, Version, Commit string }
			if json.Unmarshal([]byte(line), &rec) != nil {
				continue
			}
			switch rec.Msg {
			case "serving metrics", "serving debug":
				urls[rec.Msg] = rec.URL
			case "geckohost serving":
				serving.Version, serving.Commit = rec.Version, rec.Commit
			}
		}
		b := buildInfo()
		if serving.Version != b.Version || serving.Commit != b.Commit {
			t.Errorf("start log names %+v, the binary is %+v", serving, b)
		}
		getAs := func(hostHeader, url string) (int, string) {
			t.Helper()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				t.Fatal(err)
			}
			if hostHeader != "" {
				req.Host = hostHeader
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("GET %s: %v", url, err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			return res.StatusCode, string(body)
		}
		get := func(url string) (int, string) { t.Helper(); return getAs("", url) }
		if code, _ := get("http://" + addr + "/metrics"); code != http.StatusNotFound {
			t.Errorf("/metrics on --listen with --metrics-listen: %d", code)
		}
		if code, body := get(urls["serving metrics"]); code != http.StatusOK || !strings.Contains(body, "geckohost_worker_capacity 150") {
			t.Errorf("--metrics-listen %s: %d\n%.300s", urls["serving metrics"], code, body)
		}
		if code, body := get(urls["serving debug"] + "goroutine?debug=1"); code != http.StatusOK || !strings.Contains(body, "goroutine profile") {
			t.Errorf("--debug-listen %s: %d %.200s", urls["serving debug"], code, body)
		}
		// A DNS-rebinding page's name is refused by the side servers too.
		for _, u := range []string{urls["serving metrics"], urls["serving debug"]} {
			if code, body := getAs("rebind.example:80", u); code != http.StatusMisdirectedRequest {
				t.Errorf("%s as Host rebind.example: %d %.200s", u, code, body)
			}
		}

		r := geckohost(t, "bench", "--url", "ws://"+addr+"/", "--token", secret, "-n", "2", "--messages", "1", "--loopback",
			"--metrics", "--metrics-url", urls["serving metrics"], "--json")
		wantOK(t, r)
		rep := decodeBench(t, r)
		if a, c := rep.Server["answer"], rep.Server["connected"]; a.Count != 2 || c.Count != 2 || a.P50 <= 0 || c.P50 < a.P50 || a.Mean <= 0 {
			t.Errorf("server side %+v", rep.Server)
		}
		r = geckohost(t, "bench", "--url", "ws://"+addr+"/", "--token", secret, "-n", "1", "--messages", "1", "--loopback",
			"--metrics", "--metrics-url", urls["serving metrics"])
		wantOK(t, r)
		if !strings.Contains(r.stdout, "server answer (hello → answer)") || !strings.Contains(r.stdout, "server queue wait") {
			t.Errorf("bench --metrics table:\n%s", r.stdout)
		}
		// Without --metrics-url the metrics are not on --url's address.
		r = geckohost(t, "bench", "--url", "ws://"+addr+"/", "--token", secret, "-n", "1", "--loopback", "--metrics")
		wantFail(t, r, "404", "--metrics-url")

		r = geckohost(t, "status", "--url", "http://"+addr+"/")
		wantOK(t, r)
		t.Logf("geckohost status:\n%s", r.stdout)
		for _, w := range []string{"geckohost " + b.Version, "ready", "BROWSER", "running", "/150", " MiB", "queue: 0 waiting (at most 200"} {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("status lacks %q", w)
			}
		}
		r = geckohost(t, "status", "--url", "ws://"+addr+"/", "--json")
		wantOK(t, r)
		var st host.Status
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || len(st.Browsers) != 1 || st.Browsers[0].PID == 0 ||
			st.Browsers[0].PSSBytes == 0 || st.Version != b.Version {
			t.Errorf("status --json: %v %+v", err, st)
		}
	})
}
