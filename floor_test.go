package main

// The browsers' floor (issue 21): each stock browser against itself over
// the veth LAN of TestNetworkLAN, with no geckohost in between, so the
// clients table in docs/measuring.md can set each browser's answer →
// connected beside what the stack itself takes.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/geckohost/geckohost/gecko/bidi"
	"github.com/geckohost/geckohost/internal/netns"
)

const (
	floorBrowser = "GECKOHOST_FLOOR_BROWSER" // the floor child's browser: "chromium" or "firefox"
	floorRunsEnv = "FLOOR_RUNS"              // timed runs per pair (default 30)
)

// floorJS defines window.floor in a blank page: offer() makes a peer
// connection with a data channel and returns its offer once gathering is
// complete; answer(sdp) answers it (echoing on the channel it gets) once
// gathering is complete; accept(sdp) is the offerer's timed part: from
// the answer's arrival in the page to its data channel's open event, then
// one echo and the candidate pair in use; close() ends the connection.
// Stock settings: no ICE servers, nothing else set.
const floorJS = `
window.floor = window.floor || {
  gathered(pc) {
    return new Promise((resolve, reject) => {
      if (pc.iceGatheringState === "complete") return resolve();
      const t = setTimeout(() => reject(new Error("gathering not complete within 5 s: " + pc.iceGatheringState)), 5000);
      pc.addEventListener("icegatheringstatechange", () => { if (pc.iceGatheringState === "complete") { clearTimeout(t); resolve(); } });
      pc.addEventListener("icecandidate", (e) => { if (!e.candidate) { clearTimeout(t); resolve(); } });
    });
  },
  async offer() {
    const pc = new RTCPeerConnection();
    const dc = pc.createDataChannel("floor");
    this.pc = pc; this.dc = dc;
    this.opened = new Promise((resolve) => { dc.onopen = () => resolve(performance.now()); });
    await pc.setLocalDescription(await pc.createOffer());
    await this.gathered(pc);
    return pc.localDescription.sdp;
  },
  async answer(sdp) {
    const pc = new RTCPeerConnection();
    this.pc = pc;
    pc.ondatachannel = (e) => { e.channel.onmessage = (m) => e.channel.send(m.data); };
    await pc.setRemoteDescription({ type: "offer", sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    await this.gathered(pc);
    return pc.localDescription.sdp;
  },
  async accept(sdp) {
    const t0 = performance.now();
    await this.pc.setRemoteDescription({ type: "answer", sdp });
    const t1 = await Promise.race([this.opened, new Promise((_, reject) => setTimeout(() => reject(new Error("not open within 10 s")), 10000))]);
    const echo = await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("no echo within 10 s")), 10000);
      this.dc.onmessage = (e) => { clearTimeout(t); resolve(e.data); };
      this.dc.send("floor");
    });
    const stats = await this.pc.getStats();
    let pair = null;
    stats.forEach((r) => { if (r.type === "transport" && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId) || pair; });
    if (!pair) stats.forEach((r) => { if (r.type === "candidate-pair" && (r.selected || (r.nominated && r.state === "succeeded")) && !pair) pair = r; });
    const l = (pair && stats.get(pair.localCandidateId)) || {};
    const r = (pair && stats.get(pair.remoteCandidateId)) || {};
    return JSON.stringify({ ms: t1 - t0, echo, path: (l.candidateType || "?") + " " + (l.address || l.ip || "") + " → " + (r.candidateType || "?") + " " + (r.address || r.ip || "") });
  },
  close() { if (this.pc) this.pc.close(); this.pc = null; return ""; },
};
`

// floorMsg is one line between the test and a floor child: a command
// (Op, SDP) or its result (Out, Err).
type floorMsg struct {
	Op  string `json:"op,omitempty"` // "offer", "answer", "accept", "close"
	SDP string `json:"sdp,omitempty"`
	Out string `json:"out,omitempty"`
	Err string `json:"err,omitempty"`
}

