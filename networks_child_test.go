package main

// The processes the network tests start inside their namespaces are this
// test binary, re-executed with GECKOHOST_TEST_CHILD set: "cli" runs the
// geckohost command line (serve), "client" runs client jobs (stock
// Chromium, stock Firefox, the Go client) and prints their results as
// JSON on stdout.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pion/webrtc/v4"

	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/gecko"
	"github.com/geckohost/geckohost/gecko/bidi"
	"github.com/geckohost/geckohost/host/client"
	"github.com/geckohost/geckohost/internal/browsers"
)

const (
	childEnv  = "GECKOHOST_TEST_CHILD" // "cli", "client" or "floor"
	childArgs = "GECKOHOST_TEST_ARGS"  // cli: the JSON list of arguments
	childJobs = "GECKOHOST_TEST_JOBS"  // client: the JSON list of jobs
)

// clientJob is one client connecting Runs times, one after the other, to
// the echo worker of the geckohost whose demo page is Page.
type clientJob struct {
	Client string // "chromium", "firefox" or "go"
	Page   string // http://host:port/
	Token  string
	Runs   int
	// NoICEServers connects without asking GET /ice-servers (no TURN).
	NoICEServers bool
	// CA is a PEM CA certificate file the client trusts, as a user makes
	// it trusted (Chromium: in the NSS database of its HOME; the Go
	// client: Options.HTTPClient), for an https:// Page.
	CA string
}

// runResult is one connection's outcome.
type runResult struct {
	Echo     string    `json:"echo"`
	WorkerID string    `json:"workerId"`
	Errno    int       `json:"errno"`
	Name     string    `json:"name"`
	Reason   string    `json:"reason"`
	Path     *pathInfo `json:"path"`
	// RemoteTypes are the types of the worker's candidates the browser
	// was sent ("host", "relay", ...).
	RemoteTypes []string `json:"remoteTypes"`
	Timings     struct {
		Answer      float64 `json:"answer"`
		Connected   float64 `json:"connected"`
		ChannelOpen float64 `json:"channelOpen"`
	} `json:"timings"`
	// MS is the time from the connect call to its result.
	MS float64 `json:"ms"`
}

// pathInfo is the candidate pair in use, as geckohost.js's selectedPath
// gives it.
type pathInfo struct {
	Local         string `json:"local"`
	Remote        string `json:"remote"`
	Protocol      string `json:"protocol"`
	RelayProtocol string `json:"relayProtocol"`
	LocalAddress  string `json:"localAddress"`
	RemoteAddress string `json:"remoteAddress"`
}

// runChild runs a re-executed child; it returns the exit code.
func runChild() int {
	ctx, stop := context.WithTimeout(context.Background(), 5*time.Minute)
	defer stop()
	switch os.Getenv(childEnv) {
	case "cli":
		var args []string
		if err := json.Unmarshal([]byte(os.Getenv(childArgs)), &args); err != nil {
			fmt.Fprintln(os.Stderr, "child: bad args:", err)
			return 2
		}
		// As main does: SIGINT or SIGTERM cancels the command's context.
		sctx, stopSignals := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stopSignals()
		return run(sctx, append([]string{"geckohost"}, args...), os.Stdout, os.Stderr)
	case "client":
		var jobs []clientJob
		if err := json.Unmarshal([]byte(os.Getenv(childJobs)), &jobs); err != nil {
			fmt.Fprintln(os.Stderr, "child: bad jobs:", err)
			return 2
		}
		out, err := runJobs(ctx, jobs)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 1
		}
		b, _ := json.Marshal(out)
		fmt.Println(string(b))
		return 0
	case "floor":
		return runFloorChild(ctx)
	}
	fmt.Fprintln(os.Stderr, "child: unknown", childEnv)
	return 2
}

