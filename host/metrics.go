package host

import (
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/geckohost/geckohost/engine"
)

// The metrics' label values. Labels never hold a token, a source URL or an
// address: only these bounded sets.
const (
	// resultOK is the sessions_total result of a session that connected.
	resultOK = "ok"
	// resultClientLeft is the result of a session whose client left after
	// its hello and before it was connected, with no error.
	resultClientLeft = "client-left"
)

// Auth failure reasons (geckohost_auth_failures_total{reason}).
const (
	authMalformed = "malformed" // 101: no "Bearer <token>"
	authUnknown   = "unknown"   // 102: no such token
	authRevoked   = "revoked"   // 102
	authExpired   = "expired"   // 102
	authError     = "error"     // 102: the store failed
)

// Latency buckets, in seconds: an answer takes 10-50 ms from a warm page,
// a page load about 0.5 s, a browser start 2-3 s.
var (
	latencyBuckets = []float64{0.005, 0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
	queueBuckets   = []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
)

// containEnds are the end reasons geckohost_worker_ends_total counts.
var containEnds = []engine.EndReason{engine.EndContentCrashed, engine.EndMemoryLimit, engine.EndCPULimit, engine.EndLifetime}

// metrics is a Server's Prometheus registry (one per Server, so that
// servers in one process do not share counters) and the metrics host
// updates itself; the rest are read when scraped.
type metrics struct {
	reg            *prometheus.Registry
	h              http.Handler
	sessions       *prometheus.CounterVec // result
	authFailures   *prometheus.CounterVec // reason
	answerSeconds  prometheus.Histogram
	connectSeconds prometheus.Histogram
	queueWait      prometheus.Histogram
	// workerEnds counts the ends of workers the engine ended for
	// containment (a crashed content process, a resource limit).
	workerEnds *prometheus.CounterVec // reason

	// Sessions past their hello, by state.
	negotiating atomic.Int64
	connected   atomic.Int64
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "geckohost_sessions_total",
			Help: `Signaling sessions by how their negotiation ended: "ok" (connected), the errno name of the worker-error sent (such as "INVALID_TOKEN"), or "client-left" (the client closed its WebSocket after its hello). A WebSocket closed before any frame is not counted.`,
		}, []string{"result"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "geckohost_auth_failures_total",
			Help: `Hellos refused for their authorization (101, reason "malformed") or token (102: "unknown", "revoked", "expired", "error").`,
		}, []string{"reason"}),
		workerEnds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "geckohost_worker_ends_total",
			Help: `Sessions (connected or not) whose worker the engine ended for containment: "content-crashed" (its browser content process died), "memory-limit", "cpu-limit", "lifetime".`,
		}, []string{"reason"}),
		answerSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "geckohost_session_answer_seconds",
			Help:    "Time from the client-hello to the worker's answer (worker-hello sent), server side, queue wait included.",
			Buckets: latencyBuckets,
		}),
		connectSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "geckohost_session_connect_seconds",
			Help:    "Time from the client-hello to connected (the worker's data channel open), server side, queue wait included.",
			Buckets: latencyBuckets,
		}),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "geckohost_queue_wait_seconds",
			Help:    "Time hellos waited in the queue for a browser, whatever then happened (started, timed out, client left).",
			Buckets: queueBuckets,
		}),
	}
	// Every label value is there from the start, at 0.
	m.sessions.WithLabelValues(resultOK)
	m.sessions.WithLabelValues(resultClientLeft)
	for _, e := range engine.Errnos() {
		m.sessions.WithLabelValues(e.String())
	}
	for _, r := range containEnds {
		m.workerEnds.WithLabelValues(string(r))
	}
	for _, r := range []string{authMalformed, authUnknown, authRevoked, authExpired, authError} {
		m.authFailures.WithLabelValues(r)
	}
	active := func(state string, v *atomic.Int64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "geckohost_sessions_active",
			Help:        `Sessions past their hello: "negotiating" (queued included) until connected, then "connected" until the worker ends.`,
			ConstLabels: prometheus.Labels{"state": state},
		}, func() float64 { return float64(v.Load()) })
	}
	build := s.opts.Build
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.sessions, m.authFailures, m.workerEnds, m.answerSeconds, m.connectSeconds, m.queueWait,
		active(stateNegotiating, &m.negotiating),
		active(stateConnected, &m.connected),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "geckohost_queue_depth",
			Help: "Hellos waiting in the queue for a browser.",
		}, func() float64 { return float64(s.queue.depth()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "geckohost_build_info",
			Help:        "Always 1; the labels name the running build.",
			ConstLabels: prometheus.Labels{"version": build.Version, "commit": build.Commit},
		}, func() float64 { return 1 }),
	)
	m.reg.MustRegister(recordCollector{s: s})
	if s.opts.Browsers != nil {
		m.reg.MustRegister(&browserCollector{browsers: s.opts.Browsers})
	}
	m.h = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return m
}

// handler serves the registry in the Prometheus text format.
func (m *metrics) handler() http.Handler {
	return m.h
}

// MetricsHandler serves the server's metrics in the Prometheus text format:
// what ServeHTTP serves on /metrics, for mounting on another address
// (Options.HideMetrics).
func (s *Server) MetricsHandler() http.Handler { return s.metrics.handler() }

// The states geckohost_browsers{state} always reports (those of
// BrowserStatus.State).
var browserStates = []string{BrowserRunning, BrowserStarting, BrowserStandby, BrowserDraining}

