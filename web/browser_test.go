package web_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/gecko"
	"github.com/geckohost/geckohost/gecko/bidi"
	cr "github.com/geckohost/geckohost/gecko/chromium"
	"github.com/geckohost/geckohost/host"
	"github.com/geckohost/geckohost/internal/browsers"
	"github.com/geckohost/geckohost/internal/leaktest"
	"github.com/geckohost/geckohost/internal/netns"
	"github.com/geckohost/geckohost/internal/testenv"
	"github.com/geckohost/geckohost/store"
	"github.com/geckohost/geckohost/web"
)

var updateDocs = flag.Bool("update-docs", false, "write the desktop screenshot of the connected demo page (Chromium, Mandelbrot worker) to ../docs/screenshot.png")

// TestMain runs the tests in a private network namespace with an uplink (a
// default route, as a workstation has), where stock browsers gather their
// candidates.
func TestMain(m *testing.M) { os.Exit(netns.RunWithUplink(m)) }

// stack is a running geckohost: a real store, a real gecko.Pool (Firefox,
// loopback ICE) and a real host.Server serving web.Handler() on 127.0.0.1.
type stack struct {
	URL    string // http://127.0.0.1:PORT/
	Origin string // http://127.0.0.1:PORT
	Token  string
	// ThirdParty is the URL of a page on another origin (allowed with
	// --allow-origin) that imports geckohost.js from the host, as any web
	// app would.
	ThirdParty string
	logger     *slog.Logger
	// docs: this stack's Chromium screenshot may refresh docs/ (-update-docs).
	docs bool
}

// workerPool is what the stack needs of either engine's pool.
type workerPool interface {
	engine.Engine
	Start(ctx context.Context) error
	Close(ctx context.Context) error
	Slots() []gecko.BrowserInfo
}

// engines are the worker engines the page is tested against.
var engines = []string{"firefox", "chromium"}

// needEngine skips t when the browser of engine eng is not installed.
func needEngine(t testing.TB, eng string) {
	t.Helper()
	switch eng {
	case "firefox":
		if _, err := gecko.FindFirefox(""); err != nil {
			testenv.Skip(t, "firefox-esr", "apt-get install firefox-esr", err)
		}
	case "chromium":
		if _, err := cr.FindChromium(""); err != nil {
			testenv.Skip(t, "chromium", "apt-get install chromium", err)
		}
	}
}

// startStack starts a geckohost whose workers run in engine eng
// ("firefox" or "chromium").
func startStack(t testing.TB, ctx context.Context, eng string) *stack {
	t.Helper()
	logger := testLogger(t)
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "geckohost.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	_, secret, err := db.AddToken(ctx, domain.NewToken{Name: "demo"})
	if err != nil {
		t.Fatalf("add token: %v", err)
	}

	var pool workerPool = gecko.NewPool(gecko.PoolOptions{Warm: 2, Logger: logger.With("component", "gecko")})
	if eng == "chromium" {
		pool = cr.NewPool(cr.PoolOptions{Warm: 2, Logger: logger.With("component", "chromium")})
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := pool.Close(cctx); err != nil {
			t.Errorf("close pool: %v", err)
		}
	})
	if err := pool.Start(ctx); err != nil {
		t.Fatalf("start pool: %v", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	third := httptest.NewServer(thirdPartyPage(web.DemoURL(ln.Addr().String())))
	t.Cleanup(third.Close)

	srv, err := host.New(host.Options{
		Store:        db,
		Engine:       pool,
		Web:          web.Handler(),
		AllowOrigins: []string{third.URL},
		Logger:       logger.With("component", "host"),
		// The status strip's browser and worker counts.
		Browsers: func(bool) []host.BrowserStatus {
			var out []host.BrowserStatus
			for _, b := range pool.Slots() {
				out = append(out, host.BrowserStatus{Index: b.Index, PID: b.PID, State: b.State, Workers: b.Workers, Capacity: b.Capacity})
			}
			return out
		},
	})
	if err != nil {
		ln.Close()
		t.Fatalf("new host: %v", err)
	}
	sctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	u := web.DemoURL(ln.Addr().String())
	return &stack{URL: u, Origin: strings.TrimSuffix(u, "/"), Token: secret, ThirdParty: third.URL + "/", logger: logger}
}

// thirdPartyPage serves a page on its own origin that imports geckohost.js
// from the host at hostURL, connects to the echo worker with the token in
// the URL fragment, and publishes the outcome as window.result.
func thirdPartyPage(hostURL string) http.Handler {
	page := `<!doctype html><meta charset="utf-8"><title>third party</title>
<script type="module">
import { connect, GeckohostError } from ` + jsString(hostURL+"geckohost.js") + `;
window.result = (async () => {
  try {
    // No url: geckohost.js connects to the host it was imported from (not
    // this page's), and fetches /ice-servers from it across origins.
    const s = await connect({ token: location.hash.slice(1), source: ` + jsString(hostURL+"workers/echo.js") + ` });
    const echoed = await new Promise((resolve) => { s.channel.onmessage = (e) => resolve(e.data); s.channel.send("across origins"); });
    s.close();
    return "echo: " + echoed;
  } catch (e) {
    return "error: " + (e instanceof GeckohostError) + " " + e.errno + " " + e.message;
  }
})();
</script>`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	})
}

