package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v2"

	"github.com/geckohost/geckohost/host"
)

// Set at build time by `make build`:
//
//	-ldflags "-X main.version=$(git describe --tags --always --dirty) -X main.commit=$(git rev-parse HEAD) -X main.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
var (
	// version is the release or `git describe` name; "dev" for a plain
	// go build.
	version = "dev"
	// commit is the full commit hash; empty: the one Go recorded
	// (vcs.revision), if any.
	commit = ""
	// buildDate is when the binary was built (RFC 3339 UTC).
	buildDate = ""
)

func init() {
	// `geckohost --version` prints what `geckohost version` prints.
	cli.VersionPrinter = func(c *cli.Context) {
		fmt.Fprintln(c.App.Writer, versionLine())
	}
}

// buildInfo is the running binary's version, commit and build date, as
// /status, /metrics, the start log line and `geckohost version` show it.
func buildInfo() host.BuildInfo {
	b := host.BuildInfo{Version: version, Commit: commit, Date: buildDate}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && b.Commit == "" {
				b.Commit = s.Value
			}
		}
	}
	return b
}

// versionLine is the one line `geckohost version` and `--version` print.
func versionLine() string {
	b := buildInfo()
	s := "geckohost " + b.Version
	if b.Commit != "" {
		s += " commit " + b.Commit
	}
	if b.Date != "" {
		s += " built " + b.Date
	}
	return fmt.Sprintf("%s %s %s/%s", s, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version, commit and build date (the same as --version)",
		Flags: []cli.Flag{dbFlag()},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer, versionLine())
			return nil
		},
	}
}
