package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/geckohost/geckohost/gecko"
	"github.com/geckohost/geckohost/host"
	"github.com/geckohost/geckohost/host/turn"
	"github.com/geckohost/geckohost/internal/serverun"
	"github.com/geckohost/geckohost/store"
	"github.com/geckohost/geckohost/web"
)

// shutdownTimeout bounds the graceful shutdown of serve.
const shutdownTimeout = 10 * time.Second

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "accept clients on a WebSocket and run their workers in headless Firefox (or Chromium: --engine chromium)",
		Flags: append([]cli.Flag{
			dbFlag(),
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8765", Usage: "listen on this `ADDRESS` (host:port)", EnvVars: []string{"GECKOHOST_LISTEN"}},
			&cli.StringSliceFlag{Name: "allow-source", Usage: "allow worker sources from this origin `PATTERN` (repeatable), e.g. https://example.com, http://127.0.0.1:* or https://*.example.com, or * for any; the bundled demo workers are always allowed", EnvVars: []string{"GECKOHOST_ALLOW_SOURCE"}},
			&cli.StringSliceFlag{Name: "allow-origin", Usage: "accept browser clients (WebSocket Origin header) from this origin `PATTERN` (repeatable), same syntax as --allow-source; the server's own origin is always accepted, clients without an Origin header too", EnvVars: []string{"GECKOHOST_ALLOW_ORIGIN"}},
			engineFlags()[0], engineFlags()[1],
			&cli.StringFlag{Name: "firefox", Usage: "Firefox binary `PATH` (default: firefox-esr, then firefox, on PATH)", EnvVars: []string{"GECKOHOST_FIREFOX"}},
			&cli.IntFlag{Name: "browsers", Value: 1, Usage: "run `N` Firefox processes", EnvVars: []string{"GECKOHOST_BROWSERS"}},
			&cli.IntFlag{Name: "max-workers-per-browser", Value: 150, Usage: "one Firefox runs at most `N` workers", EnvVars: []string{"GECKOHOST_MAX_WORKERS_PER_BROWSER"}},
			&cli.IntFlag{Name: "warm", Value: 4, Usage: "`N` pre-spawned workers each worker page keeps ready, plus one pre-loaded page for a new token (0: none)", EnvVars: []string{"GECKOHOST_WARM"}},
			&cli.DurationFlag{Name: "worker-idle", Value: 10 * time.Minute, Usage: "end a worker after this `DURATION` without data-channel messages (such as 90s, 10m, 1h)", EnvVars: []string{"GECKOHOST_WORKER_IDLE"}},
			&cli.IntFlag{Name: "queue-size", Value: host.DefaultQueueSize, Usage: "at most `N` hellos wait for a browser when every one is full or restarting; one more gets 301 at once (0: no queue, 301 at once)", EnvVars: []string{"GECKOHOST_QUEUE_SIZE"}},
			&cli.DurationFlag{Name: "queue-timeout", Value: host.DefaultQueueTimeout, Usage: "a queued hello waits at most this `DURATION` for a browser, then gets 301", EnvVars: []string{"GECKOHOST_QUEUE_TIMEOUT"}},
			&cli.StringFlag{Name: "metrics-listen", Usage: "serve /metrics (Prometheus) on this `ADDRESS` (host:port) instead of on --listen", EnvVars: []string{"GECKOHOST_METRICS_LISTEN"}},
			&cli.StringFlag{Name: "debug-listen", Usage: "serve Go's profiler (net/http/pprof, /debug/pprof/) on this `ADDRESS` (host:port); off by default", EnvVars: []string{"GECKOHOST_DEBUG_LISTEN"}},
			&cli.StringSliceFlag{Name: "ice-server", Usage: "STUN/TURN server `URL` for the workers' peer connections (repeatable), e.g. stun:stun.example.com:3478", EnvVars: []string{"GECKOHOST_ICE_SERVER"}},
			&cli.BoolFlag{Name: "ice-loopback", Usage: "gather loopback (127.0.0.1/::1) ICE candidates only: for clients on this machine", EnvVars: []string{"GECKOHOST_ICE_LOOPBACK"}},
			turnListenFlag(), turnPublicIPFlag(), tlsCertFlag(), tlsKeyFlag(),
			&cli.StringSliceFlag{Name: "public-url", Usage: "another `URL` this server is reached at (repeatable), e.g. https://geckohost.example.com behind a reverse proxy or http://workstation.lan:8765; requests naming any other host get 421", EnvVars: []string{"GECKOHOST_PUBLIC_URL"}},
			&cli.StringFlag{Name: "worker-egress", Value: "public", Usage: "where workers may connect: `MODE` public (public addresses, their own source origin and this server), none (only --worker-allow) or all (anything but geckohost's internal listeners)", EnvVars: []string{"GECKOHOST_WORKER_EGRESS"}},
			&cli.StringSliceFlag{Name: "worker-allow", Usage: "let workers connect to this origin `PATTERN` (repeatable), whatever its address, e.g. http://127.0.0.1:9000 or https://*.corp.example", EnvVars: []string{"GECKOHOST_WORKER_ALLOW"}},
			&cli.IntFlag{Name: "max-fetches-per-token", Value: host.DefaultMaxFetchesPerToken, Usage: "one token fetches at most `N` worker sources at a time (more hellos wait)", EnvVars: []string{"GECKOHOST_MAX_FETCHES_PER_TOKEN"}},
			&cli.StringFlag{Name: "keep-sessions", Value: "720h", Usage: "prune session records older than this `DURATION` (720h, 30d), at start and every hour; 0 keeps them all", EnvVars: []string{"GECKOHOST_KEEP_SESSIONS"}},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log `FORMAT`: text or json", EnvVars: []string{"GECKOHOST_LOG_FORMAT"}},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "log `LEVEL`: debug, info, warn or error", EnvVars: []string{"GECKOHOST_LOG_LEVEL"}},
			redisFlag(),
			&cli.StringFlag{Name: "node-id", Usage: "cluster mode: this node's `ID`, unique among the nodes (default: hostname:port)", EnvVars: []string{"GECKOHOST_NODE_ID"}},
		}, workerLimitFlags()...),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			cfg, err := serveConfigFrom(c)
			if err != nil {
				return err
			}
			return runServe(c.Context, cfg, c.App.ErrWriter)
		},
	}
}

