package e2e_test

import (
	"context"
	"encoding/json"
	"net/http"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/gecko"
	"github.com/geckohost/geckohost/host"
	"github.com/geckohost/geckohost/host/client"
)

// poolBrowsers is serve's wiring of the pool into host's /status and
// /metrics (serve.go's poolBrowsers; main cannot be imported).
func poolBrowsers(pool enginePool) func(bool) []host.BrowserStatus {
	return func(memory bool) []host.BrowserStatus {
		var out []host.BrowserStatus
		for _, b := range pool.Slots() {
			bs := host.BrowserStatus{Index: b.Index, PID: b.PID, State: b.State, Workers: b.Workers, Capacity: b.Capacity, Restarts: b.Restarts,
				Contents: contentStatus(b), ContentCrashes: b.ContentCrashes, LimitKills: b.LimitKills}
			if memory && b.PID > 0 {
				bs.PSSBytes, _ = gecko.GroupPSS(b.PID)
			}
			out = append(out, bs)
		}
		return out
	}
}

// getStatus reads the stack's /status.
func getStatus(ctx context.Context, t *testing.T, s *stack) host.Status {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.httpURL+"status", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /status: %v", err)
	}
	defer res.Body.Close()
	var st host.Status
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		t.Fatalf("GET /status: %v", err)
	}
	return st
}

