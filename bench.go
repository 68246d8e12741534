package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/pion/webrtc/v4"
	"github.com/urfave/cli/v2"

	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/host/client"
)

const (
	// benchDialTimeout bounds one session's negotiation: longer than the
	// server's own limits (30 s to the answer, 30 s more to connected), so
	// that a slow server reports its 302 rather than a client timeout.
	benchDialTimeout = 70 * time.Second
	// benchEchoTimeout bounds one echo round trip.
	benchEchoTimeout = 10 * time.Second
	// benchReasonMax caps the length of an error reason in the report.
	benchReasonMax = 200
)

// benchConfig is what `geckohost bench` runs with (see benchCommand for the
// flags and defaults).
type benchConfig struct {
	// URL is the signaling WebSocket (ws:// or wss://).
	URL string
	// Token is the bearer token; required.
	Token string
	// Source is the worker URL; it must echo every text message.
	Source string
	// Sessions (≥ 1) are opened, Concurrency (≥ 1) at a time.
	Sessions, Concurrency int
	// Messages is the number of echo round trips per session (≥ 0).
	Messages int
	// Loopback restricts the client to loopback candidates.
	Loopback bool
	// Hold keeps every session open until all have run.
	Hold bool
	// JSON prints the report as JSON.
	JSON bool
	// MetricsURL, when set (--metrics), is the server's /metrics: its
	// histograms are read before and after the run and reported beside
	// the client's figures.
	MetricsURL string
	// Trace prints the steps of every session's negotiation.
	Trace bool
	// HTTPClient, when set (--ca), makes every request to the server.
	HTTPClient *http.Client
}

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure a running geckohost serve: negotiation times and echo round trips",
		UsageText: "geckohost bench --token TOKEN [--url ws://127.0.0.1:8765/] [-n 20] [-c 1] [--messages 10] [--loopback] [--hold] [--metrics [--metrics-url URL]] [--trace] [--json] [--ca FILE]\n\n" +
			"Opens N sessions to the echo worker (C at a time), sends MESSAGES text round trips on each,\n" +
			"closes them and prints count, p50, p90, p95, p99 and max of: hello → worker-hello (answer),\n" +
			"hello → connected, hello → data channel open (open) and the echo round trip, with the\n" +
			"failures by errno and the CPU time bench itself used; with --metrics, the server's own\n" +
			"histograms (GET /metrics before and after) beside them; with --trace, each session's steps.\n" +
			"The exit status is 1 when any session failed.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "url", Value: "ws://127.0.0.1:8765/", Usage: "signaling WebSocket `URL` of the server (ws://, wss://; http:// and https:// are read as ws:// and wss://)", EnvVars: []string{"GECKOHOST_URL"}},
			&cli.StringFlag{Name: "token", Usage: "bearer `TOKEN` (from geckohost token add); required", EnvVars: []string{"GECKOHOST_TOKEN"}},
			&cli.StringFlag{Name: "source", Usage: "worker `URL`; it must echo text messages (default: the server's bundled echo worker, <http form of --url>/workers/echo.js)", EnvVars: []string{"GECKOHOST_BENCH_SOURCE"}},
			&cli.IntFlag{Name: "sessions", Aliases: []string{"n"}, Value: 20, Usage: "open `N` sessions in all", EnvVars: []string{"GECKOHOST_BENCH_SESSIONS"}},
			&cli.IntFlag{Name: "concurrency", Aliases: []string{"c"}, Value: 1, Usage: "negotiate `C` sessions at a time", EnvVars: []string{"GECKOHOST_BENCH_CONCURRENCY"}},
			&cli.IntFlag{Name: "messages", Value: 10, Usage: "`M` echo round trips (text) per session; 0: none", EnvVars: []string{"GECKOHOST_BENCH_MESSAGES"}},
			&cli.BoolFlag{Name: "loopback", Usage: "gather loopback (127.0.0.1) ICE candidates only: for a server started with --ice-loopback", EnvVars: []string{"GECKOHOST_BENCH_LOOPBACK"}},
			&cli.BoolFlag{Name: "hold", Usage: "keep every session open until all have run (measures many live workers; the server must allow N at once)", EnvVars: []string{"GECKOHOST_BENCH_HOLD"}},
			&cli.BoolFlag{Name: "trace", Usage: "also print each session's negotiation steps (client side: answer, candidates, ICE, DTLS, data channel), in ms since its hello", EnvVars: []string{"GECKOHOST_BENCH_TRACE"}},
			&cli.BoolFlag{Name: "metrics", Usage: "also print the server's histograms (hello → answer, hello → connected, queue wait) over the run, read from its /metrics", EnvVars: []string{"GECKOHOST_BENCH_METRICS"}},
			&cli.StringFlag{Name: "metrics-url", Usage: "the server's metrics `URL` for --metrics (default: <http form of --url>/metrics; for serve --metrics-listen ADDRESS: http://ADDRESS/metrics)", EnvVars: []string{"GECKOHOST_BENCH_METRICS_URL"}},
			&cli.BoolFlag{Name: "json", Usage: "print JSON instead of a table", EnvVars: []string{"GECKOHOST_JSON"}},
			caFlag(),
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			cfg, err := benchConfigFrom(c)
			if err != nil {
				return err
			}
			return runBench(c.Context, cfg, c.App.Writer)
		},
	}
}

