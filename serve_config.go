package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/gecko"
	"github.com/geckohost/geckohost/gecko/egress"
	"github.com/geckohost/geckohost/host"
)

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
	// Engine is --engine (firefox or chromium); Chromium is --chromium,
	// the Chromium binary (empty: chromium.FindChromium's default).
	Engine, Chromium string
	// Browsers (≥ 1) and MaxWorkersPerBrowser (≥ 1) size the pool.
	Browsers, MaxWorkersPerBrowser int
	// Warm is --warm: the number of pre-spawned workers each worker page
	// keeps ready; 0 means none (poolWarm gives it to gecko).
	Warm int
	// WorkerIdle ends a worker after this long without data-channel traffic.
	WorkerIdle time.Duration
	// ICEServers are stun:/turn: URLs; ICELoopback gathers loopback
	// candidates only.
	ICEServers  []string
	ICELoopback bool
	// TURNListen, when set, runs the embedded TURN relay on this host:port
	// (UDP and TCP); TURNPublicIP is its relayed address (nil: see
	// turn.Options.RelayIP).
	TURNListen   string
	TURNPublicIP net.IP
	// LogFormat is "text" or "json"; LogLevel "debug", "info", "warn" or "error".
	LogFormat, LogLevel string
	// QueueSize (≥ 0; 0: no queue, see hostQueueSize) hellos wait at most
	// QueueTimeout (0: host's default) for a browser when every one is full
	// or restarting.
	QueueSize    int
	QueueTimeout time.Duration
	// MetricsListen, when set, serves /metrics there instead of on Listen;
	// DebugListen, when set, serves net/http/pprof there.
	MetricsListen, DebugListen string
	// PublicURLs are more of the server's own origins (--public-url).
	PublicURLs []string
	// WorkerEgress is --worker-egress ("" means public); WorkerAllow the
	// --worker-allow patterns.
	WorkerEgress string
	WorkerAllow  []string
	// MaxFetchesPerToken caps a token's concurrent source fetches; 0
	// means host's default (8).
	MaxFetchesPerToken int
	// KeepSessions prunes session records older than this, at start and
	// every hour; 0 keeps them all.
	KeepSessions time.Duration
	// TLSCert and TLSKey, when set, are the PEM certificate chain and key
	// of --listen: https:// and wss://, re-read when the files change or
	// on SIGHUP (serve_tls.go).
	TLSCert, TLSKey string
	// Redis is the cluster's Redis URL ("": no cluster); NodeID this
	// node's id ("": hostname:port).
	Redis, NodeID string

	// Limits are the containment flags (--worker-memory etc.).
	Limits workerLimits

	// onListen, when set, is called with the listening address (tests).
	onListen func(net.Addr)
	// certPollEvery is how often the TLS files are looked at (0:
	// certPollEvery; tests).
	certPollEvery time.Duration
}

// poolWarm is --warm as gecko.PoolOptions.Warm: the flag's 0 is none
// (gecko.NoWarm), where gecko's zero is its default.
func (cfg serveConfig) poolWarm() int {
	if cfg.Warm == 0 {
		return gecko.NoWarm
	}
	return cfg.Warm
}

// hostQueueSize is --queue-size as host.Options.QueueSize: the flag's 0 is no
// queue (host.NoQueue), where host's zero is its default.
func (cfg serveConfig) hostQueueSize() int {
	if cfg.QueueSize == 0 {
		return host.NoQueue
	}
	return cfg.QueueSize
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
		Engine:               c.String("engine"),
		Chromium:             c.String("chromium"),
		Browsers:             c.Int("browsers"),
		MaxWorkersPerBrowser: c.Int("max-workers-per-browser"),
		Warm:                 c.Int("warm"),
		WorkerIdle:           c.Duration("worker-idle"),
		ICEServers:           c.StringSlice("ice-server"),
		ICELoopback:          c.Bool("ice-loopback"),
		LogFormat:            c.String("log-format"),
		LogLevel:             c.String("log-level"),
		QueueSize:            c.Int("queue-size"),
		QueueTimeout:         c.Duration("queue-timeout"),
		MetricsListen:        c.String("metrics-listen"),
		DebugListen:          c.String("debug-listen"),
		PublicURLs:           c.StringSlice("public-url"),
		WorkerEgress:         c.String("worker-egress"),
		MaxFetchesPerToken:   c.Int("max-fetches-per-token"),
		Redis:                c.String("redis"),
		NodeID:               c.String("node-id"),
	}
	if cfg.QueueTimeout <= 0 {
		return serveConfig{}, fmt.Errorf("--queue-timeout %v: want a positive duration, such as 10s", cfg.QueueTimeout)
	}
	if cfg.Limits, err = workerLimitsFrom(c); err != nil {
		return serveConfig{}, err
	}
	if err := cfg.turnFrom(c); err != nil {
		return serveConfig{}, err
	}
	cfg.tlsFrom(c)
	if cfg.KeepSessions, err = parseKeep(c.String("keep-sessions")); err != nil {
		return serveConfig{}, err
	}
	if cfg.WorkerAllow, err = domain.ParsePatterns(c.StringSlice("worker-allow")); err != nil {
		return serveConfig{}, fmt.Errorf("--worker-allow: %w", err)
	}
	if cfg.AllowSources, err = domain.ParsePatterns(c.StringSlice("allow-source")); err != nil {
		return serveConfig{}, fmt.Errorf("--allow-source: %w", err)
	}
	if cfg.AllowOrigins, err = domain.ParsePatterns(c.StringSlice("allow-origin")); err != nil {
		return serveConfig{}, fmt.Errorf("--allow-origin: %w", err)
	}
	return cfg, cfg.validate()
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
	if cfg.QueueSize < 0 {
		return fmt.Errorf("--queue-size %d: want 0 or more", cfg.QueueSize)
	}
	if cfg.QueueTimeout < 0 {
		return fmt.Errorf("--queue-timeout %v: want a positive duration", cfg.QueueTimeout)
	}
	for _, l := range []struct{ flag, addr string }{{"--metrics-listen", cfg.MetricsListen}, {"--debug-listen", cfg.DebugListen}} {
		if l.addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(l.addr); err != nil {
			return fmt.Errorf("%s %q: want host:port: %w", l.flag, l.addr, err)
		}
	}
	for _, u := range cfg.ICEServers {
		scheme, rest, ok := strings.Cut(u, ":")
		if !ok || rest == "" || (scheme != "stun" && scheme != "stuns" && scheme != "turn" && scheme != "turns") {
			return fmt.Errorf("--ice-server %q: want a stun:, stuns:, turn: or turns: URL", u)
		}
	}
	if err := cfg.validateTURN(); err != nil {
		return err
	}
	if err := cfg.validateTLS(); err != nil {
		return err
	}
	if _, err := newLogger(io.Discard, cfg.LogFormat, cfg.LogLevel); err != nil {
		return err
	}
	if cfg.MaxFetchesPerToken < 0 {
		return fmt.Errorf("--max-fetches-per-token %d: want 1 or more", cfg.MaxFetchesPerToken)
	}
	if cfg.KeepSessions < 0 {
		return fmt.Errorf("--keep-sessions %v: want 0 (keep all) or a positive duration", cfg.KeepSessions)
	}
	if _, err := (egress.Policy{Mode: egress.Mode(cfg.WorkerEgress), Allow: cfg.WorkerAllow}).Validate(); err != nil {
		return fmt.Errorf("--worker-egress/--worker-allow: %w", err)
	}
	for _, u := range cfg.PublicURLs {
		if _, err := publicOrigin(u); err != nil {
			return err
		}
	}
	return cfg.validateCluster()
}

