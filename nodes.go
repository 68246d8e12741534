package main

import (
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/geckohost/geckohost/cluster"
)

const redisUsage = "cluster mode: the Redis `URL` (redis://[user:pass@]host:port/db, rediss:// for TLS) the nodes share"

// redisFlag returns a fresh --redis flag for a command (a flag value can
// belong to one command only). Every command reads $GECKOHOST_REDIS, so a
// cluster's operator sets it once.
func redisFlag() cli.Flag {
	return &cli.StringFlag{Name: "redis", Usage: redisUsage, EnvVars: []string{"GECKOHOST_REDIS"}}
}

// redisURL returns the --redis of the innermost command that has it set,
// or "".
func redisURL(c *cli.Context) string {
	for _, cc := range c.Lineage() {
		if cc.Command != nil && hasFlag(cc.Command.Flags, "redis") && cc.IsSet("redis") {
			if u := cc.String("redis"); u != "" {
				return u
			}
		}
	}
	return ""
}

// openCluster connects to the Redis named by --redis.
func openCluster(c *cli.Context) (*cluster.Client, error) {
	u := redisURL(c)
	if u == "" {
		return nil, errors.New("--redis URL is required (or $GECKOHOST_REDIS)")
	}
	return cluster.Open(c.Context, u)
}

func nodesCommand() *cli.Command {
	return &cli.Command{
		Name:  "nodes",
		Usage: "list the live nodes of a cluster (serve --redis) with their state and load",
		Flags: []cli.Flag{
			redisFlag(),
			&cli.BoolFlag{Name: "json", Usage: "print JSON instead of a table", EnvVars: []string{"GECKOHOST_JSON"}},
		},
		Action: nodesList,
	}
}

type nodeJSON struct {
	ID          string  `json:"id"`
	State       string  `json:"state"`
	Addr        string  `json:"addr"`
	Version     string  `json:"version"`
	Engine      string  `json:"engine"`
	Browsers    int     `json:"browsers"`
	Workers     int     `json:"workers"`
	Capacity    int     `json:"capacity"`
	Relayed     int     `json:"relayed"`
	Negotiating int     `json:"negotiating"`
	Started     *string `json:"started"`
	HeartbeatMS int64   `json:"heartbeat_ms"` // since the last heartbeat
}

func nodesList(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	cl, err := openCluster(c)
	if err != nil {
		return err
	}
	defer func() { _ = cl.Close() }()
	nodes, err := cl.Nodes(c.Context)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		out := make([]nodeJSON, 0, len(nodes))
		for _, n := range nodes {
			out = append(out, nodeJSON{ID: n.ID, State: n.State, Addr: n.Addr, Version: n.Version, Engine: n.Engine, Browsers: n.Browsers,
				Workers: n.Workers, Capacity: n.Capacity, Relayed: n.Relayed, Negotiating: n.Negotiating,
				Started: jsonTime(n.Started), HeartbeatMS: n.Age.Milliseconds()})
		}
		return writeJSON(c.App.Writer, out)
	}
	if len(nodes) == 0 {
		fmt.Fprintf(c.App.ErrWriter, "geckohost: no live nodes in %s; start one with: geckohost serve --redis URL\n", cl)
		return nil
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tENGINE\tWORKERS\tCAPACITY\tBROWSERS\tRELAYED\tNEGOTIATING\tHEARTBEAT\tUP\tADDR\tVERSION")
	now := time.Now()
	for _, n := range nodes {
		up := "-"
		if !n.Started.IsZero() {
			up = fmtDur(now.Sub(n.Started))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s ago\t%s\t%s\t%s\n", n.ID, n.State, orDash(n.Engine), n.Workers, n.Capacity, n.Browsers,
			n.Relayed, n.Negotiating, fmtDur(n.Age), up, orDash(n.Addr), orDash(n.Version))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write node list: %w", err)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