// TestDemoPage drives the demo page against a real geckohost, once with
// Firefox workers and once with Chromium workers, in real browsers:
// Chromium through chromedp, and Firefox as the client browser through the
// gecko package's BiDi driver.
func TestDemoPage(t *testing.T) {
	netns.Skip(t)
	leaktest.Check(t, leakOpts...)
	// Screenshots are artifacts meant to outlive the test: they go to one
	// fixed directory (overwritten by each run, so nothing piles up), or to
	// $GECKOHOST_ARTIFACTS; a Chromium engine's under chromium-workers/.
	shots := os.Getenv("GECKOHOST_ARTIFACTS")
	if shots == "" {
		shots = filepath.Join(os.TempDir(), "geckohost-web-artifacts")
	}
	for _, eng := range engines {
		t.Run(eng, func(t *testing.T) {
			needEngine(t, eng)
			dir := shots
			if eng != "firefox" {
				dir = filepath.Join(shots, eng+"-workers")
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatalf("make the artifacts dir: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
			defer cancel()
			st := startStack(t, ctx, eng)
			st.docs = eng == "firefox"
			demoClients(t, ctx, st, dir)
		})
	}
	http.DefaultClient.CloseIdleConnections()
}

// demoClients runs the demo page's scenario in each client browser against
// st, and the third-party page in Chromium.
func demoClients(t *testing.T, ctx context.Context, st *stack, shots string) {
	t.Run("chromium", func(t *testing.T) {
		if _, err := os.Stat(browsers.ChromiumPath); err != nil {
			testenv.Skip(t, "chromium", "apt-get install chromium")
		}
		d := newChromium(t, ctx)
		runScenario(t, ctx, d, st, shots)

		// Another web app imports geckohost.js across origins.
		if err := d.navigate(ctx, st.ThirdParty+"#"+st.Token); err != nil {
			t.Fatalf("open the third-party page: %v", err)
		}
		if err := waitFor(ctx, d, `return typeof window.result === "object"`); err != nil {
			t.Fatalf("third-party page: %v", err)
		}
		got, err := d.eval(ctx, `return await window.result`)
		if err != nil || got != "echo: across origins" {
			t.Errorf("third-party page: %q, %v; want the echo", got, err)
		}
	})
	t.Run("firefox", func(t *testing.T) {
		needEngine(t, "firefox")
		d := newFirefoxClient(t, ctx, st)
		runScenario(t, ctx, d, st, shots)
	})
}

// driver is a browser showing the demo page.
type driver interface {
	name() string
	navigate(ctx context.Context, url string) error
	// eval runs the body of an async JavaScript function in the page and
	// returns its result, which must be a string.
	eval(ctx context.Context, body string) (string, error)
	// typeText replaces the value of the input selected by the CSS
	// selector sel with text, as typing would.
	typeText(ctx context.Context, sel, text string) error
	click(ctx context.Context, sel string) error
	// screenshot sets the viewport to w×h and returns a PNG of the page.
	screenshot(ctx context.Context, w, h int) ([]byte, error)
	// screenshotReset puts the viewport back to 1280×800.
	screenshotReset(ctx context.Context) error
}

func runScenario(t *testing.T, ctx context.Context, d driver, st *stack, shots string) {
	must := func(err error, what string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %s: %v\n%s", d.name(), what, err, pageState(d))
		}
	}
	must(d.navigate(ctx, st.URL), "open the demo page")
	must(waitFor(ctx, d, `return document.documentElement.dataset.ready === "1"`), "page ready")
	// The status strip reads /status.
	must(waitFor(ctx, d, `const s = document.getElementById("server-status"); return s.dataset.state === "ok" && /^geckohost .* · \d+\/\d+ workers · 0 queued/.test(s.textContent)`), "status strip")

	// Type the token, pick echo, connect.
	must(d.click(ctx, "#worker-echo"), "pick echo")
	must(d.typeText(ctx, "#token", st.Token), "type the token")
	must(d.click(ctx, "#connect"), "click connect")
	must(waitFor(ctx, d, `return !!document.querySelector('#timeline [data-step="connected"]') && document.getElementById("status").dataset.state === "ok"`), "connected")

	// The page shows the path the connection took.
	must(waitFor(ctx, d, `return !!document.getElementById("summary").dataset.path`), "path shown")
	path, err := d.eval(ctx, `return document.getElementById("summary").dataset.path + "|" + document.getElementById("summary").textContent`)
	must(err, "read the path")
	if !strings.Contains(path, " · via ") || strings.HasPrefix(path, "relay") {
		t.Errorf("%s: path %q, want a direct pair shown as ' · via ...'", d.name(), path)
	}
	t.Logf("%s path: %s", d.name(), path)
	steps, err := d.eval(ctx, `return [...document.querySelectorAll("#timeline li")].map(li => li.dataset.step + " " + li.querySelector(".ms").textContent).join("\n")`)
	must(err, "read the timeline")
	t.Logf("%s timeline:\n%s", d.name(), steps)
	for _, s := range []string{"hello-sent", "answer", "remote-candidate", "connected", "channel-open"} {
		if !strings.Contains(steps, s+" ") {
			t.Errorf("%s: timeline has no %q step", d.name(), s)
		}
	}

	// Send a message; the echo shows up in the log.
	msg := "hello from " + d.name()
	must(d.typeText(ctx, "#message", msg), "type a message")
	must(d.click(ctx, "#send"), "click send")
	must(waitFor(ctx, d, `return [...document.querySelectorAll("#log .msg-in .body")].some(e => e.textContent === `+jsString(msg)+`)`), "echo in the log")

	// Round trips for the chart, then the screenshots of the connected page.
	must(d.click(ctx, "#ping"), "send pings")
	must(waitFor(ctx, d, `return document.querySelectorAll("#rtt-chart rect.bar").length >= 21`), "21 round trips charted")
	stats, _ := d.eval(ctx, `return document.getElementById("rtt-stats").textContent`)
	t.Logf("%s round trips: %s", d.name(), stats)
	for _, size := range []struct {
		label string
		w, h  int
	}{{"desktop", 1280, 800}, {"phone", 390, 844}} {
		png, err := d.screenshot(ctx, size.w, size.h)
		must(err, "screenshot at "+size.label+" width")
		p := filepath.Join(shots, fmt.Sprintf("screenshot-%s-%s.png", d.name(), size.label))
		must(os.WriteFile(p, png, 0o644), "save screenshot")
		t.Logf("%s screenshot (%dx%d): %s", d.name(), size.w, size.h, p)
	}
	must(d.screenshotReset(ctx), "reset the viewport")

	must(d.click(ctx, "#disconnect"), "click disconnect")
	must(waitFor(ctx, d, `return document.getElementById("status").dataset.state === "idle" && document.getElementById("message").disabled`), "disconnected")

	// The CPU-bound worker computes in the remote Firefox.
	must(d.click(ctx, "#worker-primes"), "pick primes")
	must(d.click(ctx, "#connect"), "connect to primes")
	must(waitFor(ctx, d, `return document.getElementById("status").dataset.state === "ok"`), "primes connected")
	must(d.typeText(ctx, "#message", "100000"), "type N")
	must(d.click(ctx, "#send"), "send N")
	must(waitFor(ctx, d, `return [...document.querySelectorAll("#log .msg-in .body")].some(e => e.textContent.startsWith("9,592 primes up to 100,000"))`), "prime count in the log")
	must(d.click(ctx, "#disconnect"), "disconnect primes")
	must(waitFor(ctx, d, `return document.getElementById("status").dataset.state === "idle"`), "primes disconnected")

	// The Mandelbrot worker sends binary pixels back; the page draws them.
	must(d.click(ctx, "#worker-mandelbrot"), "pick mandelbrot")
	must(d.click(ctx, "#connect"), "connect to mandelbrot")
	must(waitFor(ctx, d, `return document.getElementById("status").dataset.state === "ok"`), "mandelbrot connected")
	// Three tiles, the whole set last (it stays on screen for the screenshot).
	for i, n := range []int{3, 2, 1} {
		must(d.click(ctx, fmt.Sprintf("#presets .chip:nth-child(%d)", n)), "ask for a tile")
		must(waitFor(ctx, d, fmt.Sprintf(`return !document.getElementById("tile").hidden && [...document.querySelectorAll("#log .msg-in .body")].filter(e => e.textContent.includes("bytes of pixels")).length === %d`, i+1)), "tile drawn")
	}
	png, err := d.screenshot(ctx, 1280, 800)
	must(err, "screenshot of the mandelbrot tile")
	p := filepath.Join(shots, "screenshot-"+d.name()+"-mandelbrot.png")
	must(os.WriteFile(p, png, 0o644), "save screenshot")
	t.Logf("%s screenshot (mandelbrot): %s", d.name(), p)
	if *updateDocs && st.docs && d.name() == "chromium" {
		must(os.WriteFile(filepath.Join("..", "docs", "screenshot.png"), png, 0o644), "update docs/screenshot.png")
		t.Logf("updated ../docs/screenshot.png")
	}
	must(d.click(ctx, "#disconnect"), "disconnect mandelbrot")
	must(waitFor(ctx, d, `return document.getElementById("status").dataset.state === "idle"`), "mandelbrot disconnected")

	// A bad token: the page shows errno 102, its name and what to do.
	must(d.click(ctx, "#worker-echo"), "pick echo again")
	must(d.typeText(ctx, "#token", "gh_this_is_not_a_token"), "type a bad token")
	must(d.click(ctx, "#connect"), "connect with a bad token")
	must(waitFor(ctx, d, `return !document.getElementById("error").hidden`), "error shown")
	got, err := d.eval(ctx, `return [document.getElementById("error-errno").textContent, document.getElementById("error-name").textContent, document.getElementById("error-advice").textContent].join("|")`)
	must(err, "read the error")
	parts := strings.Split(got, "|")
	if len(parts) != 3 || parts[0] != "102" || parts[1] != "INVALID_TOKEN" || !strings.Contains(parts[2], "geckohost token add --name") {
		t.Errorf("%s: error box shows %q, want 102|INVALID_TOKEN|advice naming `geckohost token add --name`", d.name(), got)
	}

	png, err = d.screenshot(ctx, 390, 844)
	must(err, "screenshot of the error")
	p = filepath.Join(shots, "screenshot-"+d.name()+"-error-phone.png")
	must(os.WriteFile(p, png, 0o644), "save screenshot")
	t.Logf("%s screenshot (bad token, phone): %s", d.name(), p)
	must(d.screenshotReset(ctx), "reset the viewport")

	// Disconnect while negotiating gives up cleanly (or ends the session
	// when it was faster than the click): no error, idle again.
	must(d.typeText(ctx, "#token", st.Token), "type the token again")
	_, err = d.eval(ctx, `document.getElementById("connect").click(); document.getElementById("disconnect").click(); return "ok"`)
	must(err, "connect then disconnect at once")
	must(waitFor(ctx, d, `return document.getElementById("status").dataset.state === "idle" && document.getElementById("error").hidden && !document.getElementById("connect").disabled`), "idle after an early disconnect")

	// A custom worker URL the host does not allow: 104 with its advice.
	must(d.click(ctx, "#worker-custom"), "pick custom URL")
	must(d.typeText(ctx, "#custom-url", "https://not-allowed.invalid/worker.js"), "type a custom URL")
	must(d.click(ctx, "#connect"), "connect to the custom URL")
	must(waitFor(ctx, d, `return !document.getElementById("error").hidden && document.getElementById("error-errno").textContent === "104"`), "104 shown")
	got, err = d.eval(ctx, `return document.getElementById("error-name").textContent + "|" + document.getElementById("error-advice").textContent`)
	must(err, "read the error")
	if !strings.HasPrefix(got, "SOURCE_NOT_ALLOWED|") || !strings.Contains(got, "--allow-source") {
		t.Errorf("%s: custom URL error shows %q, want SOURCE_NOT_ALLOWED and advice naming --allow-source", d.name(), got)
	}

	// geckohost.js as any web app uses it: typed errors with errno.
	got, err = d.eval(ctx, `
		const m = await import("/geckohost.js");
		const out = [];
		for (const [token, source] of [["gh_wrong", "/workers/echo.js"], [`+jsString(st.Token)+`, "https://not-allowed.invalid/w.js"]]) {
			try {
				const s = await m.connect({ token, source });
				s.close();
				out.push("connected");
			} catch (e) {
				out.push((e instanceof m.GeckohostError) + " " + e.errno + " " + e.name);
			}
		}
		return out.join(", ");`)
	must(err, "call geckohost.js connect")
	if want := "true 102 INVALID_TOKEN, true 104 SOURCE_NOT_ALLOWED"; got != want {
		t.Errorf("%s: geckohost.js errors: %q, want %q", d.name(), got, want)
	}

	// The token is kept in localStorage across reloads; "forget" removes it.
	must(d.navigate(ctx, st.URL), "reload")
	must(waitFor(ctx, d, `return document.documentElement.dataset.ready === "1"`), "page ready after reload")
	got, err = d.eval(ctx, `return document.getElementById("token").value`)
	must(err, "read the token field")
	if got != st.Token {
		t.Errorf("%s: token field after reload = %q, want the last token used", d.name(), got)
	}
	must(d.click(ctx, "#forget"), "click forget")
	got, err = d.eval(ctx, `return (localStorage.getItem("geckohost.token") ?? "<none>") + "|" + document.getElementById("token").value`)
	must(err, "read localStorage")
	if got != "<none>|" {
		t.Errorf("%s: after forget, localStorage|field = %q, want <none>|", d.name(), got)
	}
}

// pageState is a summary of the page for failure messages.
func pageState(d driver) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := d.eval(ctx, `
		const q = (s) => { const e = document.querySelector(s); return e ? e.textContent.trim() : "-"; };
		return "status: " + q("#status") + "\nerror: " + (document.getElementById("error")?.hidden ? "-" : q("#error")) +
			"\ntimeline:\n" + [...document.querySelectorAll("#timeline li")].map(li => "  " + li.textContent).join("\n") +
			"\nlog:\n" + [...document.querySelectorAll("#log li")].map(li => "  " + li.textContent).join("\n");`)
	if err != nil {
		return "(page state unavailable: " + err.Error() + ")"
	}
	return s
}