// runJobs runs the jobs in order, with one Chromium and one Firefox for
// all, started when first needed; out[i] holds job i's results.
func runJobs(ctx context.Context, jobs []clientJob) (out [][]runResult, err error) {
	var (
		chrome *stockChromium
		ff     *stockFirefox
	)
	defer func() {
		if chrome != nil {
			chrome.close()
		}
		if ff != nil {
			ff.close()
		}
	}()
	for _, j := range jobs {
		var rs []runResult
		for range max(j.Runs, 1) {
			var r runResult
			switch j.Client {
			case "chromium":
				if chrome == nil {
					if chrome, err = startStockChromium(ctx, j.CA); err != nil {
						return nil, err
					}
				}
				r, err = chrome.connect(ctx, j)
			case "firefox":
				if ff == nil {
					if ff, err = startStockFirefox(ctx); err != nil {
						return nil, err
					}
				}
				r, err = ff.connect(ctx, j)
			case "go":
				r, err = goConnect(ctx, j)
			default:
				err = fmt.Errorf("unknown client %q", j.Client)
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", j.Client, err)
			}
			rs = append(rs, r)
		}
		out = append(out, rs)
	}
	return out, nil
}

// connectJS is the body of an async function run in a browser page on the
// geckohost's own origin: geckohost.js connects (with its defaults, or no
// ICE servers), one echo, the path, close; the result as JSON.
func connectJS(j clientJob) string {
	opts := fmt.Sprintf(`{ token: %q, source: %q, timeout: 40000, onEvent }`, j.Token, j.Page+"workers/echo.js")
	if j.NoICEServers {
		opts = fmt.Sprintf(`{ token: %q, source: %q, timeout: 40000, onEvent, iceServers: [] }`, j.Token, j.Page+"workers/echo.js")
	}
	return `
		const m = await import("/geckohost.js");
		const remoteTypes = [];
		const onEvent = (step, d) => {
			if (step !== "remote-candidate" || !d.candidate) return;
			const f = d.candidate.split(" ");
			if (f.length >= 8 && !remoteTypes.includes(f[7])) remoteTypes.push(f[7]);
		};
		const t0 = performance.now();
		try {
			const s = await m.connect(` + opts + `);
			const ms = performance.now() - t0;
			const echo = await new Promise((resolve, reject) => {
				const t = setTimeout(() => reject(new Error("no echo within 10 s")), 10000);
				s.channel.onmessage = (e) => { clearTimeout(t); resolve(e.data); };
				s.channel.send("hello over the network");
			});
			// The worker's candidates in its answer count too (it sends those
			// gathered before it answered there, not trickled).
			for (const l of (s.pc.remoteDescription ? s.pc.remoteDescription.sdp : "").split(/\r?\n/)) {
				const f = l.split(" ");
				if (l.startsWith("a=candidate:") && f.length >= 8 && !remoteTypes.includes(f[7])) remoteTypes.push(f[7]);
			}
			const path = await s.path();
			s.close();
			return JSON.stringify({ echo, workerId: s.workerId, path, timings: s.timings, ms, remoteTypes });
		} catch (e) {
			return JSON.stringify({ errno: e.errno || 0, name: e.name || "", reason: e.reason || String(e && e.message || e), workerId: e.workerId || "", ms: performance.now() - t0 });
		}`
}

func decodeResult(s string) (runResult, error) {
	var r runResult
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return r, fmt.Errorf("decode %q: %w", s, err)
	}
	return r, nil
}

// stockChromium is headless Chromium as a user has it: only what a root
// CI needs (no sandbox, no first-run UI) is added; mDNS hiding of host
// candidates and every other default stay. (Not even
// --allow-loopback-in-peer-connection: on a machine with a network,
// Chromium reaches a worker's 127.0.0.1 from its wildcard socket without
// it, and the worker learns it peer-reflexive.)
type stockChromium struct {
	tab                 context.Context
	cancelTab, cancelEA context.CancelFunc
	home                string // the HOME with the NSS database trusting a CA ("": none)
}