// parseKeep parses --keep-sessions: a Go duration or whole days; "0" keeps
// every record.
func parseKeep(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" || s == "" {
		return 0, nil
	}
	d, err := parseDurationOrDays(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--keep-sessions %q: want 0 or a positive duration such as 720h or 30d", s)
	}
	return d, nil
}

// publicOrigin validates a --public-url and returns it as an origin
// (scheme://host[:port]).
func publicOrigin(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("--public-url %q: want http(s)://host[:port], no path", s)
	}
	return u.Scheme + "://" + u.Host, nil
}

// ownOrigins returns the server's own origins for the workers' egress
// policy (and the names of the --listen address for host): the listener's
// address (loopback forms for a wildcard listener), localhost for a
// loopback one, a --listen host name, and the --public-url origins.
func ownOrigins(listen string, addr net.Addr, publicURLs []string) (egressOrigins, hostURLs []string) {
	return listenerOrigins("http", listen, addr, publicURLs)
}

// listenerOrigins is ownOrigins for a listener serving scheme ("http", or
// "https" with --tls-cert).
func listenerOrigins(scheme, listen string, addr net.Addr, publicURLs []string) (egressOrigins, hostURLs []string) {
	for _, u := range publicURLs {
		o, err := publicOrigin(u)
		if err == nil {
			egressOrigins = append(egressOrigins, o)
			hostURLs = append(hostURLs, o)
		}
	}
	if h, _, err := net.SplitHostPort(listen); err == nil && h != "" && net.ParseIP(h) == nil && h != "localhost" {
		_, port, _ := net.SplitHostPort(addr.String())
		o := scheme + "://" + net.JoinHostPort(h, port)
		egressOrigins = append(egressOrigins, o)
		hostURLs = append(hostURLs, o)
	}
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return egressOrigins, hostURLs
	}
	port := strconv.Itoa(int(ap.Port()))
	a := ap.Addr().Unmap()
	switch {
	case a.IsUnspecified():
		egressOrigins = append(egressOrigins, scheme+"://127.0.0.1:"+port, scheme+"://[::1]:"+port, scheme+"://localhost:"+port)
	case a.IsLoopback():
		egressOrigins = append(egressOrigins, scheme+"://"+net.JoinHostPort(a.String(), port), scheme+"://localhost:"+port)
	default:
		egressOrigins = append(egressOrigins, scheme+"://"+net.JoinHostPort(a.String(), port))
	}
	return egressOrigins, hostURLs
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

// checkFirefox fails, in one line, when no Firefox binary can be found
// (before anything starts, so that the user is told once).
func checkFirefox(path string) error {
	if _, err := gecko.FindFirefox(path); err != nil {
		if path == "" {
			return errors.New("no Firefox found: firefox-esr and firefox are not on PATH; install one (Debian: apt-get install firefox-esr) or pass --firefox PATH")
		}
		why := "not an executable file"
		if _, serr := os.Stat(path); errors.Is(serr, os.ErrNotExist) {
			why = "no such file"
		}
		return fmt.Errorf("--firefox %s: %s; pass the path of a Firefox binary, or leave --firefox out to use firefox-esr or firefox on PATH", path, why)
	}
	return nil
}