// waitFor polls the JavaScript condition body until it returns true.
func waitFor(ctx context.Context, d driver, body string) error {
	var last error
	for {
		got, err := d.eval(ctx, `return String(await (async () => { `+body+` })())`)
		if err == nil && got == "true" {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("wait for %s: %w (last error: %v)", body, ctx.Err(), last)
			}
			return fmt.Errorf("wait for %s: %w", body, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// --- Chromium through chromedp ---

type chromium struct {
	ctx context.Context // the tab
}

func newChromium(t testing.TB, ctx context.Context) *chromium {
	t.Helper()
	var (
		mu      sync.Mutex
		dataDir string
	)
	// Stock Chromium (see internal/browsers), at desktop size.
	opts := browsers.ChromiumOptions(
		chromedp.WindowSize(1280, 800),
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			// chromedp makes and removes a temp --user-data-dir; note it to
			// check it is gone, and kill Chromium if the test binary dies.
			for _, a := range cmd.Args {
				if v, ok := strings.CutPrefix(a, "--user-data-dir="); ok {
					mu.Lock()
					dataDir = v
					mu.Unlock()
				}
			}
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		}),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for Chromium to exit and its data dir to go
		mu.Lock()
		dir := dataDir
		mu.Unlock()
		if dir == "" {
			return
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("chromium user data dir %s still exists (stat: %v)", dir, err)
		}
		if pids := processesWith("--user-data-dir=" + dir); len(pids) > 0 {
			t.Errorf("chromium processes %v still running", pids)
		}
	})
	// Start the browser now, bounded by the test's context.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(tctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start chromium: %v", err)
		}
	case <-ctx.Done():
		t.Fatalf("start chromium: %v", ctx.Err())
	}
	return &chromium{ctx: tctx}
}

