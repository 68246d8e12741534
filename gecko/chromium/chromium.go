package chromium

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/remote"
	"github.com/geckohost/geckohost/gecko"
	"github.com/geckohost/geckohost/gecko/core"
)

// Options configure the Chromium processes of a Pool. The zero value
// works: Debian's /usr/lib/chromium/chromium, else chromium or
// chromium-browser on PATH.
type Options struct {
	// Path is the Chromium binary; "" looks one up with FindChromium.
	Path string
	// Args are extra command-line arguments, after geckohost's own.
	Args []string
	// Logger receives Chromium's output lines at debug level and
	// lifecycle events; nil: the pool's logger.
	Logger *slog.Logger
}

// debianChromium is Debian's Chromium binary (/usr/bin/chromium is a
// wrapper script that execs it).
const debianChromium = "/usr/lib/chromium/chromium"

// FindChromium returns path when it names an executable file, or, when
// path is "", Debian's /usr/lib/chromium/chromium, else the first of
// chromium and chromium-browser on PATH. The error wraps
// ErrChromiumNotFound.
func FindChromium(path string) (string, error) {
	return core.FindBinary("chromium", path, []string{debianChromium, "chromium", "chromium-browser"}, ErrChromiumNotFound)
}

// Timeouts of a Chromium's life.
const (
	startTimeout = 30 * time.Second
	waitDelay    = 5 * time.Second
)

// listeningPrefix starts the stderr line that carries the CDP URL.
const listeningPrefix = "DevTools listening on "

// dirPattern names the temporary user data directories.
const dirPattern = "geckohost-chromium-*"

// RemoveStaleProfiles removes the user data directories
// ($TMPDIR/geckohost-chromium-*) left by geckohost processes that were
// killed, as gecko.RemoveStaleProfiles does for Firefox's profiles: only
// those whose owning process is gone. It returns the directories removed.
func RemoveStaleProfiles() ([]string, error) {
	return gecko.RemoveStaleDirs(dirPattern)
}

// browserProc is one running, supervised headless Chromium (a
// core.Process) with a CDP connection (a chromedp browser context).
type browserProc struct {
	proc  *core.Process
	dir   string // --user-data-dir, removed after exit
	wsURL string
	log   *slog.Logger

	// ctx is the chromedp context of the browser connection (attached to
	// its first, blank tab); cancelCDP ends the connection.
	ctx       context.Context
	cancelCDP context.CancelFunc
	cancelAll context.CancelFunc
}

// launch starts headless Chromium with a fresh user data directory and
// args (after the defaults), and returns it once its CDP connection is up.
// ctx bounds the start only. On error nothing is left behind.
func launch(ctx context.Context, opts Options, args []string, log *slog.Logger) (*browserProc, error) {
	bin, err := FindChromium(opts.Path)
	if err != nil {
		return nil, fmt.Errorf("launch chromium: %w", err)
	}
	dir, err := os.MkdirTemp("", dirPattern)
	if err != nil {
		return nil, fmt.Errorf("create chromium user data dir: %w", err)
	}
	if err := gecko.WriteOwner(dir); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("create chromium user data dir: %w", err)
	}
	start := time.Now()
	proc, err := core.Start(core.Command{
		Name: "chromium", Path: bin, Args: chromiumArgs(dir, append(slices.Clone(args), opts.Args...)),
		Dir: dir, DirName: "user data dir", Prefix: listeningPrefix, Exited: ErrChromiumExited,
		WaitDelay: waitDelay, Logger: log,
	})
	if err != nil {
		return nil, err // core.Start removed dir
	}
	b := &browserProc{proc: proc, dir: dir, log: proc.Log()}
	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := b.connect(sctx); err != nil {
		proc.Abort()
		if b.cancelAll != nil {
			b.cancelAll()
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("%w after %v: %w", ErrStartTimeout, startTimeout, err)
		}
		return nil, fmt.Errorf("launch chromium: %w", err)
	}
	proc.Watch(cdpLink{b})
	b.log.Debug("chromium ready", "took", time.Since(start), "dir", dir)
	return b, nil
}