// runServe runs the server until ctx is done, then shuts it down gracefully
// (at most shutdownTimeout) and closes the store. It returns nil on a clean
// stop. Order: store, listener, this run's record (ending the sessions of
// dead runs) and the removal of stale profiles, the relay, the Firefox pool
// and cluster mode (built, not started), the signaling server, the side
// servers; then serving (so /healthz answers at once) and starting the pool
// (serve is ready when its first browser and warm slots are). Shutdown runs
// the other way round, from one closer stack.
func runServe(ctx context.Context, cfg serveConfig, stderr io.Writer) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	log, err := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return err
	}
	if err := checkEngine(cfg); err != nil {
		return err
	}
	cs := &closers{log: log}
	sv, err := setUpServe(ctx, cfg, log, cs)
	if err != nil {
		return errors.Join(err, cs.close())
	}
	err = sv.serve(ctx)
	if err = errors.Join(err, cs.close()); err != nil {
		return err
	}
	log.Info("geckohost stopped")
	return nil
}

// closers is serve's shutdown order: each part that set-up starts pushes how
// to stop it, and close stops them in reverse, once. A closer's error is
// logged (logged) or returned by close (returned).
type closers struct {
	log *slog.Logger
	fns []func() error
}

// logged pushes f; its error is logged as what failed, not returned.
func (cs *closers) logged(what string, f func() error) {
	cs.fns = append(cs.fns, func() error {
		if err := f(); err != nil {
			cs.log.Error(what, "err", err)
		}
		return nil
	})
}

// returned pushes f; its error is part of close's.
func (cs *closers) returned(f func() error) { cs.fns = append(cs.fns, f) }

// close runs the closers pushed so far, last first, and returns the joined
// errors of the returned ones.
func (cs *closers) close() error {
	var errs []error
	for i := len(cs.fns) - 1; i >= 0; i-- {
		errs = append(errs, cs.fns[i]())
	}
	cs.fns = nil
	return errors.Join(errs...)
}

// served is what setUpServe starts: everything serve needs to run.
type served struct {
	cfg     serveConfig
	log     *slog.Logger
	db      *store.DB
	ln      net.Listener
	run     *serverun.Run
	pool    enginePool
	cm      *clusterMode
	srv     *host.Server
	serving *atomic.Bool // srv.Serve took over ln and the server's shutdown
	build   host.BuildInfo
}

