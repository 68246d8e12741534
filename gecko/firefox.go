package gecko

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/geckohost/geckohost/gecko/bidi"
)

// defaultStartTimeout is FirefoxOptions.StartTimeout's default.
const defaultStartTimeout = 30 * time.Second

// Bounds of Close and of the clean-up after exit (variables so that tests
// can shorten them).
var (
	// waitDelay bounds the wait after SIGTERM before SIGKILL.
	waitDelay = 5 * time.Second
	// browserCloseTimeout bounds browser.close during Close.
	browserCloseTimeout = 2 * time.Second
	// exitAfterBrowserClose is how long Close lets Firefox exit by itself
	// after browser.close before it sends SIGTERM.
	exitAfterBrowserClose = 3 * time.Second
	// outputDrainTimeout bounds waiting for the output reader after the
	// process group is dead.
	outputDrainTimeout = 2 * time.Second
)

// listeningPrefix starts the stderr line that carries the BiDi URL.
const listeningPrefix = "WebDriver BiDi listening on "

// FirefoxOptions configures LaunchFirefox and NewLauncher. The zero value
// works.
type FirefoxOptions struct {
	// Path is the Firefox binary; "" looks one up with FindFirefox.
	Path string
	// Logger receives Firefox's stdout and stderr lines at debug level
	// and lifecycle events. nil discards.
	Logger *slog.Logger
	// Prefs are extra user prefs (bool, string or integer values); they
	// override the defaults.
	Prefs map[string]any
	// CameraOrigins are origins (such as "http://127.0.0.1:8123") granted
	// the camera permission, which Firefox needs to gather ICE candidates
	// on loopback.
	CameraOrigins []string
	// StartTimeout bounds the time from exec to an open BiDi session.
	// 0 means 30 s.
	StartTimeout time.Duration
	// Args are extra command-line arguments.
	Args []string
	// Env is extra environment (KEY=VALUE) added to geckohost's own.
	// MOZ_REMOTE_SETTINGS_DEVTOOLS=1 (without it Firefox ignores the
	// remote-settings server pref and phones home), MOZ_CRASHREPORTER_DISABLE=1
	// and MOZ_DISABLE_AUTO_SAFE_MODE=1 are always set.
	Env []string
}