// defaultArgs are the flags of every Chromium geckohost starts: headless,
// none of a first run's UI, nothing phoning home (background networking,
// component updates, sync, crash reports, metrics), and no throttling of
// the shell pages' timers (every page is a background tab). None of them
// is about WebRTC.
var defaultArgs = []string{
	"--headless", "--remote-debugging-port=0", "--no-first-run", "--no-default-browser-check",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
	"--disable-default-apps", "--disable-extensions", "--disable-breakpad", "--disable-crash-reporter",
	"--metrics-recording-only", "--disable-domain-reliability", "--no-pings", "--disable-client-side-phishing-detection",
	"--password-store=basic", "--use-mock-keychain",
	"--disable-background-timer-throttling", "--disable-renderer-backgrounding",
	"--disable-backgrounding-occluded-windows", "--disable-ipc-flooding-protection",
	"--window-size=64,64",
}

// chromiumArgs are Chromium's arguments on user data directory dir: the
// defaults, then args, then the first tab's URL.
func chromiumArgs(dir string, args []string) []string {
	all := append(slices.Clone(defaultArgs), "--user-data-dir="+dir)
	if os.Geteuid() == 0 {
		all = append(all, "--no-sandbox") // Chromium refuses to run as root with its sandbox
	}
	all = append(all, args...)
	return append(all, "about:blank")
}

// connect waits for the CDP URL on stderr and attaches chromedp to it.
func (b *browserProc) connect(ctx context.Context) error {
	var err error
	if b.wsURL, err = b.proc.WaitURL(ctx); err != nil {
		return fmt.Errorf("wait for devtools url: %w", err)
	}
	actx, cancelAll := remote.NewAllocator(context.Background(), b.wsURL, remote.NoModifyURL)
	bctx, cancelCDP := chromedp.NewContext(actx, chromedp.WithLogf(func(string, ...any) {}),
		chromedp.WithErrorf(func(f string, a ...any) { b.log.Debug("chromedp", "msg", fmt.Sprintf(f, a...)) }))
	b.ctx, b.cancelCDP, b.cancelAll = bctx, cancelCDP, cancelAll
	errc := make(chan error, 1)
	go func() { errc <- chromedp.Do(bctx) }()
	select {
	case err := <-errc:
		if err != nil {
			return fmt.Errorf("attach to chromium: %w", err)
		}
		return nil
	case <-ctx.Done():
		cancelCDP()
		<-errc
		return fmt.Errorf("attach to chromium: %w", ctx.Err())
	}
}

// cdpLink is the CDP connection as the process's watcher sees it.
type cdpLink struct{ b *browserProc }

// Lost is closed when chromedp lost the browser connection.
func (l cdpLink) Lost() <-chan struct{} {
	return chromedp.FromContext(l.b.ctx).Browser.LostConnection
}

// LostError is ErrCDPLost.
func (l cdpLink) LostError() error { return ErrCDPLost }

// Release ends the chromedp contexts.
func (l cdpLink) Release() {
	l.b.cancelCDP()
	l.b.cancelAll()
}

// PID is the browser process id (also its process group id).
func (b *browserProc) PID() int { return b.proc.PID() }

// Browser is the chromedp browser (a cdp.Session for browser commands).
func (b *browserProc) Browser() *chromedp.Browser { return chromedp.FromContext(b.ctx).Browser }

// Done is closed as soon as the process exited or CDP was lost.
func (b *browserProc) Done() <-chan struct{} { return b.proc.Done() }

// Err is why Chromium ended: nil while it runs and after Close.
func (b *browserProc) Err() error { return b.proc.Err() }

// Close stops Chromium: SIGTERM (Chromium then closes in order), and
// SIGKILL after a delay (exec's WaitDelay). It returns once the process group
// is gone and the user data directory removed; past ctx the group is
// killed at once.
func (b *browserProc) Close(ctx context.Context) error { return b.proc.Close(ctx, nil) }