func (c *chromium) name() string { return "chromium" }

// run runs a chromedp action in the tab, bounded by ctx too.
func chromeRun[T any](ctx context.Context, c *chromium, a chromedp.Action[T]) (T, error) {
	tctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	v, err := chromedp.Run(tctx, a)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return v, err
}

func (c *chromium) navigate(ctx context.Context, url string) error {
	_, err := chromeRun(ctx, c, chromedp.Navigate(url))
	return err
}

func (c *chromium) eval(ctx context.Context, body string) (string, error) {
	return chromeRun(ctx, c, chromedp.Evaluate[string]("(async () => { "+body+" })()", chromedp.EvalAwaitPromise))
}

func (c *chromium) typeText(ctx context.Context, sel, text string) error {
	// Clear the field, then type the text as key events.
	if _, err := c.eval(ctx, `document.querySelector(`+jsString(sel)+`).value = ""; return "ok"`); err != nil {
		return err
	}
	_, err := chromeRun(ctx, c, chromedp.SendKeys(chromedp.CSS(sel), text))
	return err
}

func (c *chromium) click(ctx context.Context, sel string) error {
	_, err := chromeRun(ctx, c, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
	return err
}

func (c *chromium) screenshot(ctx context.Context, w, h int) ([]byte, error) {
	if _, err := chromeRun(ctx, c, chromedp.EmulateViewport(int64(w), int64(h))); err != nil {
		return nil, err
	}
	// Let layout settle after the resize (polling the page, not sleeping).
	if err := waitFor(ctx, c, `await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r))); return innerWidth === `+fmt.Sprint(w)); err != nil {
		return nil, err
	}
	return chromeRun(ctx, c, chromedp.FullScreenshot(100))
}

func (c *chromium) screenshotReset(ctx context.Context) error {
	_, err := chromeRun(ctx, c, chromedp.EmulateViewport(1280, 800))
	return err
}

// --- Firefox as the client browser, through gecko's BiDi driver ---

type firefoxClient struct {
	ff  *gecko.Firefox
	tab string
}

func newFirefoxClient(t *testing.T, ctx context.Context, st *stack) *firefoxClient {
	t.Helper()
	ff, err := gecko.LaunchFirefox(ctx, gecko.FirefoxOptions{
		Logger: st.logger.With("component", "client-firefox"),
		Prefs:  browsers.FirefoxWebRTCDefaults(), // a client Firefox as users have it
	})
	if err != nil {
		t.Fatalf("launch firefox: %v", err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := ff.Close(cctx); err != nil {
			t.Errorf("close firefox: %v", err)
		}
		if _, err := os.Stat(ff.Profile()); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("client firefox profile %s still exists (stat: %v)", ff.Profile(), err)
		}
	})
	var r struct {
		Contexts []struct {
			Context string `json:"context"`
		} `json:"contexts"`
	}
	if err := ff.Conn().Call(ctx, "browsingContext.getTree", map[string]any{"maxDepth": 0}, &r); err != nil {
		t.Fatalf("get the browsing contexts: %v", err)
	}
	if len(r.Contexts) == 0 {
		t.Fatalf("firefox has no browsing context")
	}
	c := &firefoxClient{ff: ff, tab: r.Contexts[0].Context}
	if err := c.setViewport(ctx, 1280, 800); err != nil {
		t.Fatalf("set viewport: %v", err)
	}
	return c
}