// benchConfigFrom builds and validates the bench configuration from flags.
func benchConfigFrom(c *cli.Context) (benchConfig, error) {
	cfg := benchConfig{
		URL:         c.String("url"),
		Token:       c.String("token"),
		Source:      c.String("source"),
		Sessions:    c.Int("sessions"),
		Concurrency: c.Int("concurrency"),
		Messages:    c.Int("messages"),
		Loopback:    c.Bool("loopback"),
		Hold:        c.Bool("hold"),
		JSON:        c.Bool("json"),
		Trace:       c.Bool("trace"),
	}
	ws, httpBase, err := benchURLs(cfg.URL)
	if err != nil {
		return benchConfig{}, err
	}
	if cfg.HTTPClient, err = caHTTPClient(c.String("ca")); err != nil {
		return benchConfig{}, err
	}
	cfg.URL = ws
	if cfg.Source == "" {
		cfg.Source = httpBase.JoinPath("workers", "echo.js").String()
	}
	if c.String("metrics-url") != "" && !c.Bool("metrics") {
		return benchConfig{}, errors.New("bench: --metrics-url needs --metrics")
	}
	if c.Bool("metrics") {
		cfg.MetricsURL = c.String("metrics-url")
		if cfg.MetricsURL == "" {
			cfg.MetricsURL = httpBase.JoinPath("metrics").String()
		}
	}
	return cfg, cfg.validate()
}

// benchURLs returns the WebSocket form of raw and its http(s) form with the
// query and fragment removed.
func benchURLs(raw string) (string, *url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", nil, fmt.Errorf("--url %q: %w", raw, err)
	}
	h := *u
	switch u.Scheme {
	case "ws", "http":
		u.Scheme, h.Scheme = "ws", "http"
	case "wss", "https":
		u.Scheme, h.Scheme = "wss", "https"
	default:
		return "", nil, fmt.Errorf("--url %q: want a ws:// or wss:// URL such as ws://127.0.0.1:8765/", raw)
	}
	if u.Host == "" {
		return "", nil, fmt.Errorf("--url %q: no host", raw)
	}
	h.RawQuery, h.Fragment, h.RawFragment = "", "", ""
	return u.String(), &h, nil
}

