package main

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/internal/serverun"
	"github.com/geckohost/geckohost/store"
)

func sessionsCommand() *cli.Command {
	return &cli.Command{
		Name:  "sessions",
		Usage: "list worker sessions, newest first, with their durations",
		Flags: []cli.Flag{
			dbFlag(),
			redisFlag(),
			&cli.StringFlag{Name: "token", Usage: "only sessions of the token `NAME`", EnvVars: []string{"GECKOHOST_SESSIONS_TOKEN"}},
			&cli.IntFlag{Name: "limit", Value: 50, Usage: "show at most `N` sessions", EnvVars: []string{"GECKOHOST_SESSIONS_LIMIT"}},
			&cli.BoolFlag{Name: "json", Usage: "print JSON instead of a table", EnvVars: []string{"GECKOHOST_JSON"}},
		},
		Action: sessionsList,
		Subcommands: []*cli.Command{{
			Name:      "prune",
			Usage:     "delete the session records that ended (or, never ended, began) more than DURATION ago",
			UsageText: "geckohost sessions prune --older-than DURATION",
			Flags: []cli.Flag{
				dbFlag(),
				&cli.StringFlag{Name: "older-than", Usage: "delete records older than this `DURATION` (720h, 90m, 30d)"},
			},
			Action: sessionsPrune,
		}},
	}
}

func sessionsPrune(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	if !c.IsSet("older-than") {
		return fmt.Errorf("sessions prune: --older-than DURATION is required (e.g. 720h or 30d)")
	}
	s := strings.TrimSpace(c.String("older-than"))
	d, err := parseDurationOrDays(s)
	if err != nil || d <= 0 {
		return fmt.Errorf("--older-than %q: want a positive duration such as 720h, 90m or 30d", s)
	}
	db, err := openDB(c)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	n, err := db.PruneSessions(c.Context, time.Now().Add(-d))
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.ErrWriter, "geckohost: %d session records deleted\n", n)
	return nil
}

// between returns b-a, or false when either is zero.
func between(a, b time.Time) (time.Duration, bool) {
	if a.IsZero() || b.IsZero() {
		return 0, false
	}
	return b.Sub(a), true
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
	if redisURL(c) != "" {
		return sessionsListRedis(c, limit)
	}
	db, err := openExistingDB(c)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	// A session of a serve run that died is not running: end it in the
	// records (host-restart), or, when they take no writes, in the list.
	_, reapErr := serverun.EndDead(c.Context, db, "")
	ss, err := db.ListSessions(c.Context, domain.SessionFilter{TokenName: c.String("token"), Limit: limit})
	if err != nil {
		return err
	}
	if reapErr != nil {
		ss = serverun.ShowEnded(c.Context, db, ss)
	}
	if name := c.String("token"); name != "" && len(ss) == 0 {
		if err := tokenExists(c, db, name); err != nil {
			return err
		}
	}
	if c.Bool("json") {
		out := make([]domain.SessionJSON, 0, len(ss))
		for _, s := range ss {
			out = append(out, s.JSON())
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

// tokenExists fails when the store has no token called name.
func tokenExists(c *cli.Context, db *store.DB, name string) error {
	toks, err := db.ListTokens(c.Context)
	if err != nil {
		return err
	}
	for _, t := range toks {
		if t.Name == name {
			return nil
		}
	}
	return fmt.Errorf("sessions --token %s: there is no token named %q (see geckohost token list)", name, name)
}