func (c *firefoxClient) name() string { return "firefox" }

func (c *firefoxClient) navigate(ctx context.Context, url string) error {
	return c.ff.Conn().Navigate(ctx, c.tab, url)
}

func (c *firefoxClient) eval(ctx context.Context, body string) (string, error) {
	raw, err := c.ff.Conn().CallFunction(ctx, bidi.CallFunctionParams{
		FunctionDeclaration: "async () => { " + body + " }",
		Context:             c.tab,
		AwaitPromise:        true,
		UserActivation:      true,
	})
	if err != nil {
		return "", err
	}
	return bidi.StringValue(raw)
}

func (c *firefoxClient) typeText(ctx context.Context, sel, text string) error {
	_, err := c.eval(ctx, `
		const e = document.querySelector(`+jsString(sel)+`);
		e.focus();
		e.value = `+jsString(text)+`;
		e.dispatchEvent(new Event("input", { bubbles: true }));
		e.dispatchEvent(new Event("change", { bubbles: true }));
		return "ok";`)
	return err
}

func (c *firefoxClient) click(ctx context.Context, sel string) error {
	_, err := c.eval(ctx, `
		const e = document.querySelector(`+jsString(sel)+`);
		if (!e) throw new Error("no element " + `+jsString(sel)+`);
		if (e.disabled) throw new Error(`+jsString(sel)+` + " is disabled");
		e.click();
		return "ok";`)
	return err
}