// setUpServe opens the store, listens, records the run (ending the sessions
// of dead runs before any hello is served: nothing is accepted on the
// listener before Serve), removes stale profiles, and builds the relay, the
// pool, cluster mode, the host server, the side servers and the pruning,
// pushing the closer of each on cs.
func setUpServe(ctx context.Context, cfg serveConfig, log *slog.Logger, cs *closers) (*served, error) {
	sv := &served{cfg: cfg, log: log, serving: new(atomic.Bool), build: buildInfo()}
	var err error
	if sv.db, err = store.Open(ctx, cfg.DBPath); err != nil {
		return nil, err
	}
	cs.logged("close store", sv.db.Close)
	if sv.ln, err = cfg.listen(ctx, log); err != nil { // with TLS for --tls-cert (serve_tls.go)
		return nil, err
	}
	cs.returned(func() error {
		if !sv.serving.Load() {
			_ = sv.ln.Close() // Serve closes it once it has it
		}
		return nil
	})
	if sv.run, err = serverun.Start(ctx, sv.db, log.With("component", "run"), 0); err != nil {
		return nil, err
	}
	cs.logged("end serve run", func() error { return sv.run.Close(ctx) })
	removeStaleProfiles(log)
	relay, err := startRelay(cfg, log)
	if err != nil {
		return nil, err
	}
	cs.returned(func() error { closeRelay(relay, log); return nil })
	sv.pool = newPool(cfg, log, sv.ln.Addr(), relay)
	cs.returned(func() error { return sv.closePool(ctx) })
	if sv.cm, err = startCluster(ctx, cfg, log, sv.db, sv.pool, sv.ln.Addr()); err != nil {
		return nil, err
	}
	cs.returned(func() error { return sv.cm.close(ctx) }) // before the pool: it closes the workers it runs for other nodes
	if sv.srv, err = host.New(sv.hostOptions(relay)); err != nil {
		return nil, fmt.Errorf("set up server: %w", err)
	}
	cs.returned(func() error {
		if !sv.serving.Load() {
			_ = sv.srv.Shutdown(ctx)
		}
		return nil
	})
	sides, err := startSides(ctx, cfg, sv.srv, log)
	if err != nil {
		return nil, err
	}
	cs.logged("stop side server", func() error { return closeSides(ctx, sides) })
	pctx, stopPrune := context.WithCancel(ctx)
	pruned := make(chan struct{})
	go func() {
		defer close(pruned)
		keepSessions(pctx, sv.db, cfg.KeepSessions, log.With("component", "store"))
	}()
	cs.returned(func() error { stopPrune(); <-pruned; return nil }) // before the store closes
	return sv, nil
}

// hostOptions wires the engine to host: the pool, or in cluster mode the
// node, which is then also the token store and the limiter (the records
// still go to this node's SQLite, through it).
func (sv *served) hostOptions(relay *turn.Server) host.Options {
	cfg := sv.cfg
	_, hostURLs := serverOrigins(cfg, sv.ln.Addr())
	hopts := host.Options{
		Store:        sv.db,
		Engine:       sv.pool,
		Logger:       sv.log.With("component", "host"),
		EngineName:   cfg.engineName(),
		AllowSources: cfg.AllowSources,
		AllowOrigins: cfg.AllowOrigins,
		PublicURLs:   hostURLs,
		Web:          web.Handler(),
		ICEServers:   iceServers(cfg.ICEServers, relay),
		RelayPeers:   relayPeers(relay),
		QueueSize:    cfg.hostQueueSize(),
		QueueTimeout: cfg.QueueTimeout,
		Browsers:     poolBrowsers(sv.pool),
		Build:        sv.build,
		HideMetrics:  cfg.MetricsListen != "",
		RunID:        sv.run.ID(),

		MaxFetchesPerToken: cfg.MaxFetchesPerToken,
		TokenMaxWorkers:    cfg.Limits.tokenMaxWorkers(cfg.Browsers*cfg.MaxWorkersPerBrowser, cfg.Redis != ""),
	}
	if sv.cm != nil {
		hopts.Store, hopts.Limiter, hopts.Engine = sv.cm.node, sv.cm.node, sv.cm.node.Engine()
	}
	return hopts
}

// closePool closes the Firefox pool within shutdownTimeout.
func (sv *served) closePool(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := sv.pool.Close(cctx); err != nil {
		return fmt.Errorf("close %s pool: %w", sv.cfg.engineName(), err)
	}
	return nil
}

