package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/geckohost/geckohost/store"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

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

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version",
		Flags: []cli.Flag{dbFlag()},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			rev := ""
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" {
						rev = " " + s.Value
					}
				}
			}
			fmt.Fprintf(c.App.Writer, "geckohost %s%s %s %s/%s\n", version, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}

func tokenCommand() *cli.Command {
	return &cli.Command{
		Name:  "token",
		Usage: "manage the bearer tokens clients authenticate with",
		Flags: []cli.Flag{dbFlag()},
		Subcommands: []*cli.Command{
			{
				Name:      "add",
				Usage:     "create a token and print it (alone, once) on stdout",
				UsageText: "geckohost token add --name NAME [--expires 720h] [--source PATTERN]... [--max-workers N] [--rate N/DURATION]",
				Flags: []cli.Flag{
					dbFlag(),
					&cli.StringFlag{Name: "name", Usage: "unique token `NAME` (letters, digits, . _ - @; not only digits); required", EnvVars: []string{"GECKOHOST_TOKEN_NAME"}},
					&cli.StringFlag{Name: "expires", Usage: "validity `DURATION` such as 720h, 90m or 30d; empty or 0: never expires", EnvVars: []string{"GECKOHOST_TOKEN_EXPIRES"}},
					&cli.StringSliceFlag{Name: "source", Usage: "allow worker sources only from this origin `PATTERN` (repeatable), e.g. https://example.com, http://127.0.0.1:* or https://*.example.com; none: only the server's --allow-source list applies", EnvVars: []string{"GECKOHOST_TOKEN_SOURCE"}},
					&cli.IntFlag{Name: "max-workers", Usage: "most concurrent workers for this token; 0: unlimited", EnvVars: []string{"GECKOHOST_TOKEN_MAX_WORKERS"}},
					&cli.StringFlag{Name: "rate", Usage: "rate limit `N/DURATION`: at most N workers started for this token in any DURATION (a Go duration or whole days), e.g. 60/1m, 10/1s or 1000/1d; N up to 1000000, DURATION 1s to 30d; empty: unlimited", EnvVars: []string{"GECKOHOST_TOKEN_RATE"}},
				},
				Action: tokenAdd,
			},
			{
				Name:  "list",
				Usage: "list tokens (never the secrets; a short prefix is shown)",
				Flags: []cli.Flag{
					dbFlag(),
					&cli.BoolFlag{Name: "json", Usage: "print JSON instead of a table", EnvVars: []string{"GECKOHOST_JSON"}},
				},
				Action: tokenList,
			},
			{
				Name:      "revoke",
				Usage:     "revoke a token by id or name",
				UsageText: "geckohost token revoke [--db PATH] ID|NAME",
				ArgsUsage: "ID|NAME",
				Flags:     []cli.Flag{dbFlag()},
				Action:    tokenRevoke,
			},
		},
	}
}

// parseExpires parses --expires: a Go duration (720h, 90m) or whole days
// (30d); "", "0" and "never" mean no expiry.
func parseExpires(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" || s == "never" {
		return 0, nil
	}
	d, err := parseDurationOrDays(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("malformed --expires %q: want a positive duration such as 720h, 90m or 30d", s)
	}
	return d, nil
}

// parseDurationOrDays parses a Go duration (720h, 90m) or whole days (30d,
// at most 100000).
func parseDurationOrDays(s string) (time.Duration, error) {
	days, ok := strings.CutSuffix(s, "d")
	if !ok {
		return time.ParseDuration(s)
	}
	n, err := strconv.ParseInt(days, 10, 32)
	if err != nil {
		return 0, err
	}
	if n > 100000 { // keeps the product within time.Duration (about 292 years)
		return 0, errors.New("too many days")
	}
	return time.Duration(n) * 24 * time.Hour, nil
}

// rateUsage ends every --rate error.
const rateUsage = "want N/DURATION such as 60/1m, 10/1s or 1000/1d (N from 1 to 1000000, DURATION from 1s to 30d)"

// parseRate parses --rate: N/DURATION, DURATION a Go duration or whole days;
// "" means no rate limit.
func parseRate(s string) (store.Rate, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return store.Rate{}, nil
	}
	count, window, ok := strings.Cut(s, "/")
	if !ok {
		return store.Rate{}, fmt.Errorf("malformed --rate %q: no slash; %s", s, rateUsage)
	}
	n, err := strconv.Atoi(strings.TrimSpace(count))
	if err != nil {
		return store.Rate{}, fmt.Errorf("malformed --rate %q: count %q is not a whole number; %s", s, count, rateUsage)
	}
	d, err := parseDurationOrDays(strings.TrimSpace(window))
	if err != nil {
		return store.Rate{}, fmt.Errorf("malformed --rate %q: %q is not a duration; %s", s, window, rateUsage)
	}
	r := store.Rate{Count: n, Window: d}
	if err := r.Validate(); err != nil {
		why := strings.TrimSuffix(err.Error(), ": "+store.ErrInvalid.Error())
		return store.Rate{}, fmt.Errorf("malformed --rate %q: %s", s, why)
	}
	return r, nil
}