// FindFirefox returns path when it names an executable file, or, when path
// is "", the first of firefox-esr and firefox found on PATH. The error wraps
// ErrFirefoxNotFound.
func FindFirefox(path string) (string, error) {
	if path != "" {
		p, err := exec.LookPath(path)
		if err != nil {
			return "", fmt.Errorf("find firefox %q: %w (%w)", path, ErrFirefoxNotFound, err)
		}
		return p, nil
	}
	for _, name := range []string{"firefox-esr", "firefox"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("find firefox on PATH: %w", ErrFirefoxNotFound)
}

// Firefox is a running, supervised headless Firefox with an open BiDi
// session. Its methods are safe for concurrent use.
type Firefox struct {
	cmd     *exec.Cmd
	conn    *bidi.Conn
	profile string
	// sessionURL is the BiDi session endpoint; set before conn.
	sessionURL string
	// keepProfile keeps the profile after exit (template builds) instead
	// of removing it.
	keepProfile bool
	log         *slog.Logger
	stop        context.CancelFunc // cancels the exec context: SIGTERM

	done     chan struct{} // closed when the process exited or BiDi was lost
	doneOnce sync.Once
	exited   chan struct{} // closed after Wait, group kill, output drained, profile removed
	watchEnd chan struct{} // closed when the watch goroutine returned

	mu      sync.Mutex
	err     error
	closing bool

	closeOnce sync.Once
	closeErr  error
}

// LaunchFirefox starts headless Firefox with a fresh temporary profile and
// returns it once its BiDi session is open. ctx bounds the start only; the
// browser runs until Close or until it dies. On error nothing is left
// behind: the process group is killed and the profile removed. A Launcher
// starts browsers faster from a template profile.
func LaunchFirefox(ctx context.Context, opts FirefoxOptions) (*Firefox, error) {
	return launch(ctx, opts, launchConfig{})
}

// launchConfig says where a launch's profile comes from.
type launchConfig struct {
	// template, when set, is a profile directory copied into the new
	// profile before the prefs are written.
	template string
	// profile, when set, is an existing empty directory used as the
	// profile and kept after exit (building a template).
	profile string
	// nice lowers the browser's CPU priority (background template builds).
	nice bool
}

func launch(ctx context.Context, opts FirefoxOptions, cfg launchConfig) (*Firefox, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("launch firefox: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bin, err := FindFirefox(opts.Path)
	if err != nil {
		return nil, fmt.Errorf("launch firefox: %w", err)
	}
	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = defaultStartTimeout
	}
	startCtx, cancelStart := context.WithTimeout(ctx, timeout)
	defer cancelStart()

	profile, keep := cfg.profile, cfg.profile != ""
	removeProfile, err := prepareProfile(&profile, opts, cfg)
	if err != nil {
		return nil, err
	}

	r, w, err := os.Pipe()
	if err != nil {
		removeProfile()
		return nil, fmt.Errorf("create firefox output pipe: %w", err)
	}

	procCtx, stop := context.WithCancel(context.Background())
	cmd := firefoxCmd(procCtx, bin, profile, opts, w)

	start := time.Now()
	if err := cmd.Start(); err != nil {
		stop()
		_ = r.Close()
		_ = w.Close()
		removeProfile()
		return nil, fmt.Errorf("start firefox: %w", err)
	}
	_ = w.Close() // the children hold the write end now
	if cfg.nice {
		if err := setNice(cmd.Process.Pid); err != nil {
			log.Debug("lower firefox priority", "err", err)
		}
	}

	f := &Firefox{
		cmd:         cmd,
		profile:     profile,
		keepProfile: keep,
		log:         log.With("pid", cmd.Process.Pid),
		stop:        stop,
		done:        make(chan struct{}),
		exited:      make(chan struct{}),
		watchEnd:    make(chan struct{}),
	}
	urlCh := make(chan string, 1)
	outDone := make(chan struct{})
	go f.readOutput(r, urlCh, outDone)
	go f.wait(r, outDone)

	conn, err := f.connect(startCtx, start, urlCh)
	if err != nil {
		f.mu.Lock()
		f.closing = true // our kill; the error below says why
		f.mu.Unlock()
		f.kill()
		<-f.exited
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("%w after %v: %w", ErrStartTimeout, timeout, err)
		}
		return nil, fmt.Errorf("launch firefox: %w", err)
	}
	f.conn = conn
	go f.watch()
	f.log.Debug("firefox ready", "took", time.Since(start), "profile", profile, "template", cfg.template != "")
	return f, nil
}

// prepareProfile makes the profile directory (a new temporary one when
// *profile is "", else *profile itself, kept), copies the template into it
// and writes the prefs; remove deletes what it made.
func prepareProfile(profile *string, opts FirefoxOptions, cfg launchConfig) (remove func(), err error) {
	keep := *profile != ""
	if !keep {
		*profile, err = os.MkdirTemp("", "geckohost-profile-*")
		if err != nil {
			return nil, fmt.Errorf("create firefox profile: %w", err)
		}
		// So that a later geckohost removes it if this one is killed.
		if err := writeOwner(*profile); err != nil {
			_ = os.RemoveAll(*profile)
			return nil, fmt.Errorf("create firefox profile: %w", err)
		}
	}
	dir := *profile
	remove = func() {
		if !keep {
			_ = os.RemoveAll(dir)
		}
	}
	if cfg.template != "" {
		if err := copyProfile(cfg.template, dir); err != nil {
			remove()
			return nil, fmt.Errorf("copy template profile: %w", err)
		}
	}
	if err := writeProfile(dir, opts); err != nil {
		remove()
		return nil, err
	}
	return remove, nil
}