var (
	browsersDesc = prometheus.NewDesc("geckohost_browsers",
		`Browser processes (slots without one: "starting"), by state.`, []string{"state"}, nil)
	restartsDesc = prometheus.NewDesc("geckohost_browser_restarts_total",
		"Times a browser died and was restarted.", nil, nil)
	workersDesc = prometheus.NewDesc("geckohost_workers",
		"Live workers (starting, negotiating or connected) in every browser.", nil, nil)
	contentsDesc = prometheus.NewDesc("geckohost_content_processes",
		"Content processes the engine watches (one per browser user context), by browser slot.", []string{"browser"}, nil)
	contentMemDesc = prometheus.NewDesc("geckohost_content_memory_bytes",
		"Anonymous resident memory of the watched content processes, by browser slot.", []string{"browser"}, nil)
	contentCrashesDesc = prometheus.NewDesc("geckohost_content_crashes_total",
		`Content processes that died by themselves ("crashed") or were killed for a limit ("limit"), in the running browsers.`, []string{"cause"}, nil)
	capacityDesc = prometheus.NewDesc("geckohost_worker_capacity",
		`Most workers the browsers that take new workers (state "running") can run together.`, nil, nil)
)

// browserCollector reads the engine's browsers when scraped.
type browserCollector struct {
	browsers func(memory bool) []BrowserStatus
}

// Describe implements prometheus.Collector.
func (c *browserCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- browsersDesc
	ch <- restartsDesc
	ch <- workersDesc
	ch <- capacityDesc
	ch <- contentsDesc
	ch <- contentMemDesc
	ch <- contentCrashesDesc
}

// Collect implements prometheus.Collector.
func (c *browserCollector) Collect(ch chan<- prometheus.Metric) {
	bs := c.browsers(false)
	byState := map[string]int{}
	slotRestarts := map[int]int{} // a slot's entries (current, standby, draining) share its count
	restarts, workers, capacity := 0, 0, 0
	for _, b := range bs {
		byState[b.State]++
		slotRestarts[b.Index] = max(slotRestarts[b.Index], b.Restarts)
		workers += b.Workers
		if b.State == BrowserRunning {
			capacity += b.Capacity
		}
	}
	for _, n := range slotRestarts {
		restarts += n
	}
	for _, st := range browserStates {
		ch <- prometheus.MustNewConstMetric(browsersDesc, prometheus.GaugeValue, float64(byState[st]), st)
	}
	ch <- prometheus.MustNewConstMetric(restartsDesc, prometheus.CounterValue, float64(restarts))
	ch <- prometheus.MustNewConstMetric(workersDesc, prometheus.GaugeValue, float64(workers))
	ch <- prometheus.MustNewConstMetric(capacityDesc, prometheus.GaugeValue, float64(capacity))
	collectContents(ch, bs)
}

// collectContents reports the browsers' content processes.
func collectContents(ch chan<- prometheus.Metric, bs []BrowserStatus) {
	procs, mem := map[int]int{}, map[int]int64{}
	var crashed, killed int64
	for _, b := range bs {
		procs[b.Index] += len(b.Contents)
		for _, c := range b.Contents {
			mem[b.Index] += c.MemoryBytes
		}
		crashed += b.ContentCrashes
		killed += b.LimitKills
	}
	for i, n := range procs {
		idx := strconv.Itoa(i)
		ch <- prometheus.MustNewConstMetric(contentsDesc, prometheus.GaugeValue, float64(n), idx)
		ch <- prometheus.MustNewConstMetric(contentMemDesc, prometheus.GaugeValue, float64(mem[i]), idx)
	}
	ch <- prometheus.MustNewConstMetric(contentCrashesDesc, prometheus.CounterValue, float64(crashed), "crashed")
	ch <- prometheus.MustNewConstMetric(contentCrashesDesc, prometheus.CounterValue, float64(killed), "limit")
}

// The session's side of the metrics. Each is called by the session's
// goroutine at its transitions.

// setActive moves the session to state in geckohost_sessions_active ("":
// out of it).
func (se *session) setActive(state string) {
	m := se.s.metrics
	for _, d := range []struct {
		st    string
		delta int64
	}{{se.active, -1}, {state, 1}} {
		switch d.st {
		case stateNegotiating:
			m.negotiating.Add(d.delta)
		case stateConnected:
			m.connected.Add(d.delta)
		}
	}
	se.active = state
}

// countAnswer observes hello → answer.
func (se *session) countAnswer() {
	se.s.metrics.answerSeconds.Observe(se.answerAt.Sub(se.helloAt).Seconds())
}

// countConnected observes hello → connected and counts the session "ok".
func (se *session) countConnected() {
	m := se.s.metrics
	m.connectSeconds.Observe(se.connectAt.Sub(se.helloAt).Seconds())
	m.sessions.WithLabelValues(resultOK).Inc()
	se.setActive(stateConnected)
}

// countEnd counts the result of a session that was not connected (one that
// got a hello or an errno) and takes it out of the active ones.
func (se *session) countEnd() {
	se.setActive("")
	if slices.Contains(containEnds, se.endReason) {
		se.s.metrics.workerEnds.WithLabelValues(string(se.endReason)).Inc()
	}
	if !se.connectAt.IsZero() {
		return // counted "ok" when it connected
	}
	switch {
	case se.errno != 0:
		se.s.metrics.sessions.WithLabelValues(se.errno.String()).Inc()
	case se.id != "":
		se.s.metrics.sessions.WithLabelValues(resultClientLeft).Inc()
	}
}

// authFailed counts a refused authorization or token.
func (s *Server) authFailed(reason string) {
	s.metrics.authFailures.WithLabelValues(reason).Inc()
}
