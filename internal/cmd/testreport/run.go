package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// options are testreport's own flags.
type options struct {
	goCmd string   // the go command (-go PATH; default "go")
	ci    bool     // a missing-component skip fails the run (-ci, or CI=true)
	args  []string // go test's arguments
}

// parseArgs takes testreport's own leading flags (-go PATH, -ci) off args;
// the rest are go test's.
func parseArgs(args []string, env func(string) string) (options, error) {
	o := options{goCmd: "go", ci: env("CI") == "true" || env("CI") == "1"}
	for len(args) > 0 {
		switch args[0] {
		case "-go":
			if len(args) < 2 {
				return o, errors.New("-go needs a PATH")
			}
			o.goCmd, args = args[1], args[2:]
		case "-ci":
			o.ci, args = true, args[1:]
		default:
			o.args = args
			return o, nil
		}
	}
	return o, nil
}

// run runs go test -json with the arguments and reports; it returns the
// exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseArgs(args, os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "testreport: %v\n", err)
		return 2
	}
	cmd := exec.CommandContext(ctx, o.goCmd, append([]string{"test", "-json"}, o.args...)...)
	cmd.Stderr = stderr
	// SIGINT, not SIGTERM: go test passes an interrupt on to the test
	// binaries it runs, which then end their tests and clean up.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = 30 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	out, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintf(stderr, "testreport: run go test: %v\n", err)
		return 2
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "testreport: run go test: %v\n", err)
		return 2
	}
	rep := newReporter(stdout)
	readErr := rep.read(out)
	waitErr := cmd.Wait()
	code := rep.finish(o.ci)
	if readErr != nil {
		fmt.Fprintf(stderr, "testreport: read go test's output: %v\n", readErr)
		code = max(code, 2)
	}
	var ee *exec.ExitError
	switch {
	case errors.As(waitErr, &ee):
		if code == 0 {
			fmt.Fprintf(stdout, "go test exited %d\n", ee.ExitCode())
		}
		code = max(code, ee.ExitCode()) // go test's own status
	case waitErr != nil:
		fmt.Fprintf(stderr, "testreport: go test: %v\n", waitErr)
		code = max(code, 2)
	}
	return code
}
