package host_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/host"
)

// scrape GETs url and parses the Prometheus text format.
func scrape(t *testing.T, h *harness, url string) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequestWithContext(h.ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("GET %s: %s %s", url, res.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return mfs
}

// metricValue is the value of the family's metric whose labels include
// labels (name, value pairs): a counter's or gauge's value, a histogram's
// sample count. ok is false when there is no such metric.
func metricValue(mfs map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// wantMetric fails unless the metric has the value.
func wantMetric(t *testing.T, mfs map[string]*dto.MetricFamily, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := metricValue(mfs, name, labels...)
	if !ok {
		t.Errorf("no metric %s%v", name, labels)
		return
	}
	if got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

// fakeBrowsers is an Options.Browsers: a running browser with 3 of 10
// workers and two restarts, a draining one of the same slot, and a slot
// starting.
func fakeBrowsers(memory bool) []host.BrowserStatus {
	pss := int64(0)
	if memory {
		pss = 400 << 20
	}
	return []host.BrowserStatus{
		{Index: 0, PID: 100, State: host.BrowserRunning, Workers: 3, Capacity: 10, Restarts: 2, PSSBytes: pss},
		{Index: 1, State: host.BrowserStarting, Capacity: 10, Restarts: 1},
		{Index: 0, PID: 90, State: host.BrowserDraining, Workers: 1, Capacity: 10, Restarts: 2, PSSBytes: pss},
	}
}

func TestMetrics(t *testing.T) {
	h := newHarness(t, nil, func(o *host.Options) {
		o.Browsers = fakeBrowsers
		o.Build = host.BuildInfo{Version: "v1.2.3", Commit: "abc"}
	})
	secret := h.token(domain.NewToken{})
	h.hello(secret).connected()
	w := h.nextWorker()
	h.hello("gh_nobody").expectError(engine.InvalidToken, "unknown token")
	c := h.dial(nil)
	c.send(hello("Basic x", h.demo))
	c.expectError(engine.InvalidAuthorization, "Bearer")

	// A session is counted when its goroutine ends, just after the close.
	eventually(t, h.ctx, "the sessions ended", func() error {
		mfs := scrape(t, h, h.hs.URL+"/metrics")
		if v, _ := metricValue(mfs, "geckohost_sessions_active", "state", "negotiating"); v != 0 {
			return fmt.Errorf("negotiating = %v", v)
		}
		return nil
	})
	mfs := scrape(t, h, h.hs.URL+"/metrics")
	wantMetric(t, mfs, 1, "geckohost_sessions_total", "result", "ok")
	wantMetric(t, mfs, 1, "geckohost_sessions_total", "result", "INVALID_TOKEN")
	wantMetric(t, mfs, 1, "geckohost_sessions_total", "result", "INVALID_AUTHORIZATION")
	wantMetric(t, mfs, 0, "geckohost_sessions_total", "result", "NO_GECKO_AVAILABLE")
	wantMetric(t, mfs, 0, "geckohost_sessions_total", "result", "client-left")
	wantMetric(t, mfs, 1, "geckohost_auth_failures_total", "reason", "unknown")
	wantMetric(t, mfs, 1, "geckohost_auth_failures_total", "reason", "malformed")
	wantMetric(t, mfs, 0, "geckohost_auth_failures_total", "reason", "revoked")
	wantMetric(t, mfs, 1, "geckohost_session_answer_seconds")
	wantMetric(t, mfs, 1, "geckohost_session_connect_seconds")
	wantMetric(t, mfs, 0, "geckohost_queue_wait_seconds")
	wantMetric(t, mfs, 0, "geckohost_queue_depth")
	wantMetric(t, mfs, 1, "geckohost_sessions_active", "state", "connected")
	wantMetric(t, mfs, 0, "geckohost_sessions_active", "state", "negotiating")
	wantMetric(t, mfs, 1, "geckohost_browsers", "state", "running")
	wantMetric(t, mfs, 1, "geckohost_browsers", "state", "starting")
	wantMetric(t, mfs, 1, "geckohost_browsers", "state", "draining")
	wantMetric(t, mfs, 0, "geckohost_browsers", "state", "standby")
	wantMetric(t, mfs, 3, "geckohost_browser_restarts_total")
	wantMetric(t, mfs, 4, "geckohost_workers")
	wantMetric(t, mfs, 10, "geckohost_worker_capacity")
	wantMetric(t, mfs, 1, "geckohost_build_info", "version", "v1.2.3", "commit", "abc")
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if mfs[name] == nil {
			t.Errorf("no %s (Go and process collectors)", name)
		}
	}
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == secret || lp.GetValue() == h.demo || lp.GetValue() == defaultTokenName {
					t.Errorf("%s has label %s=%q", name, lp.GetName(), lp.GetValue())
				}
			}
		}
	}

	// The worker ends: not active any more, still one "ok".
	h.emit(w, engine.Event{Kind: engine.EventEnded, Reason: engine.EndIdle})
	h.session(w.req.WorkerID, ended)
	mfs = scrape(t, h, h.hs.URL+"/metrics")
	wantMetric(t, mfs, 0, "geckohost_sessions_active", "state", "connected")
	wantMetric(t, mfs, 1, "geckohost_sessions_total", "result", "ok")
}