// startStockChromium starts Chromium; with ca (a PEM CA file), in a HOME
// whose NSS database trusts it, as `certutil -A` does for a user.
func startStockChromium(ctx context.Context, ca string) (*stockChromium, error) {
	if _, err := os.Stat(browsers.ChromiumPath); err != nil {
		return nil, fmt.Errorf("chromium: %w", err)
	}
	opts := browsers.ChromiumOptions()
	c := &stockChromium{}
	if ca != "" {
		home, err := nssHome(ctx, ca)
		if err != nil {
			return nil, err
		}
		c.home = home
		opts = append(opts, chromedp.Env("HOME="+home))
	}
	var actx context.Context
	actx, c.cancelEA = chromedp.NewExecAllocator(context.Background(), opts...)
	c.tab, c.cancelTab = chromedp.NewContext(actx)
	done := make(chan error, 1)
	go func() { done <- chromedp.Do(c.tab) }()
	select {
	case err := <-done:
		if err != nil {
			c.close()
			return nil, fmt.Errorf("start chromium: %w", err)
		}
	case <-ctx.Done():
		c.close()
		return nil, fmt.Errorf("start chromium: %w", ctx.Err())
	}
	return c, nil
}

func (c *stockChromium) connect(ctx context.Context, j clientJob) (runResult, error) {
	tctx, cancel := context.WithCancel(c.tab)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	if _, err := chromedp.Run(tctx, chromedp.Navigate(j.Page)); err != nil {
		return runResult{}, fmt.Errorf("open %s: %w", j.Page, err)
	}
	s, err := chromedp.Run(tctx, chromedp.Evaluate[string]("(async () => { "+connectJS(j)+" })()", chromedp.EvalAwaitPromise))
	if err != nil {
		return runResult{}, err
	}
	return decodeResult(s)
}

func (c *stockChromium) close() {
	c.cancelTab()
	c.cancelEA() // waits for Chromium to exit and removes its data dir
	if c.home != "" {
		_ = os.RemoveAll(c.home)
	}
}

// nssHome makes a HOME whose NSS database ($HOME/.pki/nssdb, where
// Chromium on Linux looks) trusts the CA certificate in the PEM file ca
// for servers: what a user does with certutil (Debian: libnss3-tools).
func nssHome(ctx context.Context, ca string) (string, error) {
	home, err := os.MkdirTemp("", "geckohost-nss-")
	if err != nil {
		return "", err
	}
	db := "sql:" + filepath.Join(home, ".pki", "nssdb")
	if err := os.MkdirAll(filepath.Join(home, ".pki", "nssdb"), 0o700); err != nil {
		_ = os.RemoveAll(home)
		return "", err
	}
	for _, args := range [][]string{
		{"-N", "-d", db, "--empty-password"},
		{"-A", "-d", db, "-n", "geckohost test CA", "-t", "C,,", "-i", ca},
	} {
		if out, err := exec.CommandContext(ctx, "certutil", args...).CombinedOutput(); err != nil {
			_ = os.RemoveAll(home)
			return "", fmt.Errorf("certutil %s (Debian: apt-get install libnss3-tools): %v: %s", args[0], err, out)
		}
	}
	return home, nil
}

// stockFirefox is a client Firefox with Firefox's own WebRTC defaults
// (mDNS host names, no loopback, ICE-TCP on, no camera permission, so it
// gathers on the default-route interface only), driven over BiDi.
type stockFirefox struct {
	ff  *gecko.Firefox
	tab string
}

