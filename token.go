package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/geckohost/geckohost/domain"
)

func tokenCommand() *cli.Command {
	return &cli.Command{
		Name:  "token",
		Usage: "manage the bearer tokens clients authenticate with",
		Flags: []cli.Flag{dbFlag(), redisFlag()},
		// A wrong subcommand names the closest one.
		Action: commandsAction,
		Subcommands: []*cli.Command{
			{
				Name:      "add",
				Usage:     "create a token and print it (alone, once) on stdout",
				UsageText: "geckohost token add --name NAME [--expires 720h] [--source PATTERN]... [--max-workers N] [--rate N/DURATION] [--worker-memory SIZE] [--worker-max-lifetime DURATION]",
				Flags: []cli.Flag{
					dbFlag(),
					redisFlag(),
					&cli.StringFlag{Name: "name", Usage: "unique token `NAME` (letters, digits, . _ - @; not only digits); required", EnvVars: []string{"GECKOHOST_TOKEN_NAME"}},
					&cli.StringFlag{Name: "expires", Usage: "validity `DURATION` such as 720h, 90m or 30d; empty or 0: never expires", EnvVars: []string{"GECKOHOST_TOKEN_EXPIRES"}},
					&cli.StringSliceFlag{Name: "source", Usage: "allow worker sources only from this origin `PATTERN` (repeatable), e.g. https://example.com, http://127.0.0.1:* or https://*.example.com; none: only the server's --allow-source list applies", EnvVars: []string{"GECKOHOST_TOKEN_SOURCE"}},
					&cli.IntFlag{Name: "max-workers", Usage: "at most `N` concurrent workers for this token; 0: unlimited", EnvVars: []string{"GECKOHOST_TOKEN_MAX_WORKERS"}},
					&cli.StringFlag{Name: "worker-memory", Usage: "this token's own memory limit `SIZE` per browser (such as 256MiB; overrides serve --worker-memory); empty or 0: the server's", EnvVars: []string{"GECKOHOST_TOKEN_WORKER_MEMORY"}},
					&cli.DurationFlag{Name: "worker-max-lifetime", Usage: "this token's own maximum worker lifetime `DURATION` (overrides serve --worker-max-lifetime); 0: the server's", EnvVars: []string{"GECKOHOST_TOKEN_WORKER_MAX_LIFETIME"}},
					&cli.StringFlag{Name: "rate", Usage: "rate limit `N/DURATION`: at most N workers started for this token in any DURATION (a Go duration or whole days), e.g. 60/1m, 10/1s or 1000/1d; N up to 1000000, DURATION 1s to 30d; empty: unlimited", EnvVars: []string{"GECKOHOST_TOKEN_RATE"}},
				},
				Action: tokenAdd,
			},
			{
				Name:  "list",
				Usage: "list tokens (never the secrets; a short prefix is shown)",
				Flags: []cli.Flag{
					dbFlag(),
					redisFlag(),
					&cli.BoolFlag{Name: "json", Usage: "print JSON instead of a table", EnvVars: []string{"GECKOHOST_JSON"}},
				},
				Action: tokenList,
			},
			{
				Name:      "revoke",
				Usage:     "revoke a token by id or name",
				UsageText: "geckohost token revoke ID|NAME [--db PATH | --redis URL]",
				ArgsUsage: "ID|NAME",
				Flags:     []cli.Flag{dbFlag(), redisFlag()},
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

// parseRate parses --rate: N/DURATION, DURATION a Go duration or whole days;
// "" means no rate limit.
func parseRate(s string) (domain.Rate, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return domain.Rate{}, nil
	}
	count, window, ok := strings.Cut(s, "/")
	if !ok {
		return domain.Rate{}, fmt.Errorf("malformed --rate %q: no slash; %s", s, rateUsage)
	}
	n, err := strconv.Atoi(strings.TrimSpace(count))
	if err != nil {
		return domain.Rate{}, fmt.Errorf("malformed --rate %q: count %q is not a whole number; %s", s, count, rateUsage)
	}
	d, err := parseDurationOrDays(strings.TrimSpace(window))
	if err != nil {
		return domain.Rate{}, fmt.Errorf("malformed --rate %q: %q is not a duration; %s", s, window, rateUsage)
	}
	r := domain.Rate{Count: n, Window: d}
	if err := r.Validate(); err != nil {
		why := strings.TrimSuffix(err.Error(), ": "+domain.ErrInvalid.Error())
		return domain.Rate{}, fmt.Errorf("malformed --rate %q: %s", s, why)
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
	var mem int64
	if v := c.String("worker-memory"); v != "" {
		if mem, err = parseSize(v); err != nil {
			return fmt.Errorf("--worker-memory: %w", err)
		}
	}
	db, err := openTokenStore(c, openDB)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	tok, secret, err := db.AddToken(c.Context, domain.NewToken{
		Name:       c.String("name"),
		TTL:        ttl,
		Sources:    c.StringSlice("source"),
		MaxWorkers: c.Int("max-workers"),
		Rate:       rate,

		WorkerMemory:   mem,
		WorkerLifetime: c.Duration("worker-max-lifetime"),
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
func status(t domain.Token, now time.Time) string {
	switch {
	case !t.Revoked.IsZero():
		return "revoked"
	case !t.Expires.IsZero() && !now.Before(t.Expires):
		return "expired"
	}
	return "active"
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
	// WorkerMemory (bytes) and WorkerLifetimeMS: the token's own limits
	// (0: the server's).
	WorkerMemory     int64 `json:"worker_memory"`
	WorkerLifetimeMS int64 `json:"worker_lifetime_ms"`
}

type rateJSON struct {
	Count    int   `json:"count"`
	WindowMS int64 `json:"window_ms"`
}

// jsonRate is a token's rate limit in JSON, or nil when it has none.
func jsonRate(r domain.Rate) *rateJSON {
	if r.IsZero() {
		return nil
	}
	return &rateJSON{Count: r.Count, WindowMS: r.Window.Milliseconds()}
}

func tokenList(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	db, err := openTokenStore(c, openExistingDB)
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
				LastUsed: jsonTime(t.LastUsed), Sources: src, MaxWorkers: t.MaxWorkers, Rate: jsonRate(t.Rate),
				WorkerMemory: t.WorkerMemory, WorkerLifetimeMS: t.WorkerLifetime.Milliseconds()})
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

func tokenRevoke(c *cli.Context) error {
	if c.NArg() != 1 {
		return errors.New("token revoke: give exactly one ID or NAME (see --help)")
	}
	db, err := openTokenStore(c, openExistingDB)
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

// rateUsage ends every --rate error.
const rateUsage = "want N/DURATION such as 60/1m, 10/1s or 1000/1d (N from 1 to 1000000, DURATION from 1s to 30d)"
