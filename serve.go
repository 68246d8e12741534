package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/geckohost/geckohost/gecko"
	"github.com/geckohost/geckohost/gecko/egress"
	"github.com/geckohost/geckohost/host"
	"github.com/geckohost/geckohost/store"
	"github.com/geckohost/geckohost/web"
)

// shutdownTimeout bounds the graceful shutdown of serve.
const shutdownTimeout = 10 * time.Second

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "accept clients on a WebSocket and run their workers in headless Firefox",
		Flags: append([]cli.Flag{
			dbFlag(),
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8765", Usage: "listen on this `ADDRESS` (host:port)", EnvVars: []string{"GECKOHOST_LISTEN"}},
			&cli.StringSliceFlag{Name: "allow-source", Usage: "allow worker sources from this origin `PATTERN` (repeatable), e.g. https://example.com, http://127.0.0.1:* or https://*.example.com, or * for any; the bundled demo workers are always allowed", EnvVars: []string{"GECKOHOST_ALLOW_SOURCE"}},
			&cli.StringSliceFlag{Name: "allow-origin", Usage: "accept browser clients (WebSocket Origin header) from this origin `PATTERN` (repeatable), same syntax as --allow-source; the server's own origin is always accepted, clients without an Origin header too", EnvVars: []string{"GECKOHOST_ALLOW_ORIGIN"}},
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
// dead runs) and the removal of stale profiles, serving (so /healthz
// answers at once), the Firefox pool (serve is ready when its first
// browser and warm slots are), then the signaling server; shutdown runs
// the other way round.
func runServe(ctx context.Context, cfg serveConfig, stderr io.Writer) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	log, err := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return err
	}
	if err := checkFirefox(cfg.Firefox); err != nil {
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

	ln, err := cfg.listen(ctx, log) // with TLS for --tls-cert (serve_tls.go)
	if err != nil {
		return err
	}
	// This run's record; the sessions of runs that died are ended before
	// any hello is served (nothing is accepted on ln before Serve).
	run, err := startRun(ctx, db, log.With("component", "run"), heartbeatEvery)
	if err != nil {
		_ = ln.Close()
		return err
	}
	defer func() {
		if err := run.close(ctx); err != nil {
			log.Error("end serve run", "err", err)
		}
	}()
	// Profiles of browsers whose geckohost was killed (kill -9 leaves no
	// chance to clean up).
	removed, err := gecko.RemoveStaleProfiles()
	for _, dir := range removed {
		log.Info("removed a stale firefox profile", "dir", dir)
	}
	if err != nil {
		log.Warn("remove stale firefox profiles", "err", err)
	}

	relay, err := startRelay(cfg, log)
	if err != nil {
		_ = ln.Close()
		return err
	}
	defer closeRelay(relay, log)

	warm := cfg.Warm
	if warm == 0 {
		warm = -1 // gecko reads 0 as its default; serve's 0 means none
	}
	egressOrigins, hostURLs := serverOrigins(cfg, ln.Addr())
	pool := gecko.NewPool(cfg.Limits.pool(gecko.PoolOptions{
		Firefox:              gecko.FirefoxOptions{Path: cfg.Firefox, Logger: log.With("component", "firefox")},
		Browsers:             cfg.Browsers,
		MaxWorkersPerBrowser: cfg.MaxWorkersPerBrowser,
		Warm:                 warm,
		WorkerIdle:           cfg.WorkerIdle,
		ICEServers:           cfg.ICEServers,
		ICELoopback:          cfg.ICELoopback,
		Egress:               egress.Policy{Mode: egress.Mode(cfg.WorkerEgress), Allow: cfg.WorkerAllow, ServerOrigins: append(egressOrigins, iceOrigins(append(slices.Clone(cfg.ICEServers), relayURLs(relay)...))...)},
		Logger:               log.With("component", "gecko"),
	}))
	queueSize := cfg.QueueSize
	if queueSize == 0 {
		queueSize = -1 // host reads 0 as its default; serve's 0 means no queue
	}
	build := buildInfo()
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
		PublicURLs:   hostURLs,
		Web:          web.Handler(),
		ICEServers:   iceServers(cfg.ICEServers, relay),
		RelayPeers:   relayPeers(relay),
		QueueSize:    queueSize,
		QueueTimeout: cfg.QueueTimeout,
		Browsers:     poolBrowsers(pool),
		Build:        build,
		HideMetrics:  cfg.MetricsListen != "",
		RunID:        run.id,

		MaxFetchesPerToken: cfg.MaxFetchesPerToken,
		TokenMaxWorkers:    cfg.Limits.tokenMaxWorkers(cfg.Browsers*cfg.MaxWorkersPerBrowser, cfg.Redis != ""),
	}
	if cm != nil {
		// Cluster mode: the node is the token store, the limiter and the
		// engine (the records still go to this node's SQLite, through it).
		hopts.Store, hopts.Limiter, hopts.Engine = cm.node, cm.node, cm.node.Engine()
	}
	srv, err := host.New(hopts)
	if err != nil {
		_ = ln.Close()
		return errors.Join(fmt.Errorf("set up server: %w", err), cm.close(ctx))
	}
	sides, err := startSides(ctx, cfg, srv, log)
	if err != nil {
		_ = ln.Close()
		_ = srv.Shutdown(ctx)
		return errors.Join(err, cm.close(ctx))
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		for _, sd := range sides {
			if err := sd.close(cctx); err != nil {
				log.Error("stop side server", "err", err)
			}
		}
	}()

	pruned := make(chan struct{})
	pctx, stopPrune := context.WithCancel(ctx)
	go func() {
		defer close(pruned)
		keepSessions(pctx, db, cfg.KeepSessions, log.With("component", "store"))
	}()
	defer func() {
		stopPrune()
		<-pruned // before the store closes
	}()

	serveCtx, stopServe := cm.serveContext(ctx)
	defer stopServe()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx, ln) }()
	log.Info("geckohost serving", "url", cfg.scheme()+"://"+ln.Addr().String()+"/", "db", db.Path(), "run", run.id,
		"version", build.Version, "commit", build.Commit, "built", build.Date)
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
		log.Info("geckohost ready", "demo", cfg.schemeURL(web.DemoURL(ln.Addr().String())), "startup", time.Since(start).Round(time.Millisecond))
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

// poolBrowsers reports the pool's browser slots for host's /status and
// /metrics.
func poolBrowsers(pool *gecko.Pool) func(memory bool) []host.BrowserStatus {
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
