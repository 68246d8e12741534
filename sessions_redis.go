package main

import (
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/geckohost/geckohost/cluster"
	"github.com/geckohost/geckohost/domain"
)

// sessionsListRedis lists the cluster's ended sessions (serve --redis),
// newest first.
func sessionsListRedis(c *cli.Context, limit int) error {
	cl, err := openCluster(c)
	if err != nil {
		return err
	}
	defer func() { _ = cl.Close() }()
	recs, err := cl.Sessions(c.Context, domain.SessionFilter{TokenName: c.String("token"), Limit: limit})
	if err != nil {
		return err
	}
	if c.Bool("json") {
		out := make([]cluster.RecordJSON, 0, len(recs))
		for _, r := range recs {
			out = append(out, r.JSON())
		}
		return writeJSON(c.App.Writer, out)
	}
	if len(recs) == 0 {
		fmt.Fprintf(c.App.ErrWriter, "geckohost: no ended sessions in %s\n", cl)
		return nil
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CREATED\tWORKER\tTOKEN\tNODE\tFRONT\tANSWER\tCONNECT\tDURATION\tEND\tERRNO\tSOURCE")
	for _, r := range recs {
		s := r.Session
		errno := "-"
		if s.Errno != 0 {
			errno = strconv.Itoa(s.Errno)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", fmtTime(s.Created, "-"), s.WorkerID, orDash(s.TokenName),
			orDash(s.NodeID), orDash(r.Front), fmtBetween(s.Created, s.Answered), fmtBetween(s.Answered, s.Connected),
			fmtBetween(s.Created, s.Ended), orDash(s.EndReason), errno, s.Source)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write session list: %w", err)
	}
	return nil
}
