package main

import (
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/geckohost/geckohost/store"
)

// clusterSessionJSON is a session of the cluster's stream in JSON.
type clusterSessionJSON struct {
	sessionJSON
	// Front is the node that held the client's WebSocket.
	Front string `json:"front"`
}

// sessionsListRedis lists the cluster's ended sessions (serve --redis),
// newest first.
func sessionsListRedis(c *cli.Context, limit int) error {
	cl, err := openCluster(c)
	if err != nil {
		return err
	}
	defer func() { _ = cl.Close() }()
	recs, err := cl.Sessions(c.Context, store.SessionFilter{TokenName: c.String("token"), Limit: limit})
	if err != nil {
		return err
	}
	if c.Bool("json") {
		out := make([]clusterSessionJSON, 0, len(recs))
		for _, r := range recs {
			s := r.Session
			out = append(out, clusterSessionJSON{Front: r.Front, sessionJSON: sessionJSON{WorkerID: s.WorkerID, TokenID: s.TokenID,
				TokenName: s.TokenName, Source: s.Source, RemoteAddr: s.RemoteAddr, Origin: s.Origin, Engine: s.Engine,
				State: s.State, Errno: s.Errno, Reason: s.Reason, Created: jsonTime(s.Created), Answered: jsonTime(s.Answered),
				Connected: jsonTime(s.Connected), Ended: jsonTime(s.Ended), EndReason: s.EndReason, NodeID: s.NodeID,
				AnswerMS: ms(s.Created, s.Answered), ConnectMS: ms(s.Answered, s.Connected), DurationMS: ms(s.Created, s.Ended)}})
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
