package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/geckohost/geckohost/gecko"
	"github.com/geckohost/geckohost/host"
	"github.com/geckohost/geckohost/store"
	"github.com/geckohost/geckohost/web"
)

// shutdownTimeout bounds the graceful shutdown of serve.
const shutdownTimeout = 10 * time.Second

// serveConfig is everything `geckohost serve` runs with, built from its
// flags (see serveCommand for the defaults and meanings).
type serveConfig struct {
	DBPath string
	// Listen is the TCP address of the WebSocket/HTTP server.
	Listen string
	// AllowSources and AllowOrigins are validated origin patterns.
	AllowSources, AllowOrigins []string
	// Firefox is the browser binary; empty: firefox-esr, then firefox, on PATH.
	Firefox string
	// Browsers (≥ 1) and MaxWorkersPerBrowser (≥ 1) size the pool.
	Browsers, MaxWorkersPerBrowser int
	// Warm is the number of pre-spawned workers each worker page keeps
	// ready (see gecko.PoolOptions.Warm); 0 means none (note:
	// gecko.PoolOptions.Warm reads 0 as its default, so pass -1 for none).
	Warm int
	// WorkerIdle ends a worker after this long without data-channel traffic.
	WorkerIdle time.Duration
	// ICEServers are stun:/turn: URLs; ICELoopback gathers loopback
	// candidates only.
	ICEServers  []string
	ICELoopback bool
	// LogFormat is "text" or "json"; LogLevel "debug", "info", "warn" or "error".
	LogFormat, LogLevel string
	// Redis is the cluster's Redis URL ("": no cluster); NodeID this
	// node's id ("": hostname:port).
	Redis, NodeID string

	// onListen, when set, is called with the listening address (tests).
	onListen func(net.Addr)
}

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "accept clients on a WebSocket and run their workers in headless Firefox",
		Flags: []cli.Flag{
			dbFlag(),
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8765", Usage: "listen on this `ADDRESS` (host:port)", EnvVars: []string{"GECKOHOST_LISTEN"}},
			&cli.StringSliceFlag{Name: "allow-source", Usage: "allow worker sources from this origin `PATTERN` (repeatable), e.g. https://example.com, http://127.0.0.1:* or https://*.example.com, or * for any; the bundled demo workers are always allowed", EnvVars: []string{"GECKOHOST_ALLOW_SOURCE"}},
			&cli.StringSliceFlag{Name: "allow-origin", Usage: "accept browser clients (WebSocket Origin header) from this origin `PATTERN` (repeatable), same syntax as --allow-source; the server's own origin is always accepted, clients without an Origin header too", EnvVars: []string{"GECKOHOST_ALLOW_ORIGIN"}},
			&cli.StringFlag{Name: "firefox", Usage: "Firefox binary `PATH` (default: firefox-esr, then firefox, on PATH)", EnvVars: []string{"GECKOHOST_FIREFOX"}},
			&cli.IntFlag{Name: "browsers", Value: 1, Usage: "number of Firefox processes to run", EnvVars: []string{"GECKOHOST_BROWSERS"}},
			&cli.IntFlag{Name: "max-workers-per-browser", Value: 150, Usage: "most workers one Firefox runs", EnvVars: []string{"GECKOHOST_MAX_WORKERS_PER_BROWSER"}},
			&cli.IntFlag{Name: "warm", Value: 4, Usage: "pre-spawned workers each worker page keeps ready, plus one pre-loaded page for a new token (0: none)", EnvVars: []string{"GECKOHOST_WARM"}},
			&cli.DurationFlag{Name: "worker-idle", Value: 10 * time.Minute, Usage: "end a worker after this `DURATION` without data-channel messages", EnvVars: []string{"GECKOHOST_WORKER_IDLE"}},
			&cli.StringSliceFlag{Name: "ice-server", Usage: "STUN/TURN server `URL` for the workers' peer connections (repeatable), e.g. stun:stun.example.com:3478", EnvVars: []string{"GECKOHOST_ICE_SERVER"}},
			&cli.BoolFlag{Name: "ice-loopback", Usage: "gather loopback (127.0.0.1/::1) ICE candidates only: for clients on this machine", EnvVars: []string{"GECKOHOST_ICE_LOOPBACK"}},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log `FORMAT`: text or json", EnvVars: []string{"GECKOHOST_LOG_FORMAT"}},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "log `LEVEL`: debug, info, warn or error", EnvVars: []string{"GECKOHOST_LOG_LEVEL"}},
			redisFlag(),
			&cli.StringFlag{Name: "node-id", Usage: "cluster mode: this node's `ID`, unique among the nodes (default: hostname:port)", EnvVars: []string{"GECKOHOST_NODE_ID"}},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			cfg, err := serveConfigFrom(c)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return runServe(ctx, cfg, c.App.ErrWriter)
		},
	}
}