func (c *firefoxClient) setViewport(ctx context.Context, w, h int) error {
	return c.ff.Conn().Call(ctx, "browsingContext.setViewport", map[string]any{
		"context":  c.tab,
		"viewport": map[string]any{"width": w, "height": h},
	}, nil)
}

func (c *firefoxClient) screenshot(ctx context.Context, w, h int) ([]byte, error) {
	if err := c.setViewport(ctx, w, h); err != nil {
		return nil, err
	}
	if err := waitFor(ctx, c, `await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r))); return innerWidth === `+fmt.Sprint(w)); err != nil {
		return nil, err
	}
	var r struct {
		Data string `json:"data"`
	}
	if err := c.ff.Conn().Call(ctx, "browsingContext.captureScreenshot", map[string]any{"context": c.tab, "origin": "document"}, &r); err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(r.Data)
}

func (c *firefoxClient) screenshotReset(ctx context.Context) error {
	return c.setViewport(ctx, 1280, 800)
}

// --- helpers ---

// processesWith returns the pids whose command line has arg.
func processesWith(arg string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for _, a := range strings.Split(string(b), "\x00") {
			if a == arg {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// testLogger logs to t until the test ends (then drops), at debug level when
// GECKOHOST_TEST_DEBUG=1, else info (warn in benchmarks).
func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.stop)
	level := slog.LevelInfo
	if _, bench := t.(*testing.B); bench {
		level = slog.LevelWarn // one info line per session would drown the figures
	}
	if os.Getenv("GECKOHOST_TEST_DEBUG") == "1" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	mu      sync.Mutex
	t       testing.TB
	stopped bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}

var _ io.Writer = (*testWriter)(nil)

// BenchmarkPageConnect measures geckohost.js in Chromium against a real
// geckohost with Firefox workers: connect() to the echo worker, one echo,
// close. It reports the page-side milliseconds from connect() to the hello
// sent, to the answer, to "connected" and to the data channel open, and the
// echo round trip.
func BenchmarkPageConnect(b *testing.B) {
	netns.Skip(b)
	if _, err := os.Stat(browsers.ChromiumPath); err != nil {
		b.Skipf("chromium not installed at %s", browsers.ChromiumPath)
	}
	if _, err := gecko.FindFirefox(""); err != nil {
		b.Skipf("no Firefox for the workers: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	st := startStack(b, ctx, "firefox")
	d := newChromium(b, ctx)
	if err := d.navigate(ctx, st.URL); err != nil {
		b.Fatalf("open the page: %v", err)
	}
	if err := waitFor(ctx, d, `return document.documentElement.dataset.ready === "1"`); err != nil {
		b.Fatalf("page ready: %v", err)
	}
	js := `
		const m = await import("/geckohost.js");
		const s = await m.connect({ token: ` + jsString(st.Token) + `, source: "/workers/echo.js" });
		const t0 = performance.now();
		await new Promise((resolve) => { s.channel.onmessage = resolve; s.channel.send("x"); });
		const rtt = performance.now() - t0;
		s.close();
		return JSON.stringify({ ...s.timings, rtt });`
	var sum struct{ hello, answer, connected, open, rtt float64 }
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := d.eval(ctx, js)
		if err != nil {
			b.Fatalf("connect %d: %v", i, err)
		}
		var t struct {
			HelloSent, Answer, Connected, ChannelOpen, RTT float64 `json:",omitempty"`
		}
		if err := json.Unmarshal([]byte(got), &t); err != nil {
			b.Fatalf("decode %q: %v", got, err)
		}
		sum.hello += t.HelloSent
		sum.answer += t.Answer
		sum.connected += t.Connected
		sum.open += t.ChannelOpen
		sum.rtt += t.RTT
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(sum.hello/n, "ms-hello/op")
	b.ReportMetric(sum.answer/n, "ms-answer/op")
	b.ReportMetric(sum.connected/n, "ms-connected/op")
	b.ReportMetric(sum.open/n, "ms-open/op")
	b.ReportMetric(sum.rtt/n, "ms-echo-rtt/op")
}