// validate checks the values flags cannot check by type.
func (cfg benchConfig) validate() error {
	if cfg.Token == "" {
		return errors.New("bench: --token TOKEN is required (or set GECKOHOST_TOKEN); create one with: geckohost token add --name NAME")
	}
	if cfg.Sessions < 1 {
		return fmt.Errorf("--sessions %d: want 1 or more", cfg.Sessions)
	}
	if cfg.Concurrency < 1 {
		return fmt.Errorf("--concurrency %d: want 1 or more", cfg.Concurrency)
	}
	if cfg.Messages < 0 {
		return fmt.Errorf("--messages %d: want 0 or more", cfg.Messages)
	}
	return nil
}

// benchSession is the outcome of one session.
type benchSession struct {
	started bool
	timings client.Timings
	steps   []client.Step
	rtts    []time.Duration
	err     error
	// held is the open session kept for --hold.
	held *client.Session
}

// benchStats summarises durations in milliseconds (all zero when Count is 0).
type benchStats struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// benchErrors counts the failed sessions of one errno (0: not a worker-error
// from the server, such as a refused connection or an echo timeout).
type benchErrors struct {
	Errno int    `json:"errno"`
	Name  string `json:"name"`
	Count int    `json:"count"`
	// Reason is the first failure's reason.
	Reason string `json:"reason"`
}

// benchReport is what bench prints (--json prints it as is).
type benchReport struct {
	URL         string        `json:"url"`
	Source      string        `json:"source"`
	Sessions    int           `json:"sessions"`
	Concurrency int           `json:"concurrency"`
	Messages    int           `json:"messages"`
	Loopback    bool          `json:"loopback"`
	Hold        bool          `json:"hold"`
	Started     int           `json:"started"`
	OK          int           `json:"ok"`
	Failed      int           `json:"failed"`
	Interrupted bool          `json:"interrupted"`
	WallMS      float64       `json:"wall_ms"`
	Answer      benchStats    `json:"answer"`    // hello → worker-hello
	Connected   benchStats    `json:"connected"` // hello → connected
	Open        benchStats    `json:"open"`      // hello → data channel open
	EchoRTT     benchStats    `json:"echo_rtt"`  // one text round trip
	Errors      []benchErrors `json:"errors"`
	// Server is the server's histograms over the run (--metrics): keys
	// "answer", "connected", "queue_wait".
	Server map[string]serverStats `json:"server,omitempty"`

	// ClientCPUMS is the CPU time bench itself used (its WebRTC, TLS and
	// JSON work shares the machine with the server's when both run on
	// it); -1 where it cannot be read.
	ClientCPUMS float64 `json:"client_cpu_ms"`
	// Traces are the sessions' steps (--trace).
	Traces []benchTrace `json:"traces,omitempty"`
}

// benchTrace is one session's negotiation steps.
type benchTrace struct {
	Session int         `json:"session"`
	OpenMS  float64     `json:"open_ms"`
	Steps   []benchStep `json:"steps"`
}

// benchStep is one step, in ms since the session's hello.
type benchStep struct {
	Name   string  `json:"name"`
	AtMS   float64 `json:"at_ms"`
	Detail string  `json:"detail,omitempty"`
}

// runBench runs the sessions, writes the report to stdout and returns an
// error when any session failed or ctx ended first.
func runBench(ctx context.Context, cfg benchConfig, stdout io.Writer) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	var before map[string]histogram
	if cfg.MetricsURL != "" {
		var err error
		if before, err = scrapeHistograms(ctx, cfg.HTTPClient, cfg.MetricsURL); err != nil {
			return err
		}
	}
	results := make([]benchSession, cfg.Sessions)
	cpu0, cpuOK := processCPU()
	start := time.Now()

	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(cfg.Concurrency, cfg.Sessions) {
		wg.Go(func() {
			for i := range jobs {
				results[i] = benchOne(ctx, cfg, i)
			}
		})
	}