func tokenAdd(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	if c.String("name") == "" {
		return errors.New("token add: --name NAME is required")
	}
	ttl, err := parseExpires(c.String("expires"))
	if err != nil {
		return err
	}
	rate, err := parseRate(c.String("rate"))
	if err != nil {
		return err
	}
	db, err := openDB(c)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	tok, secret, err := db.AddToken(c.Context, store.NewToken{
		Name:       c.String("name"),
		TTL:        ttl,
		Sources:    c.StringSlice("source"),
		MaxWorkers: c.Int("max-workers"),
		Rate:       rate,
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, secret)
	fmt.Fprintf(c.App.ErrWriter, "geckohost: created token %q (id %d, expires %s) in %s\n", tok.Name, tok.ID, fmtTime(tok.Expires, "never"), db.Path())
	fmt.Fprintln(c.App.ErrWriter, "geckohost: the token above is shown only this once; store it now")
	return nil
}

// status says whether a token can be used now.
func status(t store.Token, now time.Time) string {
	switch {
	case !t.Revoked.IsZero():
		return "revoked"
	case !t.Expires.IsZero() && !now.Before(t.Expires):
		return "expired"
	}
	return "active"
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

type tokenJSON struct {
	ID         int64     `json:"id"`
	Name       string    `json:"name"`
	Prefix     string    `json:"prefix"`
	Status     string    `json:"status"`
	Created    *string   `json:"created"`
	Expires    *string   `json:"expires"`
	Revoked    *string   `json:"revoked"`
	LastUsed   *string   `json:"last_used"`
	Sources    []string  `json:"sources"`
	MaxWorkers int       `json:"max_workers"`
	Rate       *rateJSON `json:"rate"` // null: unlimited
}

type rateJSON struct {
	Count    int   `json:"count"`
	WindowMS int64 `json:"window_ms"`
}

// jsonRate is a token's rate limit in JSON, or nil when it has none.
func jsonRate(r store.Rate) *rateJSON {
	if r.IsZero() {
		return nil
	}
	return &rateJSON{Count: r.Count, WindowMS: r.Window.Milliseconds()}
}

func tokenList(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	db, err := openDB(c)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	toks, err := db.ListTokens(c.Context)
	if err != nil {
		return err
	}
	now := time.Now()
	if c.Bool("json") {
		out := make([]tokenJSON, 0, len(toks))
		for _, t := range toks {
			src := t.Sources
			if src == nil {
				src = []string{}
			}
			out = append(out, tokenJSON{ID: t.ID, Name: t.Name, Prefix: t.Prefix, Status: status(t, now),
				Created: jsonTime(t.Created), Expires: jsonTime(t.Expires), Revoked: jsonTime(t.Revoked),
				LastUsed: jsonTime(t.LastUsed), Sources: src, MaxWorkers: t.MaxWorkers, Rate: jsonRate(t.Rate)})
		}
		return writeJSON(c.App.Writer, out)
	}
	if len(toks) == 0 {
		fmt.Fprintf(c.App.ErrWriter, "geckohost: no tokens in %s; create one with: geckohost token add --name NAME\n", db.Path())
		return nil
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tSTATUS\tCREATED\tEXPIRES\tLAST USED\tMAX WORKERS\tRATE\tSOURCES")
	for _, t := range toks {
		maxw := "-"
		if t.MaxWorkers > 0 {
			maxw = strconv.Itoa(t.MaxWorkers)
		}
		rate := "-"
		if !t.Rate.IsZero() {
			rate = t.Rate.String()
		}
		src := "-"
		if len(t.Sources) > 0 {
			src = strings.Join(t.Sources, ",")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s…\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Prefix, status(t, now),
			fmtTime(t.Created, "-"), fmtTime(t.Expires, "never"), fmtTime(t.LastUsed, "never"), maxw, rate, src)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write token list: %w", err)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

func tokenRevoke(c *cli.Context) error {
	if c.NArg() != 1 {
		return errors.New("token revoke: give exactly one ID or NAME (flags go before it; see --help)")
	}
	db, err := openDB(c)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	t, err := db.RevokeToken(c.Context, c.Args().First())
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.ErrWriter, "geckohost: token %q (id %d) revoked at %s\n", t.Name, t.ID, fmtTime(t.Revoked, "-"))
	return nil
}

func sessionsCommand() *cli.Command {
	return &cli.Command{
		Name:  "sessions",
		Usage: "list worker sessions, newest first, with their durations",
		Flags: []cli.Flag{
			dbFlag(),
			&cli.StringFlag{Name: "token", Usage: "only sessions of the token `NAME`", EnvVars: []string{"GECKOHOST_SESSIONS_TOKEN"}},
			&cli.IntFlag{Name: "limit", Value: 50, Usage: "show at most `N` sessions", EnvVars: []string{"GECKOHOST_SESSIONS_LIMIT"}},
			&cli.BoolFlag{Name: "json", Usage: "print JSON instead of a table", EnvVars: []string{"GECKOHOST_JSON"}},
		},
		Action: sessionsList,
	}
}

type sessionJSON struct {
	WorkerID   string  `json:"worker_id"`
	TokenID    int64   `json:"token_id"`
	TokenName  string  `json:"token_name"`
	Source     string  `json:"source"`
	RemoteAddr string  `json:"remote_addr"`
	Origin     string  `json:"origin"`
	Engine     string  `json:"engine"`
	State      string  `json:"state"`
	Errno      int     `json:"errno"`
	Reason     string  `json:"reason"`
	Created    *string `json:"created"`
	Answered   *string `json:"answered"`
	Connected  *string `json:"connected"`
	Ended      *string `json:"ended"`
	EndReason  string  `json:"end_reason"`
	// Durations in milliseconds; null when the later event has not happened.
	AnswerMS   *int64 `json:"answer_ms"`   // created → answered
	ConnectMS  *int64 `json:"connect_ms"`  // answered → connected
	DurationMS *int64 `json:"duration_ms"` // created → ended
}

// between returns b-a, or false when either is zero.
func between(a, b time.Time) (time.Duration, bool) {
	if a.IsZero() || b.IsZero() {
		return 0, false
	}
	return b.Sub(a), true
}

func ms(a, b time.Time) *int64 {
	d, ok := between(a, b)
	if !ok {
		return nil
	}
	n := d.Milliseconds()
	return &n
}

// fmtDur formats a duration compactly: 12ms, 1.5s, 3m4s, 2h5m.
func fmtDur(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
}

func fmtBetween(a, b time.Time) string {
	if d, ok := between(a, b); ok {
		return fmtDur(d)
	}
	return "-"
}

func sessionsList(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	limit := c.Int("limit")
	if limit < 1 {
		return fmt.Errorf("--limit %d: want 1 or more", limit)
	}
	db, err := openDB(c)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	ss, err := db.ListSessions(c.Context, store.SessionFilter{TokenName: c.String("token"), Limit: limit})
	if err != nil {
		return err
	}
	if c.Bool("json") {
		out := make([]sessionJSON, 0, len(ss))
		for _, s := range ss {
			out = append(out, sessionJSON{WorkerID: s.WorkerID, TokenID: s.TokenID, TokenName: s.TokenName,
				Source: s.Source, RemoteAddr: s.RemoteAddr, Origin: s.Origin, Engine: s.Engine, State: s.State,
				Errno: s.Errno, Reason: s.Reason, Created: jsonTime(s.Created), Answered: jsonTime(s.Answered),
				Connected: jsonTime(s.Connected), Ended: jsonTime(s.Ended), EndReason: s.EndReason,
				AnswerMS: ms(s.Created, s.Answered), ConnectMS: ms(s.Answered, s.Connected), DurationMS: ms(s.Created, s.Ended)})
		}
		return writeJSON(c.App.Writer, out)
	}
	if len(ss) == 0 {
		fmt.Fprintln(c.App.ErrWriter, "geckohost: no sessions")
		return nil
	}
	now := time.Now()
	tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CREATED\tWORKER\tTOKEN\tSTATE\tANSWER\tCONNECT\tDURATION\tEND\tERRNO\tSOURCE")
	for _, s := range ss {
		dur := fmtBetween(s.Created, s.Ended)
		if s.Ended.IsZero() && !s.Created.IsZero() {
			dur = fmtDur(now.Sub(s.Created)) + "+"
		}
		errno, end := "-", "-"
		if s.Errno != 0 {
			errno = strconv.Itoa(s.Errno)
		}
		if s.EndReason != "" {
			end = s.EndReason
		}
		tok := s.TokenName
		if tok == "" {
			tok = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", fmtTime(s.Created, "-"), s.WorkerID, tok, s.State,
			fmtBetween(s.Created, s.Answered), fmtBetween(s.Answered, s.Connected), dur, end, errno, s.Source)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write session list: %w", err)
	}
	return nil
}
