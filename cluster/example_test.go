package cluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/geckohost/geckohost/cluster"
	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/host"
)

// ParseURL checks a --redis URL and returns it without its password.
func ExampleParseURL() {
	u, err := cluster.ParseURL("redis://geckohost:s3cret@redis.lan:6379/2")
	fmt.Println(u, err)
	_, err = cluster.ParseURL("http://redis.lan:6379")
	fmt.Println(err != nil)
	// Output:
	// redis://geckohost:xxxxx@redis.lan:6379/2 <nil>
	// true
}

// A node wraps the local engine (here any engine.Engine; serve uses the
// gecko pool) and is the host's token store, limiter and engine.
func ExampleNode() {
	ctx := context.Background()
	c, err := cluster.Open(ctx, "redis://127.0.0.1:6379/0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = c.Close() }()
	var local engine.Engine // the Firefox pool
	node, err := cluster.New(cluster.Options{Client: c, ID: "node-1", Local: local, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := node.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	srv, err := host.New(host.Options{Store: node, Limiter: node, Engine: node.Engine()})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = srv // srv.Serve(ctx, listener); at SIGTERM: node.Drain, srv.Shutdown, node.Close
	_ = node.Close(ctx)
}
