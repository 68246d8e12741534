package main

import (
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/geckohost/geckohost/internal/bench"
	"github.com/geckohost/geckohost/internal/leaktest"
)

// decodeBench parses bench --json output.
func decodeBench(t *testing.T, r result) bench.Report {
	t.Helper()
	var rep bench.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("bench --json output: %v\n%s\nstderr: %s", err, r.stdout, r.stderr)
	}
	return rep
}

// TestBenchAgainstServe runs `geckohost bench` in-process against a real
// `geckohost serve --ice-loopback` with Firefox workers.
func TestBenchAgainstServe(t *testing.T) {
	ctx := serveTest(t)
	addr, secret, _ := startServe(t, ctx, "bench")
	url := "ws://" + addr + "/"

	t.Run("json", func(t *testing.T) {
		r := geckohost(t, "bench", "--url", url, "--token", secret, "-n", "5", "-c", "2", "--messages", "3", "--loopback", "--trace", "--json")
		wantOK(t, r)
		if r.stderr != "" {
			t.Errorf("stderr %q", r.stderr)
		}
		rep := decodeBench(t, r)
		if rep.Sessions != 5 || rep.Started != 5 || rep.OK != 5 || rep.Failed != 0 || rep.Interrupted || len(rep.Errors) != 0 {
			t.Errorf("report %+v", rep)
		}
		if rep.Source != "http://"+addr+"/workers/echo.js" || rep.Concurrency != 2 || rep.Messages != 3 || !rep.Loopback || rep.Hold {
			t.Errorf("settings %+v", rep)
		}
		for name, want := range map[string]struct {
			s     bench.Stats
			count int
		}{"answer": {rep.Answer, 5}, "connected": {rep.Connected, 5}, "open": {rep.Open, 5}, "echo_rtt": {rep.EchoRTT, 15}} {
			s := want.s
			if s.Count != want.count || s.P50 <= 0 || s.P90 < s.P50 || s.P95 < s.P90 || s.P99 < s.P95 || s.Max < s.P99 {
				t.Errorf("%s: %+v, want %d values, 0 < p50 ≤ p90 ≤ p99 ≤ max", name, s, want.count)
			}
		}
		if rep.Answer.P50 > rep.Open.P50 || rep.WallMS <= 0 {
			t.Errorf("answer p50 %v > open p50 %v, or wall %v", rep.Answer.P50, rep.Open.P50, rep.WallMS)
		}
		if rep.ClientCPUMS <= 0 {
			t.Errorf("client_cpu_ms %v, want > 0", rep.ClientCPUMS)
		}
		if len(rep.Traces) != 5 {
			t.Fatalf("%d traces, want 5", len(rep.Traces))
		}
		for _, tr := range rep.Traces {
			seen := map[string]bool{}
			for _, st := range tr.Steps {
				seen[st.Name] = true
			}
			for _, name := range []string{"offer", "worker-hello", "answer applied", "worker candidate", "ice connected", "dtls connected", "connected", "open"} {
				if !seen[name] {
					t.Errorf("session %d: no %q step in %+v", tr.Session, name, tr.Steps)
				}
			}
		}
	})

	t.Run("no nudge", func(t *testing.T) {
		r := geckohost(t, "bench", "--url", url, "--token", secret, "-n", "3", "--messages", "1", "--loopback", "--no-nudge", "--trace", "--json")
		wantOK(t, r)
		rep := decodeBench(t, r)
		if !rep.NoNudge || rep.OK != 3 || len(rep.Traces) != 3 {
			t.Fatalf("report %+v", rep)
		}
		for _, tr := range rep.Traces {
			for _, st := range tr.Steps {
				if st.Name == "nudge" {
					t.Errorf("session %d nudged with --no-nudge: %+v", tr.Session, tr.Steps)
				}
			}
		}
		r = geckohost(t, "bench", "--url", url, "--token", secret, "-n", "1", "--messages", "0", "--loopback", "--no-nudge")
		wantOK(t, r)
		if !strings.Contains(r.stdout, "a plain pion client (--no-nudge)") {
			t.Errorf("table does not name the client:\n%s", r.stdout)
		}
	})

	t.Run("table hold env", func(t *testing.T) {
		t.Setenv("GECKOHOST_URL", url)
		t.Setenv("GECKOHOST_TOKEN", secret)
		t.Setenv("GECKOHOST_BENCH_LOOPBACK", "true")
		r := geckohost(t, "bench", "-n", "3", "-c", "3", "--messages", "2", "--hold", "--trace")
		wantOK(t, r)
		for _, w := range []string{"3 ok, 0 failed", "held open", "bench's own CPU: ", "steps (ms since the hello):", "session 2, open ", "answer (hello → worker-hello)", "open (hello → data channel open)",
			"echo round trip", "p50 ≤ 15ms", "errors: none", "ws://" + addr + "/"} {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("table lacks %q:\n%s", w, r.stdout)
			}
		}
		for _, l := range strings.Split(r.stdout, "\n") {
			if strings.HasPrefix(l, "echo round trip") && !strings.Contains(l, " 6 ") {
				t.Errorf("echo row %q: want 6 round trips", l)
			}
			if strings.HasSuffix(l, " ") {
				t.Errorf("trailing blanks in %q", l)
			}
		}
	})

	t.Run("bad token", func(t *testing.T) {
		r := geckohost(t, "bench", "--url", url, "--token", "gh_wrong", "-n", "4", "-c", "2", "--loopback", "--json")
		wantOneLineError(t, r, "4 of 4 sessions failed", "102 INVALID_TOKEN")
		rep := decodeBench(t, r)
		if rep.OK != 0 || rep.Failed != 4 || len(rep.Errors) != 1 || rep.Errors[0].Errno != 102 ||
			rep.Errors[0].Name != "INVALID_TOKEN" || rep.Errors[0].Count != 4 || rep.Answer.Count != 0 {
			t.Errorf("report %+v", rep)
		}
		r = geckohost(t, "bench", "--url", url, "--token", "gh_wrong", "-n", "2")
		wantOneLineError(t, r, "2 of 2 sessions failed", "102 INVALID_TOKEN")
		if !strings.Contains(r.stdout, "102    INVALID_TOKEN  2") {
			t.Errorf("table lacks the errno row:\n%s", r.stdout)
		}
	})

	t.Run("source not allowed", func(t *testing.T) {
		r := geckohost(t, "bench", "--url", url, "--token", secret, "-n", "1", "--source", "http://127.0.0.1:1/elsewhere.js", "--json")
		wantOneLineError(t, r, "1 of 1 sessions failed", "104 SOURCE_NOT_ALLOWED")
		if rep := decodeBench(t, r); len(rep.Errors) != 1 || rep.Errors[0].Errno != 104 {
			t.Errorf("errors %+v", rep.Errors)
		}
	})
}

