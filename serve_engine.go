package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"

	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/gecko"
	"github.com/geckohost/geckohost/gecko/chromium"
	"github.com/geckohost/geckohost/gecko/egress"
	"github.com/geckohost/geckohost/host/turn"
	"github.com/urfave/cli/v2"
)

// The engines serve --engine chooses from.
const (
	engineFirefox  = "firefox"
	engineChromium = "chromium"
)

// enginePool is what serve needs of an engine's pool: gecko.Pool and
// chromium.Pool both are one.
type enginePool interface {
	engine.Engine
	Start(ctx context.Context) error
	Close(ctx context.Context) error
	Browsers() []gecko.BrowserInfo
	Slots() []gecko.BrowserInfo
}

// engineFlags are serve's --engine and --chromium.
func engineFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "engine", Value: engineFirefox, Usage: "run workers in `ENGINE`: firefox (headless Firefox over WebDriver BiDi) or chromium (headless Chromium over CDP)", EnvVars: []string{"GECKOHOST_ENGINE"}},
		&cli.StringFlag{Name: "chromium", Usage: "Chromium binary `PATH` for --engine chromium (default: /usr/lib/chromium/chromium, then chromium, chromium-browser on PATH)", EnvVars: []string{"GECKOHOST_CHROMIUM"}},
	}
}

// newPool builds the pool (not started) of the configured engine.
func newPool(cfg serveConfig, log *slog.Logger, addr net.Addr, relay *turn.Server) enginePool {
	egressOrigins, _ := serverOrigins(cfg, addr)
	iceURLs := append(slices.Clone(cfg.ICEServers), relayURLs(relay)...)
	popts := gecko.PoolOptions{
		Firefox:              gecko.FirefoxOptions{Path: cfg.Firefox, Logger: log.With("component", "firefox")},
		Browsers:             cfg.Browsers,
		MaxWorkersPerBrowser: cfg.MaxWorkersPerBrowser,
		Warm:                 cfg.poolWarm(),
		WorkerIdle:           cfg.WorkerIdle,
		ICEServers:           cfg.ICEServers,
		ICELoopback:          cfg.ICELoopback,
		Egress: egress.Policy{Mode: egress.Mode(cfg.WorkerEgress), Allow: cfg.WorkerAllow,
			ServerOrigins: append(egressOrigins, iceOrigins(iceURLs)...)},
		Logger: log.With("component", "gecko"),
	}
	popts = cfg.Limits.pool(popts)
	if cfg.Engine != engineChromium {
		return gecko.NewPool(popts)
	}
	return chromium.NewPool(chromium.PoolOptions{
		Chromium:             chromium.Options{Path: cfg.Chromium, Logger: log.With("component", "chromium")},
		Browsers:             popts.Browsers,
		MaxWorkersPerBrowser: popts.MaxWorkersPerBrowser,
		Warm:                 popts.Warm,
		WorkerIdle:           popts.WorkerIdle,
		ICEServers:           popts.ICEServers,
		ICELoopback:          popts.ICELoopback,
		Egress:               popts.Egress,
		WorkerMemory:         popts.WorkerMemory,
		WorkerMaxLifetime:    popts.WorkerMaxLifetime,
		WorkerStorage:        popts.WorkerStorage,
		WorkerBusyLimit:      popts.WorkerBusyLimit,
		Logger:               log.With("component", "chromium"),
	})
}

// checkEngine fails, in one line, on an unknown --engine or when the
// engine's browser cannot be found (before anything starts).
func checkEngine(cfg serveConfig) error {
	switch cfg.Engine {
	case engineFirefox, "":
		return checkFirefox(cfg.Firefox)
	case engineChromium:
		return checkChromium(cfg.Chromium)
	}
	return fmt.Errorf("--engine %q: want firefox or chromium", cfg.Engine)
}

// checkChromium is checkFirefox for --engine chromium.
func checkChromium(path string) error {
	if _, err := chromium.FindChromium(path); err != nil {
		if path == "" {
			return errors.New("no Chromium found: /usr/lib/chromium/chromium, chromium and chromium-browser are missing; install it (Debian: apt-get install chromium) or pass --chromium PATH")
		}
		why := "not an executable file"
		if _, serr := os.Stat(path); errors.Is(serr, os.ErrNotExist) {
			why = "no such file"
		}
		return fmt.Errorf("--chromium %s: %s; pass the path of a Chromium binary, or leave --chromium out", path, why)
	}
	return nil
}

// engineName is the engine's name in session records and logs.
func (cfg serveConfig) engineName() string {
	if cfg.Engine == engineChromium {
		return engineChromium
	}
	return engineFirefox
}

// removeStaleProfiles removes the profiles (Firefox) and user data
// directories (Chromium) of browsers whose geckohost was killed.
func removeStaleProfiles(log *slog.Logger) {
	removed, err := gecko.RemoveStaleProfiles()
	more, cerr := chromium.RemoveStaleProfiles()
	for _, dir := range append(removed, more...) {
		log.Info("removed a stale browser profile", "dir", dir)
	}
	if err = errors.Join(err, cerr); err != nil {
		log.Warn("remove stale browser profiles", "err", err)
	}
}