// serveConfigFrom builds and validates the serve configuration from flags.
func serveConfigFrom(c *cli.Context) (serveConfig, error) {
	db, err := dbPath(c)
	if err != nil {
		return serveConfig{}, err
	}
	cfg := serveConfig{
		DBPath:               db,
		Listen:               c.String("listen"),
		Firefox:              c.String("firefox"),
		Browsers:             c.Int("browsers"),
		MaxWorkersPerBrowser: c.Int("max-workers-per-browser"),
		Warm:                 c.Int("warm"),
		WorkerIdle:           c.Duration("worker-idle"),
		ICEServers:           c.StringSlice("ice-server"),
		ICELoopback:          c.Bool("ice-loopback"),
		LogFormat:            c.String("log-format"),
		LogLevel:             c.String("log-level"),
		Redis:                c.String("redis"),
		NodeID:               c.String("node-id"),
	}
	if cfg.AllowSources, err = patterns(c.StringSlice("allow-source")); err != nil {
		return serveConfig{}, fmt.Errorf("--allow-source: %w", err)
	}
	if cfg.AllowOrigins, err = patterns(c.StringSlice("allow-origin")); err != nil {
		return serveConfig{}, fmt.Errorf("--allow-origin: %w", err)
	}
	return cfg, cfg.validate()
}

