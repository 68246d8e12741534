package main

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/urfave/cli/v2"

	"github.com/geckohost/geckohost/internal/bench"
)

// benchCommand is `geckohost bench`: its flags, checked into a bench.Config
// for internal/bench, the load generator.
func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure a running geckohost serve: negotiation times and echo round trips",
		UsageText: "geckohost bench --token TOKEN [--url ws://127.0.0.1:8765/] [-n 20] [-c 1] [--messages 10] [--loopback] [--hold] [--metrics [--metrics-url URL]] [--trace] [--no-nudge] [--json] [--ca FILE]\n\n" +
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
			&cli.BoolFlag{Name: "no-nudge", Usage: "run a plain pion client: leave pion's ICE nomination as it is (by default the client replays the worker's early binding request so that pion nominates at once); what other pion users get", EnvVars: []string{"GECKOHOST_BENCH_NO_NUDGE"}},
			&cli.BoolFlag{Name: "pss", Usage: "with --hold: read the server's /status before the first hello and once every session is open, and print the browsers' PSS (whole process trees) and its growth per live worker", EnvVars: []string{"GECKOHOST_BENCH_PSS"}},
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
			return bench.Run(c.Context, cfg, c.App.Writer)
		},
	}
}

// benchConfigFrom builds and validates the bench configuration from flags.
func benchConfigFrom(c *cli.Context) (bench.Config, error) {
	cfg := bench.Config{
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
		NoNudge:     c.Bool("no-nudge"),
	}
	ws, httpBase, err := benchURLs(cfg.URL)
	if err != nil {
		return bench.Config{}, err
	}
	if cfg.HTTPClient, err = caHTTPClient(c.String("ca")); err != nil {
		return bench.Config{}, err
	}
	cfg.URL = ws
	if cfg.Source == "" {
		cfg.Source = httpBase.JoinPath("workers", "echo.js").String()
	}
	if c.String("metrics-url") != "" && !c.Bool("metrics") {
		return bench.Config{}, errors.New("bench: --metrics-url needs --metrics")
	}
	if c.Bool("metrics") {
		cfg.MetricsURL = c.String("metrics-url")
		if cfg.MetricsURL == "" {
			cfg.MetricsURL = httpBase.JoinPath("metrics").String()
		}
	}
	if c.Bool("pss") {
		cfg.StatusURL = httpBase.JoinPath("status").String()
	}
	return cfg, cfg.Validate()
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
