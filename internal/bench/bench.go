// Package bench is the load generator of `geckohost bench`: it opens sessions
// to a running geckohost serve with the Go client (host/client), C at a time,
// runs echo round trips on each, and reports the negotiation times, the echo
// round trips, the failures by errno, its own CPU time and, optionally, the
// server's own histograms read from its /metrics. The command's flags are the
// root's (bench.go); this package is what they run.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/pion/webrtc/v4"

	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/host/client"
)

const (
	// dialTimeout bounds one session's negotiation: longer than the
	// server's own limits (30 s to the answer, 30 s more to connected), so
	// that a slow server reports its 302 rather than a client timeout.
	dialTimeout = 70 * time.Second
	// echoTimeout bounds one echo round trip.
	echoTimeout = 10 * time.Second
	// reasonMax caps the length of an error reason in the report.
	reasonMax = 200
)

// Config is what `geckohost bench` runs with (see benchCommand for the
// flags and defaults).
type Config struct {
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
	// NoNudge runs a plain pion client: pion's ICE nomination as it is
	// (client.Options.StockNomination), as other pion users have it.
	NoNudge bool
	// HTTPClient, when set (--ca), makes every request to the server.
	HTTPClient *http.Client
	// StatusURL, when set (--pss, with Hold), is the server's /status:
	// the browsers' PSS is read before the run and once every session is
	// open (Report.Memory).
	StatusURL string
}

// Validate checks the values flags cannot check by type.
func (cfg Config) Validate() error {
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
	if cfg.StatusURL != "" && !cfg.Hold {
		return errors.New("bench: --pss needs --hold (the workers must be live when their memory is read)")
	}
	return nil
}

// Session is the outcome of one session.
type Session struct {
	// Started: the session was tried (an interrupted run leaves some not).
	Started bool
	// Timings and Steps are the client's view of the negotiation.
	Timings client.Timings
	Steps   []client.Step
	// RTTs are the echo round trips.
	RTTs []time.Duration
	// Err is why the session failed; nil when it did not.
	Err error
	// Held is the open session kept for Config.Hold; its owner closes it.
	Held *client.Session
}

// Stats summarises durations in milliseconds (all zero when Count is 0).
type Stats struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// ErrorCount counts the failed sessions of one errno (0: not a worker-error
// from the server, such as a refused connection or an echo timeout).
type ErrorCount struct {
	Errno int    `json:"errno"`
	Name  string `json:"name"`
	Count int    `json:"count"`
	// Reason is the first failure's reason.
	Reason string `json:"reason"`
}

// Report is what bench prints (--json prints it as is).
type Report struct {
	URL         string       `json:"url"`
	Source      string       `json:"source"`
	Sessions    int          `json:"sessions"`
	Concurrency int          `json:"concurrency"`
	Messages    int          `json:"messages"`
	Loopback    bool         `json:"loopback"`
	NoNudge     bool         `json:"no_nudge"`
	Hold        bool         `json:"hold"`
	Started     int          `json:"started"`
	OK          int          `json:"ok"`
	Failed      int          `json:"failed"`
	Interrupted bool         `json:"interrupted"`
	WallMS      float64      `json:"wall_ms"`
	Answer      Stats        `json:"answer"`    // hello → worker-hello
	Connected   Stats        `json:"connected"` // hello → connected
	Open        Stats        `json:"open"`      // hello → data channel open
	EchoRTT     Stats        `json:"echo_rtt"`  // one text round trip
	Errors      []ErrorCount `json:"errors"`
	// Server is the server's histograms over the run (--metrics): keys
	// "answer", "connected", "queue_wait".
	Server map[string]ServerStats `json:"server,omitempty"`

	// ClientCPUMS is the CPU time bench itself used (its WebRTC, TLS and
	// JSON work shares the machine with the server's when both run on
	// it); -1 where it cannot be read.
	ClientCPUMS float64 `json:"client_cpu_ms"`
	// Traces are the sessions' steps (--trace).
	Traces []Trace `json:"traces,omitempty"`
	// Memory is the browsers' PSS before and with the held sessions
	// (--pss).
	Memory *Memory `json:"memory,omitempty"`
}