// firefoxCmd is the headless Firefox command on profile, its output to w,
// in a process group of its own, stopped with SIGTERM when ctx is done.
func firefoxCmd(ctx context.Context, bin, profile string, opts FirefoxOptions, w *os.File) *exec.Cmd {
	args := append([]string{"--headless", "--no-remote", "--profile", profile, "--remote-debugging-port", "0"}, opts.Args...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(),
		"MOZ_REMOTE_SETTINGS_DEVTOOLS=1",
		"MOZ_CRASHREPORTER_DISABLE=1",
		"MOZ_DISABLE_AUTO_SAFE_MODE=1",
		// A small window: the shell pages show nothing, and the
		// compositor's buffers follow the window's size.
		"MOZ_HEADLESS_WIDTH=64",
		"MOZ_HEADLESS_HEIGHT=64",
	)
	cmd.Env = append(cmd.Env, opts.Env...)
	cmd.Stdout = w
	cmd.Stderr = w
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = waitDelay
	return cmd
}

// connect waits for the BiDi URL on Firefox's stderr, dials it and opens
// the session.
func (f *Firefox) connect(ctx context.Context, start time.Time, urlCh <-chan string) (*bidi.Conn, error) {
	var wsURL string
	select {
	case wsURL = <-urlCh:
		f.log.Debug("firefox bidi listening", "url", wsURL, "after", time.Since(start))
	case <-f.exited:
		return nil, fmt.Errorf("wait for bidi url: %w", f.exitError())
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for bidi url: %w", ctx.Err())
	}
	f.sessionURL = strings.TrimRight(wsURL, "/") + "/session"
	conn, err := bidi.Dial(ctx, f.sessionURL, bidi.Options{Logger: f.log})
	if err != nil {
		return nil, err
	}
	if err := conn.NewSession(ctx); err != nil {
		_ = conn.Close()
		select {
		case <-f.exited:
			return nil, fmt.Errorf("%w (%w)", err, f.exitError())
		default:
		}
		return nil, err
	}
	return conn, nil
}

// exitError describes the process's exit; call after exited is closed.
func (f *Firefox) exitError() error {
	if st := f.cmd.ProcessState; st != nil {
		return fmt.Errorf("%w: %s", ErrFirefoxExited, st)
	}
	return ErrFirefoxExited
}

// readOutput logs Firefox's output lines at debug level and sends the BiDi
// URL once. It ends at EOF, when every process holding the pipe is gone.
func (f *Firefox) readOutput(r io.Reader, urlCh chan<- string, outDone chan<- struct{}) {
	defer close(outDone)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	sent := false
	for sc.Scan() {
		line := sc.Text()
		f.log.Debug("firefox output", "line", line)
		if !sent {
			if i := strings.Index(line, listeningPrefix); i >= 0 {
				urlCh <- strings.TrimSpace(line[i+len(listeningPrefix):])
				sent = true
			}
		}
	}
}

// groupExitTimeout bounds the wait for a killed process group to exit.
const groupExitTimeout = 5 * time.Second