// getMetrics scrapes the stack's /metrics.
func getMetrics(ctx context.Context, t *testing.T, s *stack) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.httpURL+"metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer res.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// value is a metric's value (a histogram's count), the first whose
// labels include the name, value pairs given; -1 when there is none.
func value(mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	mf := mfs[name]
	if mf == nil {
		return -1
	}
next:
	for _, m := range mf.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			ok := false
			for _, lp := range m.GetLabel() {
				ok = ok || lp.GetName() == labels[i] && lp.GetValue() == labels[i+1]
			}
			if !ok {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// TestMetricsAndStatus: after real sessions (one connected, one 102) the
// counters and histograms moved by exactly those, and /status shows the
// real browser with its process tree's memory.
func TestMetricsAndStatus(t *testing.T) {
	forShared(t, func(t *testing.T, s *stack) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		defer http.DefaultClient.CloseIdleConnections()
		before := getMetrics(ctx, t, s)
		sess, err := dial(ctx, t, s, s.tokenA, "/echo.js")
		if err != nil {
			t.Fatal(err)
		}
		defer closeSession(t, sess)
		echo(ctx, t, sess, "metrics")
		if _, err := dial(ctx, t, s, "gh_nobody", "/echo.js"); !isErrno(err, engine.InvalidToken) {
			t.Fatalf("unknown token: %v, want 102", err)
		}
		var after map[string]*dto.MetricFamily
		for {
			after = getMetrics(ctx, t, s)
			if value(after, "geckohost_sessions_total", "result", "INVALID_TOKEN") > value(before, "geckohost_sessions_total", "result", "INVALID_TOKEN") {
				break // the 102's session goroutine has ended
			}
			select {
			case <-ctx.Done():
				t.Fatal("the 102 was not counted")
			case <-time.After(20 * time.Millisecond):
			}
		}
		delta := func(name string, labels ...string) float64 {
			return value(after, name, labels...) - value(before, name, labels...)
		}
		for _, c := range []struct {
			name   string
			labels []string
			want   float64
		}{
			{"geckohost_sessions_total", []string{"result", "ok"}, 1},
			{"geckohost_sessions_total", []string{"result", "INVALID_TOKEN"}, 1},
			{"geckohost_sessions_total", []string{"result", "NO_GECKO_AVAILABLE"}, 0},
			{"geckohost_auth_failures_total", []string{"reason", "unknown"}, 1},
			{"geckohost_session_answer_seconds", nil, 1},
			{"geckohost_session_connect_seconds", nil, 1},
			{"geckohost_queue_wait_seconds", nil, 0},
			{"geckohost_browser_restarts_total", nil, 0},
		} {
			if got := delta(c.name, c.labels...); got != c.want {
				t.Errorf("%s%v went up by %v, want %v", c.name, c.labels, got, c.want)
			}
		}
		for _, c := range []struct {
			name   string
			labels []string
			ok     func(float64) bool
		}{
			{"geckohost_sessions_active", []string{"state", "connected"}, func(v float64) bool { return v >= 1 }},
			{"geckohost_sessions_active", []string{"state", "negotiating"}, func(v float64) bool { return v == 0 }},
			{"geckohost_queue_depth", nil, func(v float64) bool { return v == 0 }},
			{"geckohost_browsers", []string{"state", "running"}, func(v float64) bool { return v == 1 }},
			{"geckohost_browsers", []string{"state", "starting"}, func(v float64) bool { return v == 0 }},
			{"geckohost_workers", nil, func(v float64) bool { return v >= 1 }},
			{"geckohost_worker_capacity", nil, func(v float64) bool { return v == 150 }},
			{"go_goroutines", nil, func(v float64) bool { return v > 0 }},
			{"process_resident_memory_bytes", nil, func(v float64) bool { return v > 0 }},
		} {
			if v := value(after, c.name, c.labels...); !c.ok(v) {
				t.Errorf("%s%v = %v", c.name, c.labels, v)
			}
		}

		st := getStatus(ctx, t, s)
		bs := s.pool.Browsers()
		t.Logf("status: %+v", st)
		if len(st.Browsers) != 1 || len(bs) != 1 {
			t.Fatalf("status browsers %+v, pool %+v", st.Browsers, bs)
		}
		b := st.Browsers[0]
		if b.PID != bs[0].PID || b.State != host.BrowserRunning || b.Workers < 1 || b.Capacity != 150 || b.PSSBytes < 100<<20 {
			t.Errorf("browser %+v (pool %+v): want its pid, running, ≥ 1 worker, 150, PSS ≥ 100 MiB", b, bs[0])
		}
		if !st.Ready || st.Version != "dev" || st.Uptime <= 0 || st.Queue.Size != host.DefaultQueueSize || st.Sessions.Connected < 1 {
			t.Errorf("status %+v", st)
		}
	})
}

// TestQueueRealPool uses a stack of its own, 2 workers at most: a third
// hello waits and connects when a held session ends; then, with two
// hellos queued, Firefox is killed with SIGKILL: the queued hellos connect
// once it has restarted (the held sessions end "browser-died").
func TestQueueRealPool(t *testing.T) {
	forEngines(t, func(t *testing.T, e engineKind) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		s := ownStackWith(t, ctx, e, gecko.PoolOptions{MaxWorkersPerBrowser: 2, Warm: 1, RecycleAfter: -1},
			func(o *host.Options) { o.QueueTimeout = 25 * time.Second })
		defer http.DefaultClient.CloseIdleConnections()
		waitBrowsers(ctx, t, s, "warm", func(bs []gecko.BrowserInfo) bool { return len(bs) == 1 && bs[0].Warm >= 1 })

		open := func(token string) *client.Session {
			t.Helper()
			sess, err := dial(ctx, t, s, token, "/echo.js")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sess.Close() })
			return sess
		}
		type dialed struct {
			sess *client.Session
			err  error
		}
		queued := func(token string) <-chan dialed {
			ch := make(chan dialed, 1)
			go func() {
				sess, err := dial(ctx, t, s, token, "/echo.js")
				ch <- dialed{sess, err}
			}()
			return ch
		}
		waitDepth := func(n int) {
			t.Helper()
			for {
				st := getStatus(ctx, t, s)
				if st.Queue.Depth == n {
					return
				}
				select {
				case <-ctx.Done():
					t.Fatalf("queue depth %d, want %d", st.Queue.Depth, n)
				case <-time.After(20 * time.Millisecond):
				}
			}
		}
		connected := func(ch <-chan dialed, what string) *client.Session {
			t.Helper()
			select {
			case d := <-ch:
				if d.err != nil {
					t.Fatalf("%s: %v", what, d.err)
				}
				t.Cleanup(func() { _ = d.sess.Close() })
				echo(ctx, t, d.sess, what)
				return d.sess
			case <-ctx.Done():
				t.Fatalf("%s: not connected", what)
			}
			return nil
		}

		a1, a2 := open(s.tokenA), open(s.tokenA)
		third := queued(s.tokenB)
		waitDepth(1)
		closeSession(t, a1)
		t0 := time.Now()
		b3 := connected(third, "third")
		t.Logf("the queued hello connected %v after a place was freed", time.Since(t0))
		echo(ctx, t, a2, "still there")

		// Two more wait; Firefox is killed.
		q1, q2 := queued(s.tokenA), queued(s.tokenB)
		waitDepth(2)
		pid := s.pool.Browsers()[0].PID
		killed := time.Now()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		connected(q1, "queued during the restart (a)")
		connected(q2, "queued during the restart (b)")
		t.Logf("both queued hellos connected %v after the kill", time.Since(killed))
		waitSession(ctx, t, s, a2.WorkerID, "browser-died")
		waitSession(ctx, t, s, b3.WorkerID, "browser-died")

		st := getStatus(ctx, t, s)
		if len(st.Browsers) != 1 || st.Browsers[0].Restarts != 1 || st.Browsers[0].PID == pid || st.Queue.Depth != 0 {
			t.Errorf("after the restart: %+v", st)
		}
		mfs := getMetrics(ctx, t, s)
		for _, c := range []struct {
			name string
			want float64
		}{{"geckohost_browser_restarts_total", 1}, {"geckohost_queue_wait_seconds", 3}, {"geckohost_queue_depth", 0}} {
			if v := value(mfs, c.name); v != c.want {
				t.Errorf("%s = %v, want %v", c.name, v, c.want)
			}
		}
		if v := value(mfs, "geckohost_sessions_total", "result", "GECKO_CRASHED"); v != 0 {
			t.Errorf("%v sessions failed with 303; the queued ones must not", v)
		}
	})
}

// contentStatus is host's view of a browser's content processes.
func contentStatus(b gecko.BrowserInfo) []host.ContentStatus {
	var out []host.ContentStatus
	for _, c := range b.Contents {
		out = append(out, host.ContentStatus{PID: c.PID, Token: c.Token, UserContext: c.UserContext, MemoryBytes: c.Memory,
			MemoryLimitBytes: c.MemoryLimit, CPUSeconds: c.CPU.Seconds(), Niced: c.Niced})
	}
	return out
}