// TestMetricsQueue: a hello that waited is observed in queue_wait_seconds
// and counted in queue_depth while it waits.
func TestMetricsQueue(t *testing.T) {
	h, eng := queueHarness(t, 1, nil)
	secret := h.token(domain.NewToken{})
	eng.setDown(true)
	c := h.hello(secret)
	h.waitDepth(1)
	mfs := scrape(t, h, h.hs.URL+"/metrics")
	wantMetric(t, mfs, 1, "geckohost_queue_depth")
	wantMetric(t, mfs, 1, "geckohost_sessions_active", "state", "negotiating")
	eng.setDown(false)
	c.connected()
	mfs = scrape(t, h, h.hs.URL+"/metrics")
	wantMetric(t, mfs, 0, "geckohost_queue_depth")
	wantMetric(t, mfs, 1, "geckohost_queue_wait_seconds")
	// No Options.Browsers: no browser metrics.
	if mfs["geckohost_browsers"] != nil {
		t.Errorf("geckohost_browsers without Options.Browsers")
	}
}

// TestHideMetrics: /metrics is 404 on the server, served by
// MetricsHandler elsewhere.
func TestHideMetrics(t *testing.T) {
	h := newHarness(t, nil, func(o *host.Options) { o.HideMetrics = true })
	res, err := http.Get(h.hs.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("/metrics with HideMetrics: %s", res.Status)
	}
	ms := httptest.NewServer(h.srv.MetricsHandler())
	defer ms.Close()
	mfs := scrape(t, h, ms.URL)
	wantMetric(t, mfs, 0, "geckohost_queue_depth")
}

func TestStatus(t *testing.T) {
	h := newHarness(t, nil, func(o *host.Options) {
		o.Browsers = fakeBrowsers
		o.Build = host.BuildInfo{Version: "v1.2.3", Commit: "abc", Date: "2026-01-02T03:04:05Z"}
		o.QueueTimeout = 3 * time.Second
	})
	secret := h.token(domain.NewToken{})
	h.hello(secret).connected()
	st := h.status()
	t.Logf("%+v", st)
	if st.Version != "v1.2.3" || st.Commit != "abc" || st.BuildDate != "2026-01-02T03:04:05Z" || st.Uptime <= 0 || st.Started.IsZero() {
		t.Errorf("build and uptime: %+v", st)
	}
	if !st.Ready || st.NotReady != "" {
		t.Errorf("ready %v %q", st.Ready, st.NotReady)
	}
	if len(st.Browsers) != 3 || st.Browsers[0].PID != 100 || st.Browsers[0].PSSBytes != 400<<20 || st.Workers != 4 || st.Capacity != 10 {
		t.Errorf("browsers: %+v, workers %d, capacity %d", st.Browsers, st.Workers, st.Capacity)
	}
	if st.Queue.Size != host.DefaultQueueSize || st.Queue.Timeout != 3 || st.Queue.Depth != 0 {
		t.Errorf("queue %+v", st.Queue)
	}
	if st.Sessions.Connected != 1 || st.Sessions.Negotiating != 0 {
		t.Errorf("sessions %+v", st.Sessions)
	}
	res, err := http.Post(h.hs.URL+"/status", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /status: %s", res.Status)
	}
	// Without Options.Browsers: an empty list, not null; the engine not
	// ready shows.
	h2 := newHarness(t, nil, nil)
	h2.eng.ReadyErr = errAny
	st = h2.status()
	if st.Browsers == nil || len(st.Browsers) != 0 || st.Version != "dev" || st.Ready || st.NotReady == "" {
		t.Errorf("status %+v", st)
	}
}
