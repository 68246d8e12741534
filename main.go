package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// main runs the command line with one cancellation path: SIGINT or SIGTERM
// cancels the context every command runs with (serve then shuts down
// gracefully, bench stops).
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
