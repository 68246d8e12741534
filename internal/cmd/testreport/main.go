// Command testreport runs `go test -json` with its arguments and prints
// what `go test` prints (each package's ok/FAIL line, the full output of
// every failing test, of a panicking or timed-out package and of a failed
// build), then, at the end, every skipped test with its reason, one line
// each, and the line "N passed, N failed, N skipped".
//
// A skip whose message starts with "missing: " (internal/testenv) means a
// real component of the machine is missing (a browser, Redis, nftables,
// root); with CI=true (or -ci) any such skip fails the run. The exit status
// is go test's when it failed, else 1 when a missing-component skip
// happened under CI, else 0.
//
// `make test` runs it as
//
//	go run ./internal/cmd/testreport -go $(GO) -race -timeout 20m ./...
//
// Its own flags (-go, -ci) come first; everything else goes to go test.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