feed:
	for i := range cfg.Sessions {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	for i := range results {
		if s := results[i].held; s != nil {
			if err := s.Close(); err != nil && results[i].err == nil {
				results[i].err = fmt.Errorf("close session: %w", err)
			}
			results[i].held = nil
		}
	}
	wall := time.Since(start)
	cpu1, _ := processCPU()

	rep := benchSummary(cfg, results, wall)
	rep.ClientCPUMS = -1
	if cpuOK {
		rep.ClientCPUMS = msf(cpu1 - cpu0)
	}
	rep.Interrupted = ctx.Err() != nil
	if cfg.MetricsURL != "" {
		// The last sessions' records are written as they end; the
		// histograms are observed before that, at answer and connected.
		after, err := scrapeHistograms(context.WithoutCancel(ctx), cfg.HTTPClient, cfg.MetricsURL)
		if err != nil {
			return err
		}
		rep.Server = serverReport(before, after)
	}
	var err error
	if cfg.JSON {
		err = writeJSON(stdout, rep)
	} else {
		err = writeBenchTable(stdout, rep)
	}
	if err != nil {
		return err
	}
	switch {
	case rep.Interrupted:
		return fmt.Errorf("bench: interrupted after %d of %d sessions (%d failed)", rep.Started, rep.Sessions, rep.Failed)
	case rep.Failed > 0:
		e := rep.Errors[0]
		if e.Errno == 0 {
			return fmt.Errorf("bench: %d of %d sessions failed, %d with: %s", rep.Failed, rep.Started, e.Count, e.Reason)
		}
		return fmt.Errorf("bench: %d of %d sessions failed, %d with %d %s (%s)", rep.Failed, rep.Started, e.Count, e.Errno, e.Name, e.Reason)
	}
	return nil
}

// benchOne negotiates session i, runs its echo round trips and closes it
// (unless cfg.Hold).
func benchOne(ctx context.Context, cfg benchConfig, i int) benchSession {
	r := benchSession{started: true}
	dctx, cancel := context.WithTimeout(ctx, benchDialTimeout)
	s, err := client.Dial(dctx, cfg.URL, client.Options{Token: cfg.Token, Source: cfg.Source, Loopback: cfg.Loopback, Trace: cfg.Trace, HTTPClient: cfg.HTTPClient})
	cancel()
	if err != nil {
		r.err = err
		return r
	}
	r.timings = s.Timings
	r.steps = s.Steps
	r.rtts, r.err = benchEcho(ctx, s, i, cfg.Messages)
	if cfg.Hold && r.err == nil {
		r.held = s
		return r
	}
	if err := s.Close(); err != nil && r.err == nil {
		r.err = fmt.Errorf("close session: %w", err)
	}
	return r
}

// benchEcho sends n text messages on s one at a time and returns the round
// trip of each; the worker must send each back unchanged.
func benchEcho(ctx context.Context, s *client.Session, session, n int) ([]time.Duration, error) {
	if n == 0 {
		return nil, nil
	}
	// pion calls OnMessage on its own goroutine, which must never block:
	// replies beyond the buffer (a misbehaving worker) are dropped.
	got := make(chan string, n+1)
	closed := make(chan struct{})
	var closeOnce sync.Once
	s.Channel.OnMessage(func(m webrtc.DataChannelMessage) {
		select {
		case got <- string(m.Data):
		default:
		}
	})
	s.Channel.OnClose(func() { closeOnce.Do(func() { close(closed) }) })
	defer func() {
		s.Channel.OnMessage(func(webrtc.DataChannelMessage) {})
	}()

	rtts := make([]time.Duration, 0, n)
	for j := range n {
		msg := fmt.Sprintf("geckohost bench session %d message %d", session, j)
		t0 := time.Now()
		if err := s.Channel.SendText(msg); err != nil {
			return rtts, fmt.Errorf("echo %d: send: %w", j, err)
		}
		timer := time.NewTimer(benchEchoTimeout)
		select {
		case m := <-got:
			timer.Stop()
			if m != msg {
				return rtts, fmt.Errorf("echo %d: got %q, want %q (is the source an echo worker?)", j, benchClip(m, 60), msg)
			}
			rtts = append(rtts, time.Since(t0))
		case <-closed:
			timer.Stop()
			return rtts, fmt.Errorf("echo %d: data channel closed by the worker", j)
		case <-timer.C:
			return rtts, fmt.Errorf("echo %d: no reply within %v (is the source an echo worker?)", j, benchEchoTimeout)
		case <-ctx.Done():
			timer.Stop()
			return rtts, fmt.Errorf("echo %d: %w", j, ctx.Err())
		}
	}
	return rtts, nil
}