func startStockFirefox(ctx context.Context) (*stockFirefox, error) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ff, err := gecko.LaunchFirefox(ctx, gecko.FirefoxOptions{Prefs: browsers.FirefoxWebRTCDefaults(), Logger: log})
	if err != nil {
		return nil, fmt.Errorf("launch firefox: %w", err)
	}
	var r struct {
		Contexts []struct {
			Context string `json:"context"`
		} `json:"contexts"`
	}
	if err := ff.Conn().Call(ctx, "browsingContext.getTree", map[string]any{"maxDepth": 0}, &r); err != nil || len(r.Contexts) == 0 {
		f := &stockFirefox{ff: ff}
		f.close()
		return nil, fmt.Errorf("firefox browsing contexts: %v", err)
	}
	return &stockFirefox{ff: ff, tab: r.Contexts[0].Context}, nil
}

func (f *stockFirefox) connect(ctx context.Context, j clientJob) (runResult, error) {
	if err := f.ff.Conn().Navigate(ctx, f.tab, j.Page); err != nil {
		return runResult{}, fmt.Errorf("open %s: %w", j.Page, err)
	}
	raw, err := f.ff.Conn().CallFunction(ctx, bidi.CallFunctionParams{
		FunctionDeclaration: "async () => { " + connectJS(j) + " }",
		Context:             f.tab,
		AwaitPromise:        true,
	})
	if err != nil {
		return runResult{}, err
	}
	s, err := bidi.StringValue(raw)
	if err != nil {
		return runResult{}, err
	}
	return decodeResult(s)
}

func (f *stockFirefox) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_ = f.ff.Close(ctx)
}

// goConnect dials with the Go client's zero Options (plus the job's
// NoICEServers), echoes once and reads the selected pair from the stats.
func goConnect(ctx context.Context, j clientJob) (runResult, error) {
	var r runResult
	ws := "ws" + strings.TrimPrefix(j.Page, "http")
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	opts := client.Options{Token: j.Token, Source: j.Page + "workers/echo.js", NoFetchICEServers: j.NoICEServers}
	if j.CA != "" {
		hc, err := caHTTPClient(j.CA)
		if err != nil {
			return r, err
		}
		opts.HTTPClient = hc
	}
	s, err := client.Dial(ctx, ws, opts)
	r.MS = float64(time.Since(t0).Microseconds()) / 1000
	var we *engine.Error
	switch {
	case errors.As(err, &we):
		r.Errno, r.Name, r.Reason = int(we.Errno), we.Errno.String(), we.Reason
		return r, nil
	case err != nil:
		r.Reason = err.Error()
		return r, nil
	}
	defer s.Close()
	r.WorkerID = s.WorkerID
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	r.Timings.Answer, r.Timings.Connected, r.Timings.ChannelOpen = ms(s.Timings.Answer), ms(s.Timings.Connected), ms(s.Timings.Open)
	got := make(chan string, 1)
	s.Channel.OnMessage(func(m webrtc.DataChannelMessage) {
		select {
		case got <- string(m.Data):
		default:
		}
	})
	if err := s.Channel.SendText("hello over the network"); err != nil {
		return r, fmt.Errorf("send: %w", err)
	}
	select {
	case r.Echo = <-got:
	case <-ctx.Done():
		return r, fmt.Errorf("no echo: %w", ctx.Err())
	}
	r.Path = pionPath(s.PC)
	return r, nil
}

// pionPath is the nominated, succeeded candidate pair of pc.
func pionPath(pc *webrtc.PeerConnection) *pathInfo {
	stats := pc.GetStats()
	for _, st := range stats {
		p, ok := st.(webrtc.ICECandidatePairStats)
		if !ok || !p.Nominated || p.State != webrtc.StatsICECandidatePairStateSucceeded {
			continue
		}
		l, _ := stats[p.LocalCandidateID].(webrtc.ICECandidateStats)
		rm, _ := stats[p.RemoteCandidateID].(webrtc.ICECandidateStats)
		return &pathInfo{
			Local: l.CandidateType.String(), Remote: rm.CandidateType.String(),
			Protocol: strings.ToLower(l.Protocol), RelayProtocol: strings.ToLower(l.RelayProtocol),
			LocalAddress: l.IP, RemoteAddress: rm.IP,
		}
	}
	return nil
}