// patterns validates and normalizes server origin patterns: those of
// store.ValidateSourcePattern, or "*" for every http(s) origin.
func patterns(ps []string) ([]string, error) {
	var out []string
	for _, p := range ps {
		p = strings.TrimSpace(p)
		if p == "*" {
			out = append(out, p)
			continue
		}
		n, err := store.ValidateSourcePattern(p)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// validate checks the values flags cannot check by type.
func (cfg serveConfig) validate() error {
	if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		return fmt.Errorf("--listen %q: want host:port: %w", cfg.Listen, err)
	}
	if cfg.Browsers < 1 {
		return fmt.Errorf("--browsers %d: want 1 or more", cfg.Browsers)
	}
	if cfg.MaxWorkersPerBrowser < 1 {
		return fmt.Errorf("--max-workers-per-browser %d: want 1 or more", cfg.MaxWorkersPerBrowser)
	}
	if cfg.Warm < 0 {
		return fmt.Errorf("--warm %d: want 0 or more", cfg.Warm)
	}
	if cfg.WorkerIdle <= 0 {
		return fmt.Errorf("--worker-idle %v: want a positive duration", cfg.WorkerIdle)
	}
	for _, u := range cfg.ICEServers {
		scheme, rest, ok := strings.Cut(u, ":")
		if !ok || rest == "" || (scheme != "stun" && scheme != "stuns" && scheme != "turn" && scheme != "turns") {
			return fmt.Errorf("--ice-server %q: want a stun:, stuns:, turn: or turns: URL", u)
		}
	}
	if _, err := newLogger(io.Discard, cfg.LogFormat, cfg.LogLevel); err != nil {
		return err
	}
	return cfg.validateCluster()
}

// newLogger returns a slog logger writing to w in format ("text" or "json")
// at level ("debug", "info", "warn" or "error").
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lvl = slog.LevelDebug
	case "info":
		lvl = slog.LevelInfo
	case "warn", "warning":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	default:
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// runServe runs the server until ctx is done, then shuts it down gracefully
// (at most shutdownTimeout) and closes the store. It returns nil on a clean
// stop. Order: store, listener (so /healthz answers at once), the Firefox
// pool (serve is ready when its first browser and warm slots are), then the
// signaling server; shutdown runs the other way round.
func runServe(ctx context.Context, cfg serveConfig, stderr io.Writer) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	log, err := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return err
	}
	db, err := store.Open(ctx, cfg.DBPath)
	if err != nil {
		return err
	}
	defer func() {
		if err := db.Close(); err != nil {
			log.Error("close store", "err", err)
		}
	}()

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}

	warm := cfg.Warm
	if warm == 0 {
		warm = -1 // gecko reads 0 as its default; serve's 0 means none
	}
	pool := gecko.NewPool(gecko.PoolOptions{
		Firefox:              gecko.FirefoxOptions{Path: cfg.Firefox, Logger: log.With("component", "firefox")},
		Browsers:             cfg.Browsers,
		MaxWorkersPerBrowser: cfg.MaxWorkersPerBrowser,
		Warm:                 warm,
		WorkerIdle:           cfg.WorkerIdle,
		ICEServers:           cfg.ICEServers,
		ICELoopback:          cfg.ICELoopback,
		Logger:               log.With("component", "gecko"),
	})
	cm, err := startCluster(ctx, cfg, log, db, pool, ln.Addr())
	if err != nil {
		_ = ln.Close()
		return err
	}
	hopts := host.Options{
		Store:        db,
		Engine:       pool,
		Logger:       log.With("component", "host"),
		EngineName:   "firefox",
		AllowSources: cfg.AllowSources,
		AllowOrigins: cfg.AllowOrigins,
		Web:          web.Handler(),
	}
	cm.apply(&hopts)
	srv, err := host.New(hopts)
	if err != nil {
		_ = ln.Close()
		return errors.Join(fmt.Errorf("set up server: %w", err), cm.close(ctx))
	}

	serveCtx, stopServe := cm.serveContext(ctx)
	defer stopServe()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx, ln) }()
	log.Info("geckohost serving", "url", "http://"+ln.Addr().String()+"/", "db", db.Path(), "version", version)
	if cfg.onListen != nil {
		cfg.onListen(ln.Addr())
	}

	closePool := func() error { // the cluster node first: it closes the workers it runs for other nodes
		cerr := cm.close(ctx)
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		if err := pool.Close(cctx); err != nil {
			return errors.Join(cerr, fmt.Errorf("close firefox pool: %w", err))
		}
		return cerr
	}
	start := time.Now()
	if err := pool.Start(ctx); err != nil {
		stopServe()
		serveErr := <-served
		if ctx.Err() != nil { // stopped while starting: a clean stop
			if err := errors.Join(serveErr, closePool()); err != nil {
				return err
			}
			log.Info("geckohost stopped")
			return nil
		}
		return errors.Join(fmt.Errorf("start firefox: %w", err), serveErr, closePool())
	}
	if ctx.Err() == nil {
		log.Info("geckohost ready", "demo", web.DemoURL(ln.Addr().String()), "startup", time.Since(start).Round(time.Millisecond))
	}

	serveErr := <-served // returns once ctx is done and the server has shut down
	log.Info("geckohost stopping")
	poolErr := closePool()
	if serveErr != nil {
		serveErr = fmt.Errorf("serve: %w", serveErr)
	}
	if err := errors.Join(serveErr, poolErr); err != nil {
		return err
	}
	log.Info("geckohost stopped")
	return nil
}