// benchSummary computes the report from the sessions' outcomes.
func benchSummary(cfg benchConfig, results []benchSession, wall time.Duration) benchReport {
	rep := benchReport{URL: cfg.URL, Source: cfg.Source, Sessions: cfg.Sessions, Concurrency: cfg.Concurrency,
		Messages: cfg.Messages, Loopback: cfg.Loopback, Hold: cfg.Hold, WallMS: msf(wall), Errors: []benchErrors{}}
	var answer, connected, open, rtts []time.Duration
	byErrno := map[int]int{} // errno → index in rep.Errors
	for i, r := range results {
		if !r.started {
			continue
		}
		rep.Started++
		if cfg.Trace && r.timings.Open > 0 {
			t := benchTrace{Session: i, OpenMS: msf(r.timings.Open), Steps: make([]benchStep, 0, len(r.steps))}
			for _, st := range r.steps {
				t.Steps = append(t.Steps, benchStep{Name: st.Name, AtMS: msf(st.At), Detail: st.Detail})
			}
			rep.Traces = append(rep.Traces, t)
		}
		// Timings of sessions that negotiated count even when an echo failed.
		if r.timings.Open > 0 {
			answer = append(answer, r.timings.Answer)
			connected = append(connected, r.timings.Connected)
			open = append(open, r.timings.Open)
		}
		rtts = append(rtts, r.rtts...)
		if r.err == nil {
			rep.OK++
			continue
		}
		rep.Failed++
		errno, name, reason := 0, "other", r.err.Error()
		var we *engine.Error
		if errors.As(r.err, &we) {
			errno, name, reason = int(we.Errno), we.Errno.String(), we.Reason
		}
		if k, ok := byErrno[errno]; ok {
			rep.Errors[k].Count++
			continue
		}
		byErrno[errno] = len(rep.Errors)
		rep.Errors = append(rep.Errors, benchErrors{Errno: errno, Name: name, Count: 1, Reason: benchClip(oneLine(reason), benchReasonMax)})
	}
	slices.SortStableFunc(rep.Errors, func(a, b benchErrors) int { return b.Count - a.Count })
	rep.Answer, rep.Connected, rep.Open, rep.EchoRTT = stats(answer), stats(connected), stats(open), stats(rtts)
	return rep
}