// Trace is one session's negotiation steps.
type Trace struct {
	Session int     `json:"session"`
	OpenMS  float64 `json:"open_ms"`
	Steps   []Step  `json:"steps"`
}

// Step is one step, in ms since the session's hello.
type Step struct {
	Name   string  `json:"name"`
	AtMS   float64 `json:"at_ms"`
	Detail string  `json:"detail,omitempty"`
}

// Run runs the sessions, writes the report to stdout and returns an
// error when any session failed or ctx ended first.
func Run(ctx context.Context, cfg Config, stdout io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	var before map[string]histogram
	if cfg.MetricsURL != "" {
		var err error
		if before, err = scrapeHistograms(ctx, cfg.HTTPClient, cfg.MetricsURL); err != nil {
			return err
		}
	}
	var mem *Memory
	if cfg.StatusURL != "" {
		pss, err := statusPSS(ctx, cfg.HTTPClient, cfg.StatusURL)
		if err != nil {
			return err
		}
		mem = &Memory{BeforeBytes: pss}
	}
	results := make([]Session, cfg.Sessions)
	cpu0, cpuOK := processCPU()
	start := time.Now()

	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(cfg.Concurrency, cfg.Sessions) {
		wg.Go(func() {
			for i := range jobs {
				results[i] = One(ctx, cfg, i)
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
	wall := time.Since(start) // the sessions', not the memory read's
	cpu1, _ := processCPU()
	if mem != nil {
		if err := heldMemory(ctx, cfg, mem, results); err != nil {
			closeHeld(results)
			return err
		}
	}
	closeHeld(results)

	rep := summary(cfg, results, wall)
	rep.Memory = mem
	rep.ClientCPUMS = -1
	if cpuOK {
		rep.ClientCPUMS = msf(cpu1 - cpu0)
	}
	return report(ctx, cfg, before, rep, stdout)
}

// closeHeld closes the sessions kept open for Config.Hold.
func closeHeld(results []Session) {
	for i := range results {
		if s := results[i].Held; s != nil {
			if err := s.Close(); err != nil && results[i].Err == nil {
				results[i].Err = fmt.Errorf("close session: %w", err)
			}
			results[i].Held = nil
		}
	}
}

// report finishes rep (interruption, the server's histograms), writes it
// and returns Run's error.
func report(ctx context.Context, cfg Config, before map[string]histogram, rep Report, stdout io.Writer) error {
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
		err = writeTable(stdout, rep)
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

// One negotiates session i, runs its echo round trips and closes it
// (unless cfg.Hold).
func One(ctx context.Context, cfg Config, i int) Session {
	r := Session{Started: true}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	s, err := client.Dial(dctx, cfg.URL, cfg.clientOptions())
	cancel()
	if err != nil {
		r.Err = err
		return r
	}
	r.Timings = s.Timings
	r.Steps = s.Steps
	r.RTTs, r.Err = Echo(ctx, s, i, cfg.Messages)
	if cfg.Hold && r.Err == nil {
		r.Held = s
		return r
	}
	if err := s.Close(); err != nil && r.Err == nil {
		r.Err = fmt.Errorf("close session: %w", err)
	}
	return r
}

// Echo sends n text messages on s one at a time and returns the round
// trip of each; the worker must send each back unchanged.
func Echo(ctx context.Context, s *client.Session, session, n int) ([]time.Duration, error) {
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
		timer := time.NewTimer(echoTimeout)
		select {
		case m := <-got:
			timer.Stop()
			if m != msg {
				return rtts, fmt.Errorf("echo %d: got %q, want %q (is the source an echo worker?)", j, clip(m, 60), msg)
			}
			rtts = append(rtts, time.Since(t0))
		case <-closed:
			timer.Stop()
			return rtts, fmt.Errorf("echo %d: data channel closed by the worker", j)
		case <-timer.C:
			return rtts, fmt.Errorf("echo %d: no reply within %v (is the source an echo worker?)", j, echoTimeout)
		case <-ctx.Done():
			timer.Stop()
			return rtts, fmt.Errorf("echo %d: %w", j, ctx.Err())
		}
	}
	return rtts, nil
}

// summary computes the report from the sessions' outcomes.
func summary(cfg Config, results []Session, wall time.Duration) Report {
	rep := Report{URL: cfg.URL, Source: cfg.Source, Sessions: cfg.Sessions, Concurrency: cfg.Concurrency,
		Messages: cfg.Messages, Loopback: cfg.Loopback, NoNudge: cfg.NoNudge, Hold: cfg.Hold, WallMS: msf(wall), Errors: []ErrorCount{}}
	var answer, connected, open, rtts []time.Duration
	byErrno := map[int]int{} // errno → index in rep.Errors
	for i, r := range results {
		if !r.Started {
			continue
		}
		rep.Started++
		if cfg.Trace && r.Timings.Open > 0 {
			t := Trace{Session: i, OpenMS: msf(r.Timings.Open), Steps: make([]Step, 0, len(r.Steps))}
			for _, st := range r.Steps {
				t.Steps = append(t.Steps, Step{Name: st.Name, AtMS: msf(st.At), Detail: st.Detail})
			}
			rep.Traces = append(rep.Traces, t)
		}
		// Timings of sessions that negotiated count even when an echo failed.
		if r.Timings.Open > 0 {
			answer = append(answer, r.Timings.Answer)
			connected = append(connected, r.Timings.Connected)
			open = append(open, r.Timings.Open)
		}
		rtts = append(rtts, r.RTTs...)
		if r.Err == nil {
			rep.OK++
			continue
		}
		rep.Failed++
		errno, name, reason := 0, "other", r.Err.Error()
		var we *engine.Error
		if errors.As(r.Err, &we) {
			errno, name, reason = int(we.Errno), we.Errno.String(), we.Reason
		}
		if k, ok := byErrno[errno]; ok {
			rep.Errors[k].Count++
			continue
		}
		byErrno[errno] = len(rep.Errors)
		rep.Errors = append(rep.Errors, ErrorCount{Errno: errno, Name: name, Count: 1, Reason: clip(strings.Join(strings.Fields(reason), " "), reasonMax)})
	}
	slices.SortStableFunc(rep.Errors, func(a, b ErrorCount) int { return b.Count - a.Count })
	rep.Answer, rep.Connected, rep.Open, rep.EchoRTT = stats(answer), stats(connected), stats(open), stats(rtts)
	return rep
}

// stats returns the count, nearest-rank percentiles and maximum of ds.
func stats(ds []time.Duration) Stats {
	if len(ds) == 0 {
		return Stats{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	pct := func(p float64) float64 {
		rank := int(math.Ceil(p / 100 * float64(len(s))))
		return msf(s[min(max(rank, 1), len(s))-1])
	}
	return Stats{Count: len(s), P50: pct(50), P90: pct(90), P95: pct(95), P99: pct(99), Max: msf(s[len(s)-1])}
}

// msf is d in milliseconds, to the microsecond.
func msf(d time.Duration) float64 {
	return math.Round(float64(d.Microseconds())) / 1000
}

// clip shortens s to at most n bytes (on a rune boundary), marking the cut.
func clip(s string, n int) string {
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

// writeTable prints the report as text.
func writeTable(w io.Writer, rep Report) error {
	hold := ""
	if rep.Hold {
		hold = ", held open until the end"
	}
	rate := 0.0
	if rep.WallMS > 0 {
		rate = float64(rep.OK) / (rep.WallMS / 1000)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "geckohost bench %s (worker %s%s)\n", rep.URL, rep.Source, clientName(rep.NoNudge))
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
		s            Stats
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
	writeMemory(&b, rep.Memory)
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

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// plural is n and the noun, with an "s" unless n is 1: "1 session", "2 sessions".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// fmtDur formats a duration compactly: 12ms, 1.5s, 3m4s, 2h5m.
func fmtDur(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
}
