package main

// serve's network side: the embedded TURN relay (--turn-listen,
// --turn-public-ip), the ICE servers GET /ice-servers and the workers get,
// and what serve says at start about the clients a mode cannot serve.

import (
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/host"
	"github.com/geckohost/geckohost/host/turn"
	"github.com/geckohost/geckohost/store"
)

func turnListenFlag() cli.Flag {
	return &cli.StringFlag{Name: "turn-listen", Usage: "run the embedded TURN relay on this `ADDRESS` (host:port, UDP and TCP), for clients whose network blocks UDP or has no direct path here; clients get it from GET /ice-servers", EnvVars: []string{"GECKOHOST_TURN_LISTEN"}}
}

func turnPublicIPFlag() cli.Flag {
	return &cli.StringFlag{Name: "turn-public-ip", Usage: "the `IP` the TURN relay gives as its relayed address and in its URLs (default: the --turn-listen address, or this host's first non-loopback IPv4 address)", EnvVars: []string{"GECKOHOST_TURN_PUBLIC_IP"}}
}

// turnFrom reads --turn-listen and --turn-public-ip.
func (cfg *serveConfig) turnFrom(c *cli.Context) error {
	cfg.TURNListen = c.String("turn-listen")
	if v := c.String("turn-public-ip"); v != "" {
		if cfg.TURNPublicIP = net.ParseIP(v); cfg.TURNPublicIP == nil || cfg.TURNPublicIP.IsUnspecified() {
			return fmt.Errorf("--turn-public-ip %q: want an IP address", v)
		}
	}
	return nil
}

// validateTURN checks the relay's flags against each other.
func (cfg serveConfig) validateTURN() error {
	if cfg.TURNListen == "" {
		if cfg.TURNPublicIP != nil {
			return fmt.Errorf("--turn-public-ip needs --turn-listen")
		}
		return nil
	}
	host, _, err := net.SplitHostPort(cfg.TURNListen)
	if err != nil || (host != "" && net.ParseIP(host) == nil) {
		return fmt.Errorf("--turn-listen %q: want ip:port (or :port)", cfg.TURNListen)
	}
	if cfg.ICELoopback {
		return fmt.Errorf("--turn-listen and --ice-loopback exclude each other: --ice-loopback workers use loopback candidates only, which no relay can reach")
	}
	return nil
}

// startRelay starts the embedded TURN relay when --turn-listen is set (nil
// otherwise), and logs the network warnings.
func startRelay(cfg serveConfig, log *slog.Logger) (*turn.Server, error) {
	for _, w := range cfg.networkWarnings() {
		log.Warn(w)
	}
	if cfg.TURNListen == "" {
		return nil, nil
	}
	return turn.Listen(turn.Options{Listen: cfg.TURNListen, RelayIP: cfg.TURNPublicIP, Logger: log.With("component", "turn")})
}

// closeRelay stops the relay, if any.
func closeRelay(relay *turn.Server, log *slog.Logger) {
	if relay == nil {
		return
	}
	if err := relay.Close(); err != nil {
		log.Error("close turn relay", "err", err)
	}
}

// networkWarnings says at start which clients a configuration cannot
// serve (so that no mode fails silently; see the README's Networks).
func (cfg serveConfig) networkWarnings() []string {
	var out []string
	if cfg.ICELoopback {
		out = append(out, "--ice-loopback: workers use loopback candidates only; clients on this machine that use loopback connect "+
			"(stock Chromium on a machine with a network, the Go client), stock Firefox and clients on other machines do not "+
			"(they get 305 PEER_CONNECTION_FAILED): run serve without --ice-loopback for them")
		if host, _, err := net.SplitHostPort(cfg.Listen); err == nil {
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				out = append(out, "--listen "+cfg.Listen+" accepts clients from other machines, but with --ice-loopback they cannot connect")
			}
		}
	}
	return out
}

// iceServers is what GET /ice-servers answers and each worker gets: the
// --ice-server URLs, then the embedded relay with fresh credentials for
// the token. nil when there are none.
func iceServers(urls []string, relay *turn.Server) func(store.Token, bool) []engine.ICEServer {
	if len(urls) == 0 && relay == nil {
		return nil
	}
	return func(tok store.Token, worker bool) []engine.ICEServer {
		var out []engine.ICEServer
		if len(urls) > 0 {
			out = append(out, engine.ICEServer{URLs: slices.Clone(urls)})
		}
		if relay != nil {
			if worker {
				out = append(out, relay.WorkerICEServer(tok.ID))
			} else {
				out = append(out, relay.ICEServer(tok.ID))
			}
		}
		return out
	}
}

// relayPeers is what host tells of the live workers' candidates: the
// relay, whose clients may reach those only (nil without a relay).
func relayPeers(relay *turn.Server) host.RelayPeers {
	if relay == nil {
		return nil
	}
	return relay
}

// relayURLs are the embedded relay's TURN URLs (none without one).
func relayURLs(relay *turn.Server) []string {
	if relay == nil {
		return nil
	}
	return relay.URLs()
}

// iceOrigins returns the --ice-server hosts and ports as origin patterns,
// so that the egress policy never stands between Firefox and a STUN/TURN
// server the operator named, should a TURN connection over TCP go through
// the proxy.
func iceOrigins(urls []string) []string {
	var out []string
	for _, u := range urls {
		scheme, rest, ok := strings.Cut(u, ":")
		if !ok {
			continue
		}
		rest, _, _ = strings.Cut(rest, "?")
		rest = strings.TrimPrefix(rest, "//")
		port := "3478"
		if scheme == "stuns" || scheme == "turns" {
			port = "5349"
		}
		host := rest
		if h, p, err := net.SplitHostPort(rest); err == nil {
			host, port = h, p
		}
		host = strings.Trim(host, "[]")
		if host == "" {
			continue
		}
		o := "http://" + net.JoinHostPort(host, port)
		if _, err := store.ValidateSourcePattern(o); err == nil {
			out = append(out, o)
		}
	}
	return out
}