// TestBenchUnreachable: sessions that fail before any worker-error count
// as errno 0 ("other") with their reason.
func TestBenchUnreachable(t *testing.T) {
	leaktest.Check(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // a port nothing listens on
	r := geckohost(t, "bench", "--url", "http://"+addr+"/", "--token", "x", "-n", "3", "-c", "2", "--json")
	wantOneLineError(t, r, "3 of 3 sessions failed", "connection refused")
	rep := decodeBench(t, r)
	if rep.URL != "ws://"+addr+"/" || rep.Source != "http://"+addr+"/workers/echo.js" || rep.Started != 3 ||
		len(rep.Errors) != 1 || rep.Errors[0].Errno != 0 || rep.Errors[0].Name != "other" || rep.Errors[0].Count != 3 {
		t.Errorf("report %+v", rep)
	}
}

func TestBenchFlagErrors(t *testing.T) {
	leaktest.Check(t)
	t.Setenv("GECKOHOST_TOKEN", "")
	for _, c := range []struct {
		args []string
		env  [2]string
		want []string
	}{
		{[]string{"-n", "5"}, [2]string{}, []string{"--token", "required", "GECKOHOST_TOKEN"}},
		{[]string{"--token", "x", "-n", "0"}, [2]string{}, []string{"--sessions 0", "1 or more"}},
		{[]string{"--token", "x", "--sessions", "-3"}, [2]string{}, []string{"--sessions -3"}},
		{[]string{"--token", "x", "-c", "0"}, [2]string{}, []string{"--concurrency 0", "1 or more"}},
		{[]string{"--token", "x", "--messages", "-1"}, [2]string{}, []string{"--messages -1"}},
		{[]string{"--token", "x", "-n", "many"}, [2]string{}, []string{"many"}},
		{[]string{"--token", "x", "--url", "ftp://127.0.0.1/"}, [2]string{}, []string{"--url", "ws://"}},
		{[]string{"--token", "x", "--url", "ws:///"}, [2]string{}, []string{"--url", "no host"}},
		{[]string{"--token", "x", "--url", "ws://[::1"}, [2]string{}, []string{"--url"}},
		{[]string{"--token", "x", "extra"}, [2]string{}, []string{"extra"}},
		{[]string{"--token", "x", "--nope"}, [2]string{}, []string{"-nope"}},
		{[]string{"--token", "x"}, [2]string{"GECKOHOST_BENCH_SESSIONS", "0"}, []string{"--sessions 0"}},
		{[]string{"--token", "x"}, [2]string{"GECKOHOST_BENCH_CONCURRENCY", "-1"}, []string{"--concurrency -1"}},
		{nil, [2]string{"GECKOHOST_TOKEN", ""}, []string{"--token"}},
	} {
		t.Run(strings.Join(append(c.args, c.env[:]...), " "), func(t *testing.T) {
			if c.env[0] != "" {
				t.Setenv(c.env[0], c.env[1])
			}
			wantFail(t, geckohost(t, append([]string{"bench"}, c.args...)...), c.want...)
		})
	}
	r := geckohost(t, "bench", "--help")
	for _, f := range []string{"--url", "--token", "--source", "--sessions", "-n", "--concurrency", "-c", "--messages", "--loopback",
		"--hold", "--json", "GECKOHOST_TOKEN", "GECKOHOST_URL", "ws://127.0.0.1:8765/"} {
		if !strings.Contains(r.stdout, f) {
			t.Errorf("bench --help lacks %s", f)
		}
	}
}
