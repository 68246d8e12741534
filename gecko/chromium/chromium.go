package chromium

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/remote"
	"github.com/geckohost/geckohost/gecko"
	"github.com/geckohost/geckohost/internal/proc"
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
	if path != "" {
		p, err := exec.LookPath(path)
		if err != nil {
			return "", fmt.Errorf("find chromium %q: %w (%w)", path, ErrChromiumNotFound, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath(debianChromium); err == nil {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("find chromium on PATH: %w", ErrChromiumNotFound)
}

// Timeouts of a Chromium's life.
const (
	startTimeout       = 30 * time.Second
	waitDelay          = 5 * time.Second
	groupExitTimeout   = 5 * time.Second
	outputDrainTimeout = 2 * time.Second
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

// browserProc is one running, supervised headless Chromium with a CDP
// connection (a chromedp browser context).
type browserProc struct {
	cmd   *exec.Cmd
	dir   string // --user-data-dir, removed after exit
	wsURL string
	log   *slog.Logger
	stop  context.CancelFunc // cancels the exec context: SIGTERM

	// ctx is the chromedp context of the browser connection (attached to
	// its first, blank tab); cancelCDP ends the connection.
	ctx       context.Context
	cancelCDP context.CancelFunc
	cancelAll context.CancelFunc

	done     chan struct{} // closed when the process exited or CDP was lost
	doneOnce sync.Once
	exited   chan struct{} // closed after Wait, group kill, output drained, dir removed
	watchEnd chan struct{}

	mu      sync.Mutex
	err     error
	closing bool

	closeOnce sync.Once
	closeErr  error
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
	r, w, err := os.Pipe()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("create chromium output pipe: %w", err)
	}
	procCtx, stop := context.WithCancel(context.Background())
	cmd := chromiumCmd(procCtx, bin, dir, append(slices.Clone(args), opts.Args...), w)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		stop()
		_ = r.Close()
		_ = w.Close()
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("start chromium: %w", err)
	}
	_ = w.Close()
	b := &browserProc{cmd: cmd, dir: dir, log: log.With("pid", cmd.Process.Pid), stop: stop,
		done: make(chan struct{}), exited: make(chan struct{}), watchEnd: make(chan struct{})}
	urlCh := make(chan string, 1)
	outDone := make(chan struct{})
	go b.readOutput(r, urlCh, outDone)
	go b.wait(r, outDone)
	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := b.connect(sctx, urlCh); err != nil {
		b.mu.Lock()
		b.closing = true
		b.mu.Unlock()
		b.kill()
		<-b.exited
		if b.cancelAll != nil {
			b.cancelAll()
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("%w after %v: %w", ErrStartTimeout, startTimeout, err)
		}
		return nil, fmt.Errorf("launch chromium: %w", err)
	}
	go b.watch()
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

// chromiumCmd is the Chromium command, its output to w, in a process group
// of its own, stopped with SIGTERM when ctx is done and killed when
// geckohost dies.
func chromiumCmd(ctx context.Context, bin, dir string, args []string, w *os.File) *exec.Cmd {
	all := append(slices.Clone(defaultArgs), "--user-data-dir="+dir)
	if os.Geteuid() == 0 {
		all = append(all, "--no-sandbox") // Chromium refuses to run as root with its sandbox
	}
	all = append(all, args...)
	all = append(all, "about:blank")
	cmd := exec.CommandContext(ctx, bin, all...)
	cmd.Stdout = w
	cmd.Stderr = w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = waitDelay
	return cmd
}

// connect waits for the CDP URL on stderr and attaches chromedp to it.
func (b *browserProc) connect(ctx context.Context, urlCh <-chan string) error {
	select {
	case b.wsURL = <-urlCh:
	case <-b.exited:
		return fmt.Errorf("wait for devtools url: %w", b.exitError())
	case <-ctx.Done():
		return fmt.Errorf("wait for devtools url: %w", ctx.Err())
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

// exitError describes the process's exit; call after exited is closed.
func (b *browserProc) exitError() error {
	if st := b.cmd.ProcessState; st != nil {
		return fmt.Errorf("%w: %s", ErrChromiumExited, st)
	}
	return ErrChromiumExited
}

// readOutput logs Chromium's output at debug level and sends the CDP URL
// once. It ends at EOF, when every process holding the pipe is gone.
func (b *browserProc) readOutput(r io.Reader, urlCh chan<- string, outDone chan<- struct{}) {
	defer close(outDone)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	sent := false
	for sc.Scan() {
		line := sc.Text()
		b.log.Debug("chromium output", "line", line)
		if i := strings.Index(line, listeningPrefix); i >= 0 && !sent {
			urlCh <- strings.TrimSpace(line[i+len(listeningPrefix):])
			sent = true
		}
	}
}

// wait owns the process: it waits for it, kills what is left of its
// process group (renderers outlive a kill -9 of the browser), closes
// done, drains the output and removes the user data directory.
func (b *browserProc) wait(r *os.File, outDone <-chan struct{}) {
	defer close(b.exited)
	err := b.cmd.Wait()
	pid := b.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	for deadline := time.Now().Add(groupExitTimeout); time.Now().Before(deadline) && len(proc.GroupMembers(pid)) > 0; {
		time.Sleep(5 * time.Millisecond) // polling the kernel's process list: no event to wait on
	}
	b.stop()
	b.mu.Lock()
	closing := b.closing
	b.mu.Unlock()
	if closing {
		b.log.Debug("chromium exited", "status", err)
	} else {
		b.log.Warn("chromium exited unexpectedly", "status", err)
	}
	b.end(b.exitError())
	t := time.NewTimer(outputDrainTimeout)
	select {
	case <-outDone:
	case <-t.C:
		b.log.Warn("chromium output still open after exit; closing it")
	}
	t.Stop()
	_ = r.Close()
	<-outDone
	if rerr := os.RemoveAll(b.dir); rerr != nil {
		b.log.Warn("remove chromium user data dir", "dir", b.dir, "err", rerr)
	}
}

// watch ends the browser when the CDP connection is lost (killing the
// process) and ends the connection when the process exits.
func (b *browserProc) watch() {
	defer close(b.watchEnd)
	lost := chromedp.FromContext(b.ctx).Browser.LostConnection
	select {
	case <-lost:
		b.end(ErrCDPLost)
		b.mu.Lock()
		closing := b.closing
		b.mu.Unlock()
		if !closing {
			b.kill()
		}
		<-b.exited
	case <-b.exited:
	}
	b.cancelCDP()
	b.cancelAll()
}

// end records why Chromium ended (unless Close asked for it) and closes
// done.
func (b *browserProc) end(err error) {
	b.doneOnce.Do(func() {
		b.mu.Lock()
		if !b.closing {
			b.err = err
		}
		b.mu.Unlock()
		close(b.done)
	})
}

// kill sends SIGKILL to the whole process group.
func (b *browserProc) kill() { _ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL) }

// PID is the browser process id (also its process group id).
func (b *browserProc) PID() int { return b.cmd.Process.Pid }

// Browser is the chromedp browser (a cdp.Session for browser commands).
func (b *browserProc) Browser() *chromedp.Browser { return chromedp.FromContext(b.ctx).Browser }

// Done is closed as soon as the process exited or CDP was lost.
func (b *browserProc) Done() <-chan struct{} { return b.done }

// Err is why Chromium ended: nil while it runs and after Close.
func (b *browserProc) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// Close stops Chromium: SIGTERM (Chromium then closes in order), and
// SIGKILL after a delay (exec's WaitDelay). It returns once the process group
// is gone and the user data directory removed; past ctx the group is
// killed at once.
func (b *browserProc) Close(ctx context.Context) error {
	b.closeOnce.Do(func() { b.closeErr = b.close(ctx) })
	<-b.watchEnd
	return b.closeErr
}

func (b *browserProc) close(ctx context.Context) error {
	b.mu.Lock()
	b.closing = true
	b.mu.Unlock()
	b.stop()
	var err error
	select {
	case <-b.exited:
	case <-ctx.Done():
		b.kill()
		<-b.exited
		err = fmt.Errorf("close chromium: %w", ctx.Err())
	}
	b.end(nil)
	return err
}
