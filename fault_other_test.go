//go:build !linux

package main

import (
	"context"
	"os"
)

// runAsGeckohost runs the geckohost command line (the fault tests, which
// start it, run on Linux only).
func runAsGeckohost() int {
	return run(context.Background(), append([]string{"geckohost"}, os.Args[1:]...), os.Stdout, os.Stderr)
}