// wait owns the process: it waits for it, kills what is left of its
// process group, closes done, drains the output, removes the profile and
// closes exited.
func (f *Firefox) wait(r *os.File, outDone <-chan struct{}) {
	defer close(f.exited)
	err := f.cmd.Wait()
	// Content processes may outlive the parent (a kill -9 of the parent
	// leaves them): kill the whole group and the helpers outside it, and
	// wait (bounded) until all are gone, so that none still writes to the
	// profile removed below and Close returns with nothing left running.
	pid := f.cmd.Process.Pid
	_ = killGroup(pid, syscall.SIGKILL)
	for deadline := time.Now().Add(groupExitTimeout); time.Now().Before(deadline); {
		hs := helpers(pid)
		for _, h := range hs {
			_ = syscall.Kill(h, syscall.SIGKILL)
		}
		if len(hs) == 0 && !groupAlive(pid) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.stop()
	f.mu.Lock()
	closing := f.closing
	f.mu.Unlock()
	if closing {
		f.log.Debug("firefox exited", "status", err)
	} else {
		f.log.Warn("firefox exited unexpectedly", "status", err)
	}
	f.end(f.exitError()) // Done at once; the clean-up below may take a while
	t := time.NewTimer(outputDrainTimeout)
	select {
	case <-outDone:
	case <-t.C:
		f.log.Warn("firefox output still open after exit; closing it")
	}
	t.Stop()
	_ = r.Close()
	<-outDone
	if f.keepProfile {
		cleanProfile(f.profile)
	} else if rerr := os.RemoveAll(f.profile); rerr != nil {
		f.log.Warn("remove firefox profile", "dir", f.profile, "err", rerr)
	}
}

// watch closes done and kills Firefox when the BiDi connection is lost,
// and closes the connection when the process exits.
func (f *Firefox) watch() {
	defer close(f.watchEnd)
	select {
	case <-f.conn.Done():
		f.end(fmt.Errorf("%w: %w", ErrBiDiLost, f.conn.Err()))
		f.mu.Lock()
		closing := f.closing
		f.mu.Unlock()
		if !closing {
			// A browser we cannot drive is useless: kill it. During
			// Close the socket closes because of browser.close, and
			// Close itself sees to the process.
			f.kill()
		}
		<-f.exited
	case <-f.exited:
	}
	_ = f.conn.Close()
}

// end records why Firefox ended (unless Close asked for it) and closes done.
func (f *Firefox) end(err error) {
	f.doneOnce.Do(func() {
		f.mu.Lock()
		if !f.closing {
			f.err = err
		}
		f.mu.Unlock()
		close(f.done)
	})
}

// kill sends SIGKILL to the whole process group.
func (f *Firefox) kill() {
	_ = killGroup(f.cmd.Process.Pid, syscall.SIGKILL)
}

// Conn returns the BiDi connection (session open).
func (f *Firefox) Conn() *bidi.Conn { return f.conn }

// SessionURL returns the BiDi session endpoint, ws://127.0.0.1:PORT/session.
// Firefox accepts one session, the one Conn holds; it refuses WebSocket
// requests that carry an Origin header, so pages cannot reach it.
func (f *Firefox) SessionURL() string { return f.sessionURL }

// PID returns the main Firefox process id (also its process group id).
func (f *Firefox) PID() int { return f.cmd.Process.Pid }

// Profile returns the temporary profile directory (removed after exit).
func (f *Firefox) Profile() string { return f.profile }

// Done returns a channel closed as soon as the process exited or the BiDi
// connection was lost (the process is then killed too).
func (f *Firefox) Done() <-chan struct{} { return f.done }

// Err returns why Firefox ended: nil while it runs and after a requested
// Close, else an error wrapping ErrFirefoxExited or ErrBiDiLost.
func (f *Firefox) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Close stops Firefox: browser.close (bounded by a short timeout), then,
// if it has not exited soon after, SIGTERM, and SIGKILL after a delay. It
// returns once the process and its whole group are gone, the output reader
// and watcher have ended and the profile is removed. If ctx ends first,
// the group is killed at once and Close still waits for the cleanup. It is
// idempotent; later calls return the first call's result.
func (f *Firefox) Close(ctx context.Context) error {
	f.closeOnce.Do(func() { f.closeErr = f.close(ctx) })
	<-f.watchEnd
	return f.closeErr
}

func (f *Firefox) close(ctx context.Context) error {
	f.mu.Lock()
	f.closing = true
	f.mu.Unlock()

	select {
	case <-f.done:
	default:
		cctx, cancel := context.WithTimeout(ctx, browserCloseTimeout)
		if err := f.conn.CloseBrowser(cctx); err != nil {
			f.log.Debug("browser.close failed", "err", err)
		}
		cancel()
		t := time.NewTimer(exitAfterBrowserClose)
		select {
		case <-f.exited:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	f.stop() // SIGTERM unless exited; exec sends SIGKILL after waitDelay
	var err error
	select {
	case <-f.exited:
	case <-ctx.Done():
		f.kill()
		<-f.exited
		err = fmt.Errorf("close firefox: %w", ctx.Err())
	}
	f.end(nil)
	return err
}
