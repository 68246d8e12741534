package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/geckohost/geckohost/store"
)

// run runs the geckohost command line args (args[0] is the program name)
// with the given output streams and returns the process exit status. Every
// error is one line on stderr: "geckohost: <error>".
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if err := newApp(stdout, stderr).RunContext(ctx, args); err != nil {
		fmt.Fprintf(stderr, "geckohost: %s\n", oneLine(err.Error()))
		return 1
	}
	return 0
}

// oneLine keeps an error message on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// usageError makes flag-parsing failures plain errors, without the help text.
func usageError(_ *cli.Context, err error, _ bool) error {
	return fmt.Errorf("%w (see --help)", err)
}

// newApp builds the geckohost command line application writing to stdout and
// stderr.
func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:  "geckohost",
		Usage: "run WebRTC data-channel workers in a supervised headless Firefox",
		Description: "geckohost serve accepts clients on a WebSocket, runs each client's worker JavaScript in a\n" +
			"headless Firefox and connects the two peer to peer over a WebRTC data channel.\n" +
			"Clients authenticate with bearer tokens made by \"geckohost token add\".",
		Version:         version,
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: true,
		Flags:           []cli.Flag{rootDBFlag()},
		OnUsageError:    usageError,
		// Errors are returned to run, which prints them; never exit here.
		ExitErrHandler: func(*cli.Context, error) {},
		Commands: []*cli.Command{
			serveCommand(),
			tokenCommand(),
			sessionsCommand(),
			nodesCommand(),
			benchCommand(),
			versionCommand(),
		},
	}
	setUsageError(app.Commands)
	return app
}

func setUsageError(cmds []*cli.Command) {
	for _, c := range cmds {
		c.OnUsageError = usageError
		setUsageError(c.Subcommands)
	}
}

const dbUsage = "SQLite database `PATH` (default: $XDG_DATA_HOME/geckohost/geckohost.db or ~/.local/share/geckohost/geckohost.db)"

// rootDBFlag is the global --db flag; it alone reads $GECKOHOST_DB, so that a
// --db typed on the command line (before or after the command name) always
// wins over the environment.
func rootDBFlag() cli.Flag {
	return &cli.StringFlag{Name: "db", Usage: dbUsage, EnvVars: []string{"GECKOHOST_DB"}}
}

// dbFlag returns a fresh --db flag for a command (a flag value can belong to
// one command only).
func dbFlag() cli.Flag {
	return &cli.StringFlag{Name: "db", Usage: dbUsage + " [$GECKOHOST_DB]"}
}

// dbPath returns the --db given to the innermost command that has one, else
// the global --db or $GECKOHOST_DB, else the default path.
func dbPath(c *cli.Context) (string, error) {
	for _, cc := range c.Lineage() {
		if cc.Command != nil && hasFlag(cc.Command.Flags, "db") && cc.IsSet("db") {
			if p := cc.String("db"); p != "" {
				return p, nil
			}
		}
	}
	return store.DefaultPath()
}

func hasFlag(flags []cli.Flag, name string) bool {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}

// openDB opens the store named by --db.
func openDB(c *cli.Context) (*store.DB, error) {
	p, err := dbPath(c)
	if err != nil {
		return nil, err
	}
	return store.Open(c.Context, p)
}

// noArgs fails when a command that takes no arguments got some (often a
// flag placed after an argument).
func noArgs(c *cli.Context) error {
	if c.Args().Present() {
		return fmt.Errorf("%s: unexpected argument %q (flags go before arguments; see --help)", c.Command.FullName(), c.Args().First())
	}
	return nil
}

// fmtTime formats t in local time, or none when t is zero.
func fmtTime(t time.Time, none string) string {
	if t.IsZero() {
		return none
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// jsonTime is a timestamp in JSON: RFC 3339 UTC, or null when zero.
func jsonTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339Nano)
	return &s
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}