// floorResult is what accept returns.
type floorResult struct {
	MS   float64 `json:"ms"`
	Echo string  `json:"echo"`
	Path string  `json:"path"`
}

// runFloorChild is the child a floor test starts in a namespace: a stock
// browser (GECKOHOST_FLOOR_BROWSER) with a blank page, doing each command
// read from stdin and writing its result to stdout, one JSON line each.
func runFloorChild(ctx context.Context) int {
	eval, closeBrowser, err := startFloorBrowser(ctx, os.Getenv(floorBrowser))
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor child:", err)
		return 1
	}
	defer closeBrowser()
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var m floorMsg
		if err := json.Unmarshal(in.Bytes(), &m); err != nil {
			fmt.Fprintln(os.Stderr, "floor child: bad command:", err)
			return 2
		}
		arg, _ := json.Marshal(m.SDP)
		var res floorMsg
		res.Out, err = eval(ctx, fmt.Sprintf("window.floor.%s(%s)", m.Op, arg))
		if err != nil {
			res.Err = err.Error()
		}
		if err := out.Encode(res); err != nil {
			return 1
		}
	}
	return 0
}

// startFloorBrowser starts the stock browser on about:blank with floorJS
// loaded; eval runs an expression there and returns its string result.
func startFloorBrowser(ctx context.Context, browser string) (eval func(context.Context, string) (string, error), stop func(), err error) {
	switch browser {
	case "chromium":
		c, err := startStockChromium(ctx, "")
		if err != nil {
			return nil, nil, err
		}
		if _, err := chromedp.Run(c.tab, chromedp.Navigate("about:blank")); err != nil {
			c.close()
			return nil, nil, fmt.Errorf("open about:blank: %w", err)
		}
		if _, err := chromedp.Run(c.tab, chromedp.Evaluate[string](floorJS+"; ''")); err != nil {
			c.close()
			return nil, nil, fmt.Errorf("load the floor page: %w", err)
		}
		return func(ctx context.Context, expr string) (string, error) {
			tctx, cancel := context.WithCancel(c.tab)
			defer cancel()
			defer context.AfterFunc(ctx, cancel)()
			return chromedp.Run(tctx, chromedp.Evaluate[string]("(async () => "+expr+")()", chromedp.EvalAwaitPromise))
		}, c.close, nil
	case "firefox":
		f, err := startStockFirefox(ctx)
		if err != nil {
			return nil, nil, err
		}
		call := func(ctx context.Context, body string) (string, error) {
			raw, err := f.ff.Conn().CallFunction(ctx, bidi.CallFunctionParams{
				FunctionDeclaration: "async () => { " + body + " }", Context: f.tab, AwaitPromise: true})
			if err != nil {
				return "", err
			}
			return bidi.StringValue(raw)
		}
		if err := f.ff.Conn().Navigate(ctx, f.tab, "about:blank"); err != nil {
			f.close()
			return nil, nil, fmt.Errorf("open about:blank: %w", err)
		}
		if _, err := call(ctx, floorJS+"; return '';"); err != nil {
			f.close()
			return nil, nil, fmt.Errorf("load the floor page: %w", err)
		}
		return func(ctx context.Context, expr string) (string, error) { return call(ctx, "return await "+expr+";") }, f.close, nil
	}
	return nil, nil, fmt.Errorf("unknown floor browser %q", browser)
}

// floorPeer is a floor child as the test drives it.
type floorPeer struct {
	in  io.WriteCloser
	out *bufio.Scanner
}

func (p *floorPeer) do(t *testing.T, op, sdp string) string {
	t.Helper()
	b, _ := json.Marshal(floorMsg{Op: op, SDP: sdp})
	if _, err := p.in.Write(append(b, '\n')); err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	if !p.out.Scan() {
		t.Fatalf("%s: the child ended: %v", op, p.out.Err())
	}
	var m floorMsg
	if err := json.Unmarshal(p.out.Bytes(), &m); err != nil || m.Err != "" {
		t.Fatalf("%s: %q %v %s", op, p.out.Text(), err, m.Err)
	}
	return m.Out
}

