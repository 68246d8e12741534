package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/store"
)

// run runs the geckohost command line args (args[0] is the program name)
// with the given output streams and returns the process exit status. Every
// error is one line on stderr: "geckohost: <error>".
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	args, err := flagsFirst(app, args)
	if err == nil {
		err = app.RunContext(ctx, args)
	}
	if err != nil {
		fmt.Fprintf(stderr, "geckohost: %s\n", oneLine(err.Error()))
		return 1
	}
	return 0
}

// oneLine keeps an error message on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// usageError makes flag-parsing failures plain errors, without the help
// text, and says what a malformed value should look like.
func usageError(c *cli.Context, err error, _ bool) error {
	return fmt.Errorf("%w (see --help)", explainFlagError(c, err))
}

var (
	// invalidValueRE matches the flag package's error for a bad value.
	invalidValueRE = regexp.MustCompile(`^invalid value "(.*)" for flag -([A-Za-z0-9-]+): `)
	// envValueRE matches urfave/cli's error for a bad value from the
	// environment.
	envValueRE = regexp.MustCompile(`^could not parse "(.*)" as [a-z0-9 ]+ value from (?:environment variable|env var) "([A-Z0-9_]+)" for flag ([A-Za-z0-9-]+)`)
	// undefinedFlagRE matches the flag package's error for an unknown flag.
	undefinedFlagRE = regexp.MustCompile(`^flag provided but not defined: -+([A-Za-z0-9-]+)`)
)

// explainFlagError rewrites the flag errors a new user meets into one
// clear sentence: a malformed duration or number says what one looks
// like, an unknown flag names the closest one.
func explainFlagError(c *cli.Context, err error) error {
	var flags []cli.Flag
	if c != nil {
		for _, cc := range c.Lineage() {
			if cc.Command != nil {
				flags = append(flags, cc.Command.Flags...)
			} else if cc.App != nil {
				flags = append(flags, cc.App.Flags...)
			}
		}
	}
	msg := err.Error()
	value, name, from := "", "", ""
	if m := invalidValueRE.FindStringSubmatch(msg); m != nil {
		value, name = m[1], m[2]
	} else if m := envValueRE.FindStringSubmatch(msg); m != nil {
		value, name, from = m[1], m[3], " (from $"+m[2]+")"
	} else if m := undefinedFlagRE.FindStringSubmatch(msg); m != nil {
		var names []string
		for _, f := range flags {
			names = append(names, f.Names()...)
		}
		if best := closest(m[1], names); best != "" {
			return fmt.Errorf("unknown flag --%s; did you mean --%s?", m[1], best)
		}
		return fmt.Errorf("unknown flag --%s", m[1])
	} else {
		return err
	}
	for _, f := range flags {
		if !slices.Contains(f.Names(), name) {
			continue
		}
		switch f.(type) {
		case *cli.DurationFlag:
			return fmt.Errorf("--%s %q%s is not a duration: write a number with a unit, such as 90s, 10m or 1h30m", name, value, from)
		case *cli.IntFlag, *cli.Int64Flag, *cli.UintFlag, *cli.Uint64Flag:
			return fmt.Errorf("--%s %q%s is not a whole number", name, value, from)
		}
	}
	return err
}

// closest returns the name nearest to s (at most 2 edits, or s a prefix of
// it), or "" when none is near.
func closest(s string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		d := editDistance(s, n)
		if len(n) > 1 && len(s) >= 3 && strings.HasPrefix(n, s) {
			d = min(d, 1)
		}
		if d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// commandsAction is the Action of the app and of a command with
// subcommands: without an argument it shows the help; with one, the
// argument is not a command: an error names the closest command.
func commandsAction(c *cli.Context) error {
	root := c.Command == nil || c.Command.Name == c.App.Name
	if !c.Args().Present() {
		if root {
			return cli.ShowAppHelp(c)
		}
		return cli.ShowSubcommandHelp(c)
	}
	cmds, what, help := c.App.Commands, "unknown command", "geckohost --help"
	if !root {
		cmds = c.Command.Subcommands
		what = c.Command.FullName() + ": unknown command"
		help = "geckohost " + c.Command.FullName() + " --help"
	}
	arg := c.Args().First()
	if arg == "help" || arg == "h" { // "geckohost help serve", as without an Action
		if name := c.Args().Get(1); name != "" {
			return cli.ShowCommandHelp(c, name)
		}
		if root {
			return cli.ShowAppHelp(c)
		}
		return cli.ShowSubcommandHelp(c)
	}
	var names []string
	for _, cmd := range cmds {
		if !cmd.Hidden {
			names = append(names, cmd.Names()...)
		}
	}
	if best := closest(arg, names); best != "" {
		return fmt.Errorf("%s %q; did you mean %q? (see %s)", what, arg, best, help)
	}
	return fmt.Errorf("%s %q (see %s)", what, arg, help)
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
		Action:          commandsAction,
		// Errors are returned to run, which prints them; never exit here.
		ExitErrHandler: func(*cli.Context, error) {},
		Commands: []*cli.Command{
			serveCommand(),
			tokenCommand(),
			sessionsCommand(),
			nodesCommand(),
			benchCommand(),
			statusCommand(),
			versionCommand(),
		},
	}
	setUsageError(app.Commands)
	addExamples(app)
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

// openExistingDB opens the store named by --db for a command that only
// reads it (or changes existing rows): a path where no database exists is
// an error, not a new empty database.
func openExistingDB(c *cli.Context) (*store.DB, error) {
	p, err := dbPath(c)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no database at %s: nothing is recorded there yet (\"geckohost token add\" creates it; or pass --db PATH)", p)
	}
	return store.Open(c.Context, p)
}

// noArgs fails when a command that takes no arguments got some.
func noArgs(c *cli.Context) error {
	if c.Args().Present() {
		return fmt.Errorf("%s: unexpected argument %q (it takes none; see --help)", c.Command.FullName(), c.Args().First())
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

// jsonTime is a timestamp in JSON, as in the session records
// (domain.JSONTime): RFC 3339 UTC, or null when zero.
func jsonTime(t time.Time) *string { return domain.JSONTime(t) }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}
