package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/geckohost/geckohost/host"
)

// statusTimeout bounds the GET /status of `geckohost status`.
const statusTimeout = 10 * time.Second

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show a running geckohost serve: version, uptime, browsers, queue, sessions",
		UsageText: "geckohost status [--url http://127.0.0.1:8765/] [--json] [--ca FILE]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "url", Value: "http://127.0.0.1:8765/", Usage: "`URL` of the server (http://, https://; ws:// and wss:// are read as http:// and https://)", EnvVars: []string{"GECKOHOST_URL"}},
			&cli.BoolFlag{Name: "json", Usage: "print the server's JSON (GET /status) as is", EnvVars: []string{"GECKOHOST_JSON"}},
			caFlag(),
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			_, base, err := benchURLs(c.String("url"))
			if err != nil {
				return err
			}
			hc, err := caHTTPClient(c.String("ca"))
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(c.Context, statusTimeout)
			defer cancel()
			raw, st, err := fetchStatus(ctx, hc, base.JoinPath("status").String())
			if err != nil {
				return err
			}
			if c.Bool("json") {
				_, err := c.App.Writer.Write(raw)
				return err
			}
			return writeStatus(c.App.Writer, st)
		},
	}
}

// fetchStatus GETs url (a server's /status) with hc (nil: the default
// client) and decodes it.
func fetchStatus(ctx context.Context, hc *http.Client, url string) ([]byte, host.Status, error) {
	var st host.Status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, st, fmt.Errorf("status: %w", err)
	}
	res, err := orDefault(hc).Do(req)
	if err != nil {
		return nil, st, fmt.Errorf("status: is geckohost serve running there? %w", err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, st, fmt.Errorf("status: read %s: %w", url, err)
	}
	if res.StatusCode != http.StatusOK {
		return nil, st, fmt.Errorf("status: GET %s: %s (is it a geckohost serve?)", url, res.Status)
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, st, fmt.Errorf("status: GET %s: not a geckohost status: %w", url, err)
	}
	return raw, st, nil
}

// writeStatus prints a status as a few lines and a table of browsers.
func writeStatus(w io.Writer, st host.Status) error {
	var b strings.Builder
	fmt.Fprintf(&b, "geckohost %s", st.Version)
	var build []string
	if st.Commit != "" {
		build = append(build, "commit "+shortCommit(st.Commit))
	}
	if st.BuildDate != "" {
		build = append(build, "built "+st.BuildDate)
	}
	if len(build) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(build, ", "))
	}
	fmt.Fprintf(&b, ", up %s, ", fmtDur(time.Duration(st.Uptime*float64(time.Second))))
	if st.Ready {
		b.WriteString("ready\n")
	} else {
		fmt.Fprintf(&b, "not ready: %s\n", st.NotReady)
	}
	fmt.Fprintf(&b, "sessions: %d negotiating, %d connected\n", st.Sessions.Negotiating, st.Sessions.Connected)
	if st.Queue.Size > 0 {
		fmt.Fprintf(&b, "queue: %d waiting (at most %d, for %s each)\n", st.Queue.Depth, st.Queue.Size,
			time.Duration(st.Queue.Timeout*float64(time.Second)))
	} else {
		b.WriteString("queue: off\n")
	}
	fmt.Fprintf(&b, "workers: %d of %d\n", st.Workers, st.Capacity)
	if len(st.Browsers) > 0 {
		b.WriteString("\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "BROWSER\tPID\tSTATE\tWORKERS\tRESTARTS\tPSS")
		for _, br := range st.Browsers {
			pid, pss := "-", "-"
			if br.PID != 0 {
				pid = fmt.Sprint(br.PID)
			}
			if br.PSSBytes > 0 {
				pss = fmt.Sprintf("%.0f MiB", float64(br.PSSBytes)/(1<<20))
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d/%d\t%d\t%s\n", br.Index, pid, br.State, br.Workers, br.Capacity, br.Restarts, pss)
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("write status: %w", err)
		}
		if err := writeContents(&b, st.Browsers); err != nil {
			return err
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	return nil
}

// shortCommit is the first 12 characters of a commit hash.
func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

// writeContents writes the browsers' content processes (one per browser
// user context) as a table, if there are any.
func writeContents(w io.Writer, bs []host.BrowserStatus) error {
	n := 0
	for _, br := range bs {
		n += len(br.Contents)
	}
	if n == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BROWSER\tCONTENT PID\tTOKEN\tMEMORY\tLIMIT\tCPU\tNICED")
	for _, br := range bs {
		for _, c := range br.Contents {
			token, limit := "-", "none"
			if c.Token != 0 {
				token = fmt.Sprint(c.Token)
			}
			if c.MemoryLimitBytes > 0 {
				limit = fmt.Sprintf("%d MiB", c.MemoryLimitBytes>>20)
			}
			fmt.Fprintf(tw, "%d\t%d\t%s\t%d MiB\t%s\t%.1fs\t%v\n", br.Index, c.PID, token, c.MemoryBytes>>20, limit, c.CPUSeconds, c.Niced)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	return nil
}