// startFloorPeer starts a floor child with browser in ns.
func startFloorPeer(t *testing.T, ctx context.Context, ns *netns.Namespace, browser string) *floorPeer {
	t.Helper()
	cmd, err := ns.Reexec(ctx, []string{childEnv + "=floor", floorBrowser + "=" + browser})
	if err != nil {
		t.Fatal(err)
	}
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the %s floor peer: %v", browser, err)
	}
	t.Cleanup(func() {
		_ = in.Close() // the child's stdin ends: it closes its browser and exits
		if err := cmd.Wait(); err != nil {
			t.Errorf("%s floor peer: %v", browser, err)
		}
	})
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	return &floorPeer{in: in, out: sc}
}

// loadavg is /proc/loadavg's three load figures.
func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// mdnsName is a host candidate's mDNS name, as stock browsers make them.
var mdnsName = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.local`)

// quantile is the q-quantile (nearest rank) of xs.
func quantile(xs []float64, q float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// floorRuns skips t unless E2E_FLOOR=1 and returns the sessions per row:
// floorRunsEnv's, else 30.
func floorRuns(t *testing.T) int {
	t.Helper()
	if os.Getenv("E2E_FLOOR") != "1" {
		t.Skip("a measurement: run with E2E_FLOOR=1 (see docs/measuring.md)")
	}
	if n, err := strconv.Atoi(os.Getenv(floorRunsEnv)); err == nil && n > 0 {
		return n
	}
	return 30
}

// TestBrowserFloor (run with E2E_FLOOR=1; FLOOR_RUNS timed runs per pair,
// default 30) measures each stock browser against itself over the veth
// LAN of TestNetworkLAN: the offering page in one namespace
// (198.51.100.2, as the client there), the answering page in the other
// (198.51.100.1), each namespace with a default route through the other
// (a stock browser gathers only on the default-route interface). The test
// relays complete descriptions (each side's host candidates in it, mDNS
// names as stock browsers make them), and times on the offerer's clock,
// from the answer's arrival in its page to its data channel's open: the
// answer → connected of the clients table without geckohost. One
// untimed run first. Pairs: Chromium ↔ Chromium and Firefox ↔ Firefox as
// they are (mDNS names both ways: the offerer resolves the answerer's
// name after the answer came); the same with the answer's names replaced
// by the answerer's address in the relay ("-ip": a geckohost worker's
// answer carries its address, so its client resolves nothing), and
// Chromium offering to Firefox that way (the browsers of a Chromium client
// and a Firefox worker; with mDNS both ways, neither resolves the other's
// names here and it does not connect). It logs p50/p95/min/max, the paths and the load; it
// asserts nothing of the times.
func TestBrowserFloor(t *testing.T) {
	runs := floorRuns(t)
	for _, c := range []struct {
		off, ans string
		ip       bool // the answer's mDNS names replaced by the answerer's address
	}{{"chromium", "chromium", false}, {"firefox", "firefox", false},
		{"chromium", "chromium", true}, {"firefox", "firefox", true}, {"chromium", "firefox", true}} {
		pair := [2]string{c.off, c.ans}
		name := pair[0] + "-" + pair[1]
		if c.ip {
			name += "-ip"
		}
		t.Run(name, func(t *testing.T) {
			ctx, tp := netTest(t, false)
			a := tp.Namespace("offer")
			b := tp.Namespace("answer")
			tp.Link(a, "198.51.100.2/24", b, "198.51.100.1/24")
			a.Route("default", "198.51.100.1")
			b.Route("default", "198.51.100.2")
			off := startFloorPeer(t, ctx, a, pair[0])
			ans := startFloorPeer(t, ctx, b, pair[1])
			var ms []float64
			paths := map[string]int{}
			before := loadavg()
			start := time.Now()
			for i := range runs + 1 {
				answer := ans.do(t, "answer", off.do(t, "offer", ""))
				if c.ip {
					answer = mdnsName.ReplaceAllString(answer, "198.51.100.1")
				}
				var r floorResult
				if err := json.Unmarshal([]byte(off.do(t, "accept", answer)), &r); err != nil || r.Echo != "floor" {
					t.Fatalf("run %d: %+v %v", i, r, err)
				}
				off.do(t, "close", "")
				ans.do(t, "close", "")
				if i == 0 {
					continue // untimed: the first connection of each browser
				}
				ms = append(ms, r.MS)
				paths[r.Path]++
			}
			t.Logf("floor %s → %s (answer's host candidates by address: %v) over the LAN, answer → open on the offerer: p50 %.1f ms, p95 %.1f ms (min %.1f, max %.1f), n %d, %.0f s; load %s → %s; paths %v",
				pair[0], pair[1], c.ip, quantile(ms, 0.5), quantile(ms, 0.95), slices.Min(ms), slices.Max(ms), len(ms),
				time.Since(start).Seconds(), before, loadavg(), paths)
		})
	}
}

// TestClientsLAN (run with E2E_FLOOR=1; FLOOR_RUNS sessions per client,
// default 30) is the LAN rows of docs/measuring.md's clients table: serve
// with its defaults on 198.51.100.1, the clients in another namespace over
// a veth (as TestNetworkLAN), one client after the other against the same
// serve: stock Chromium and stock Firefox through the demo page's
// geckohost.js (answer → connected, and answer → the client's channel
// open), then aiortc (testdata/aiortc_client.py, hello → open). Each
// client's first session is untimed. The engine is Firefox (the table's;
// one serve, so no other engine's row runs beside it). It logs p50/p95 and the load before
// and after each row; it asserts the echoes only.
func TestClientsLAN(t *testing.T) {
	runs := floorRuns(t)
	ctx, tp := netTest(t, false)
	h := tp.Namespace("host")
	c := tp.Namespace("client")
	tp.Link(h, "198.51.100.1/24", c, "198.51.100.2/24")
	c.Route("default", "198.51.100.1")
	s := startNetServe(t, serveEngines[0], h, "198.51.100.1:8765") // Firefox, the table's engine
	s.waitReady(t, ctx)
	row := func(what string, ms map[string][]float64, before string) {
		for k, xs := range ms {
			t.Logf("%s, %s: p50 %.1f ms, p95 %.1f ms (min %.1f, max %.1f), n %d; load %s → %s",
				what, k, quantile(xs, 0.5), quantile(xs, 0.95), slices.Min(xs), slices.Max(xs), len(xs), before, loadavg())
		}
	}
	for _, browser := range []string{"chromium", "firefox"} {
		before := loadavg()
		res := runClients(t, ctx, c, s.job(browser, runs+1))
		ms := map[string][]float64{}
		for i, r := range res[0] {
			if r.Echo != "hello over the network" {
				t.Fatalf("%s %d: %+v", browser, i, r)
			}
			if i == 0 {
				continue
			}
			ms["answer → connected"] = append(ms["answer → connected"], r.Timings.Connected-r.Timings.Answer)
			ms["answer → channel open"] = append(ms["answer → channel open"], r.Timings.ChannelOpen-r.Timings.Answer)
		}
		row("stock "+browser+" via geckohost.js", ms, before)
	}
	if why := aiortcMissing(); why != "" {
		t.Skip(why)
	}
	before := loadavg()
	ms := map[string][]float64{}
	for i, r := range runAiortc(t, ctx, c, s, runs+1) {
		if r.Echo != "hello over the network" {
			t.Fatalf("aiortc %d: %+v", i, r)
		}
		if i > 0 {
			ms["hello → open"] = append(ms["hello → open"], r.Timings.ChannelOpen)
			ms["answer → open"] = append(ms["answer → open"], r.Timings.ChannelOpen-r.Timings.Answer)
		}
	}
	row("aiortc", ms, before)
}