// stats returns the count, nearest-rank percentiles and maximum of ds.
func stats(ds []time.Duration) benchStats {
	if len(ds) == 0 {
		return benchStats{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	pct := func(p float64) float64 {
		rank := int(math.Ceil(p / 100 * float64(len(s))))
		return msf(s[min(max(rank, 1), len(s))-1])
	}
	return benchStats{Count: len(s), P50: pct(50), P90: pct(90), P95: pct(95), P99: pct(99), Max: msf(s[len(s)-1])}
}

// msf is d in milliseconds, to the microsecond.
func msf(d time.Duration) float64 {
	return math.Round(float64(d.Microseconds())) / 1000
}

// benchClip shortens s to at most n bytes (on a rune boundary), marking the cut.
func benchClip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// fmtMS formats milliseconds for the table: 0.84ms, 12.3ms, 1234ms.
func fmtMS(v float64, count int) string {
	switch {
	case count == 0:
		return "-"
	case v < 10:
		return fmt.Sprintf("%.2fms", v)
	case v < 1000:
		return fmt.Sprintf("%.1fms", v)
	}
	return fmt.Sprintf("%.0fms", v)
}

// writeBenchTable prints the report as text.
func writeBenchTable(w io.Writer, rep benchReport) error {
	hold := ""
	if rep.Hold {
		hold = ", held open until the end"
	}
	rate := 0.0
	if rep.WallMS > 0 {
		rate = float64(rep.OK) / (rep.WallMS / 1000)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "geckohost bench %s (worker %s)\n", rep.URL, rep.Source)
	fmt.Fprintf(&b, "%s, %d at a time, %s each%s: %d ok, %d failed",
		plural(rep.Sessions, "session"), rep.Concurrency, plural(rep.Messages, "echo round trip"), hold, rep.OK, rep.Failed)
	if rep.Interrupted {
		fmt.Fprintf(&b, ", interrupted after %d", rep.Started)
	}
	fmt.Fprintf(&b, "; wall %s (%.1f sessions/s)\n", fmtDur(time.Duration(rep.WallMS*float64(time.Millisecond))), rate)
	if rep.ClientCPUMS >= 0 && rep.WallMS > 0 {
		perSession := ""
		if rep.Started > 0 {
			perSession = fmt.Sprintf(", %.1fms per session", rep.ClientCPUMS/float64(rep.Started))
		}
		fmt.Fprintf(&b, "bench's own CPU: %s (%.0f%% of one core over the wall time%s)\n",
			fmtDur(time.Duration(rep.ClientCPUMS*float64(time.Millisecond))), 100*rep.ClientCPUMS/rep.WallMS, perSession)
	}
	b.WriteString("\n")

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\tCOUNT\tP50\tP90\tP95\tP99\tMAX\tTARGET")
	for _, row := range []struct {
		name, target string
		s            benchStats
	}{
		{"answer (hello → worker-hello)", "p50 ≤ 15ms", rep.Answer},
		{"connected (hello → connected)", "", rep.Connected},
		{"open (hello → data channel open)", "p50 ≤ 50ms", rep.Open},
		{"echo round trip", "", rep.EchoRTT},
	} {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", row.name, row.s.Count, fmtMS(row.s.P50, row.s.Count),
			fmtMS(row.s.P90, row.s.Count), fmtMS(row.s.P95, row.s.Count), fmtMS(row.s.P99, row.s.Count), fmtMS(row.s.Max, row.s.Count), row.target)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write bench report: %w", err)
	}
	if rep.Server != nil {
		if err := writeServerTable(&b, rep.Server); err != nil {
			return err
		}
	}
	if len(rep.Errors) == 0 {
		b.WriteString("\nerrors: none\n")
	} else {
		b.WriteString("\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ERRNO\tNAME\tCOUNT\tFIRST REASON")
		for _, e := range rep.Errors {
			errno := "-"
			if e.Errno != 0 {
				errno = fmt.Sprint(e.Errno)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", errno, e.Name, e.Count, e.Reason)
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("write bench report: %w", err)
		}
	}
	if len(rep.Traces) > 0 {
		b.WriteString("\nsteps (ms since the hello):\n")
		for _, t := range rep.Traces {
			fmt.Fprintf(&b, "session %d, open %s:", t.Session, fmtMS(t.OpenMS, 1))
			for _, st := range t.Steps {
				fmt.Fprintf(&b, " %s %.1f", st.Name, st.AtMS)
				if st.Detail != "" {
					fmt.Fprintf(&b, " (%s)", st.Detail)
				}
			}
			b.WriteString("\n")
		}
	}
	// Cells padded by tabwriter leave trailing blanks on rows without a target.
	lines := strings.SplitAfter(b.String(), "\n")
	for i, l := range lines {
		if t, ok := strings.CutSuffix(l, "\n"); ok {
			lines[i] = strings.TrimRight(t, " ") + "\n"
		}
	}
	if _, err := io.WriteString(w, strings.Join(lines, "")); err != nil {
		return fmt.Errorf("write bench report: %w", err)
	}
	return nil
}
