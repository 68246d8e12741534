package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/geckohost/geckohost/cluster"
	"github.com/geckohost/geckohost/gecko"
	"github.com/geckohost/geckohost/store"
)

// drainTimeout bounds the drain at SIGTERM in cluster mode: the node stops
// taking workers, goes on relaying its clients' hellos, and lets the
// sessions it takes part in finish negotiating.
const drainTimeout = 5 * time.Second

// validateCluster checks --redis and --node-id.
func (cfg serveConfig) validateCluster() error {
	if cfg.Redis == "" {
		if cfg.NodeID != "" {
			return fmt.Errorf("--node-id %q: only with --redis", cfg.NodeID)
		}
		return nil
	}
	if _, err := cluster.ParseURL(cfg.Redis); err != nil {
		return fmt.Errorf("--redis: %w", err)
	}
	if cfg.NodeID != "" {
		if len(cfg.NodeID) > 100 || strings.IndexFunc(cfg.NodeID, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0 {
			return fmt.Errorf("--node-id %q: want up to 100 printable characters, no spaces", cfg.NodeID)
		}
	}
	return nil
}

// clusterMode is serve's cluster wiring (nil without --redis).
type clusterMode struct {
	c       *cluster.Client
	node    *cluster.Node
	log     *slog.Logger
	drained chan struct{} // from serveContext: closed once the drain at SIGTERM is over
}

// startCluster connects to Redis and starts this node; nil without
// --redis. The node's id defaults to hostname:port.
func startCluster(ctx context.Context, cfg serveConfig, log *slog.Logger, db *store.DB, pool enginePool, addr net.Addr) (*clusterMode, error) {
	if cfg.Redis == "" {
		return nil, nil
	}
	id := cfg.NodeID
	if id == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "node"
		}
		_, port, _ := net.SplitHostPort(addr.String())
		id = host + ":" + port
	}
	c, err := cluster.Open(ctx, cfg.Redis)
	if err != nil {
		return nil, err
	}
	node, err := cluster.New(cluster.Options{
		Client: c, ID: id, Local: pool, Records: db, Addr: addr.String(), Version: buildInfo().Version, Engine: cfg.engineName(),
		Logger: log.With("component", "cluster"),
		Load: func() cluster.Load {
			var ld cluster.Load
			for _, b := range pool.Browsers() {
				ld.Workers += b.Workers
				if b.State == gecko.BrowserRunning {
					ld.Browsers++
					ld.Capacity += b.Capacity
				}
			}
			return ld
		},
	})
	if err == nil {
		err = node.Start(ctx)
	}
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	log.Info("cluster mode", "node", id, "redis", c.String())
	return &clusterMode{c: c, node: node, log: log}, nil
}

// serveContext is the context the server runs with: ctx, except in cluster
// mode, where the server goes on serving for the drain (at most
// drainTimeout) once ctx is done.
func (cm *clusterMode) serveContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if cm == nil {
		return context.WithCancel(ctx)
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	cm.drained = make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(cm.drained)
		dctx, dcancel := context.WithTimeout(sctx, drainTimeout)
		defer dcancel()
		if err := cm.node.Drain(dctx); err != nil {
			cm.log.Warn("drain", "err", err)
		}
		cancel()
	})
	return sctx, func() {
		if stop() {
			close(cm.drained)
		}
		cancel()
	}
}

// close stops the node (after the server) and closes the connection.
func (cm *clusterMode) close(ctx context.Context) error {
	if cm == nil {
		return nil
	}
	if cm.drained != nil {
		<-cm.drained
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	err := cm.node.Close(cctx)
	if cerr := cm.c.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("close cluster node: %w", err)
	}
	return nil
}
