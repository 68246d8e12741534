//go:build !linux

package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// runAsGeckohost runs the geckohost command line (the fault tests, which
// start it, run on Linux only).
func runAsGeckohost() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, append([]string{"geckohost"}, os.Args[1:]...), os.Stdout, os.Stderr)
}