// serve serves on the listener, starts the browsers, and returns once ctx
// is done and the server has shut down (the closers then stop the rest).
// A stop while the browsers start is a clean stop.
func (sv *served) serve(ctx context.Context) error {
	log, addr := sv.log, sv.ln.Addr()
	serveCtx, stopServe := sv.cm.serveContext(ctx)
	defer stopServe()
	done := make(chan error, 1)
	sv.serving.Store(true)
	go func() { done <- sv.srv.Serve(serveCtx, sv.ln) }()
	log.Info("geckohost serving", "url", sv.cfg.scheme()+"://"+addr.String()+"/", "db", sv.db.Path(), "run", sv.run.ID(),
		"version", sv.build.Version, "commit", sv.build.Commit, "built", sv.build.Date)
	if sv.cfg.onListen != nil {
		sv.cfg.onListen(addr)
	}
	start := time.Now()
	if err := sv.pool.Start(ctx); err != nil {
		stopServe()
		serveErr := <-done
		if ctx.Err() != nil {
			return serveErr
		}
		return errors.Join(fmt.Errorf("start %s: %w", sv.cfg.engineName(), err), serveErr)
	}
	if ctx.Err() == nil {
		log.Info("geckohost ready", "demo", sv.cfg.schemeURL(web.DemoURL(addr.String())), "startup", time.Since(start).Round(time.Millisecond))
	}
	err := <-done // returns once ctx is done and the server has shut down
	log.Info("geckohost stopping")
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// pruneEvery is how often serve prunes the session records.
const pruneEvery = time.Hour

// keepSessions prunes the session records older than keep at once and
// then every pruneEvery until ctx ends; keep 0 keeps every record.
func keepSessions(ctx context.Context, db *store.DB, keep time.Duration, log *slog.Logger) {
	if keep <= 0 {
		return
	}
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		n, err := db.PruneSessions(ctx, time.Now().Add(-keep))
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("prune session records", "err", err)
		case n > 0:
			log.Info("session records pruned", "count", n, "older_than", keep)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// startSides starts the --metrics-listen and --debug-listen servers.
func startSides(ctx context.Context, cfg serveConfig, srv *host.Server, log *slog.Logger) ([]*sideServer, error) {
	var sides []*sideServer
	for _, sd := range []struct {
		name, addr, path string
		h                func() http.Handler
	}{
		{"metrics", cfg.MetricsListen, "metrics", func() http.Handler { return metricsMux(srv.MetricsHandler()) }},
		{"debug", cfg.DebugListen, "debug/pprof/", pprofHandler},
	} {
		if sd.addr == "" {
			continue
		}
		// A side server answers to its IP addresses, localhost and the
		// --public-url hosts only (DNS rebinding).
		h, err := host.SideHostCheck(sd.h(), cfg.PublicURLs)
		var ss *sideServer
		if err == nil {
			ss, err = startSide(ctx, sd.name, sd.addr, h, log)
		}
		if err != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
			for _, o := range sides {
				_ = o.close(cctx)
			}
			cancel()
			return nil, fmt.Errorf("--%s-listen: %w", sd.name, err)
		}
		log.Info("serving "+sd.name, "url", "http://"+ss.ln.Addr().String()+"/"+sd.path)
		sides = append(sides, ss)
	}
	return sides, nil
}

// closeSides stops the side servers within shutdownTimeout.
func closeSides(ctx context.Context, sides []*sideServer) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	var errs []error
	for _, sd := range sides {
		errs = append(errs, sd.close(cctx))
	}
	return errors.Join(errs...)
}

// poolBrowsers reports the pool's browser slots for host's /status and
// /metrics.
func poolBrowsers(pool enginePool) func(memory bool) []host.BrowserStatus {
	return func(memory bool) []host.BrowserStatus {
		slots := pool.Slots() // gecko's browser states are host's (running, starting, standby, draining)
		out := make([]host.BrowserStatus, 0, len(slots))
		for _, b := range slots {
			bs := host.BrowserStatus{Index: b.Index, PID: b.PID, State: b.State, Workers: b.Workers, Capacity: b.Capacity, Restarts: b.Restarts,
				Contents: contentStatus(b), ContentCrashes: b.ContentCrashes, LimitKills: b.LimitKills}
			if memory && b.PID > 0 {
				bs.PSSBytes, _ = gecko.GroupPSS(b.PID) // 0 when unknown
			}
			out = append(out, bs)
		}
		return out
	}
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
