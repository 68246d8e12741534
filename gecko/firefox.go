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
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/geckohost/geckohost/gecko/bidi"
)

const (
	defaultStartTimeout = 30 * time.Second
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
	// listeningPrefix starts the stderr line that carries the BiDi URL.
	listeningPrefix = "WebDriver BiDi listening on "
)

// FirefoxOptions configures LaunchFirefox. The zero value works.
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
	// Env is extra environment (KEY=VALUE) added to geckohost's own.
	// MOZ_REMOTE_SETTINGS_DEVTOOLS=1 is always set.
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
	log     *slog.Logger
	stop    context.CancelFunc // cancels the exec context: SIGTERM

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
// behind: the process group is killed and the profile removed.
func LaunchFirefox(ctx context.Context, opts FirefoxOptions) (*Firefox, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("launch firefox: %w", err)
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

	profile, err := os.MkdirTemp("", "geckohost-profile-*")
	if err != nil {
		return nil, fmt.Errorf("create firefox profile: %w", err)
	}
	if err := writeProfile(profile, opts); err != nil {
		_ = os.RemoveAll(profile)
		return nil, err
	}

	r, w, err := os.Pipe()
	if err != nil {
		_ = os.RemoveAll(profile)
		return nil, fmt.Errorf("create firefox output pipe: %w", err)
	}

	procCtx, stop := context.WithCancel(context.Background())
	cmd := exec.CommandContext(procCtx, bin,
		"--headless", "--no-remote", "--profile", profile, "--remote-debugging-port", "0")
	cmd.Env = append(os.Environ(),
		"MOZ_REMOTE_SETTINGS_DEVTOOLS=1",
		"MOZ_CRASHREPORTER_DISABLE=1",
		"MOZ_DISABLE_AUTO_SAFE_MODE=1",
	)
	cmd.Env = append(cmd.Env, opts.Env...)
	cmd.Stdout = w
	cmd.Stderr = w
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = waitDelay

	start := time.Now()
	if err := cmd.Start(); err != nil {
		stop()
		_ = r.Close()
		_ = w.Close()
		_ = os.RemoveAll(profile)
		return nil, fmt.Errorf("start firefox: %w", err)
	}
	_ = w.Close() // the children hold the write end now

	f := &Firefox{
		cmd:      cmd,
		profile:  profile,
		log:      log.With("pid", cmd.Process.Pid),
		stop:     stop,
		done:     make(chan struct{}),
		exited:   make(chan struct{}),
		watchEnd: make(chan struct{}),
	}
	urlCh := make(chan string, 1)
	outDone := make(chan struct{})
	go f.readOutput(r, urlCh, outDone)
	go f.wait(r, outDone)

	conn, err := f.connect(startCtx, urlCh)
	if err != nil {
		f.kill()
		<-f.exited
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("%w after %v: %w", ErrStartTimeout, timeout, err)
		}
		return nil, fmt.Errorf("launch firefox: %w", err)
	}
	f.conn = conn
	go f.watch()
	f.log.Debug("firefox ready", "took", time.Since(start), "profile", profile)
	return f, nil
}

// writeProfile writes user.js and the permissions file into dir.
func writeProfile(dir string, opts FirefoxOptions) error {
	js, err := userJS(profilePrefs(dir, opts.Prefs))
	if err != nil {
		return fmt.Errorf("write firefox profile: %w", err)
	}
	perms, err := permissionsText(opts.CameraOrigins)
	if err != nil {
		return fmt.Errorf("write firefox profile: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "user.js"), js, 0o600); err != nil {
		return fmt.Errorf("write firefox profile: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, permissionsFile), perms, 0o600); err != nil {
		return fmt.Errorf("write firefox profile: %w", err)
	}
	return nil
}

// connect waits for the BiDi URL on Firefox's stderr, dials it and opens
// the session.
func (f *Firefox) connect(ctx context.Context, urlCh <-chan string) (*bidi.Conn, error) {
	var wsURL string
	select {
	case wsURL = <-urlCh:
	case <-f.exited:
		return nil, fmt.Errorf("wait for bidi url: %w", f.exitError())
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for bidi url: %w", ctx.Err())
	}
	conn, err := bidi.Dial(ctx, strings.TrimRight(wsURL, "/")+"/session", bidi.Options{Logger: f.log})
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

// wait owns the process: it waits for it, kills what is left of its
// process group, drains the output, removes the profile and closes exited.
func (f *Firefox) wait(r *os.File, outDone <-chan struct{}) {
	defer close(f.exited)
	err := f.cmd.Wait()
	// Content processes may outlive the parent (a kill -9 of the parent
	// leaves them): kill the whole group.
	_ = killGroup(f.cmd.Process.Pid, syscall.SIGKILL)
	f.stop()
	t := time.NewTimer(outputDrainTimeout)
	select {
	case <-outDone:
	case <-t.C:
		f.log.Warn("firefox output still open after exit; closing it")
	}
	t.Stop()
	_ = r.Close()
	<-outDone
	if rerr := os.RemoveAll(f.profile); rerr != nil {
		f.log.Warn("remove firefox profile", "dir", f.profile, "err", rerr)
	}
	f.mu.Lock()
	closing := f.closing
	f.mu.Unlock()
	if closing {
		f.log.Debug("firefox exited", "status", err)
	} else {
		f.log.Warn("firefox exited unexpectedly", "status", err)
	}
	f.end(f.exitError())
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
