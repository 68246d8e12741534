package gecko

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/geckohost/geckohost/gecko/bidi"
	"github.com/geckohost/geckohost/gecko/core"
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
	return core.FindBinary("firefox", path, []string{"firefox-esr", "firefox"}, ErrFirefoxNotFound)
}

// Firefox is a running, supervised headless Firefox with an open BiDi
// session (its process is a core.Process). Its methods are safe for
// concurrent use.
type Firefox struct {
	proc    *core.Process
	conn    *bidi.Conn
	profile string
	// sessionURL is the BiDi session endpoint; set before conn.
	sessionURL string
	log        *slog.Logger
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
	if _, err := prepareProfile(&profile, opts, cfg); err != nil {
		return nil, err
	}

	var keepDir func(string)
	if keep {
		keepDir = cleanProfile
	}
	start := time.Now()
	proc, err := core.Start(core.Command{
		Name: "firefox", Path: bin, Args: firefoxArgs(profile, opts), Env: firefoxEnv(opts),
		Dir: profile, DirName: "profile", Keep: keepDir, Nice: cfg.nice,
		Prefix: listeningPrefix, Helpers: helpers, Exited: ErrFirefoxExited,
		WaitDelay: waitDelay, Logger: log,
	})
	if err != nil {
		return nil, err // core.Start removed the profile (unless kept)
	}
	f := &Firefox{proc: proc, profile: profile, log: proc.Log()}
	conn, err := f.connect(startCtx, start)
	if err != nil {
		proc.Abort()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("%w after %v: %w", ErrStartTimeout, timeout, err)
		}
		return nil, fmt.Errorf("launch firefox: %w", err)
	}
	f.conn = conn
	proc.Watch(bidiLink{conn})
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

// firefoxArgs are the headless Firefox's arguments on profile.
func firefoxArgs(profile string, opts FirefoxOptions) []string {
	return append([]string{"--headless", "--no-remote", "--profile", profile, "--remote-debugging-port", "0"}, opts.Args...)
}

// firefoxEnv is the headless Firefox's environment: geckohost's, the
// variables that keep Firefox quiet, then opts.Env.
func firefoxEnv(opts FirefoxOptions) []string {
	env := append(os.Environ(),
		"MOZ_REMOTE_SETTINGS_DEVTOOLS=1",
		"MOZ_CRASHREPORTER_DISABLE=1",
		"MOZ_DISABLE_AUTO_SAFE_MODE=1",
		// A small window: the shell pages show nothing, and the
		// compositor's buffers follow the window's size.
		"MOZ_HEADLESS_WIDTH=64",
		"MOZ_HEADLESS_HEIGHT=64",
	)
	return append(env, opts.Env...)
}

// connect waits for the BiDi URL on Firefox's stderr, dials it and opens
// the session.
func (f *Firefox) connect(ctx context.Context, start time.Time) (*bidi.Conn, error) {
	wsURL, err := f.proc.WaitURL(ctx)
	if err != nil {
		return nil, fmt.Errorf("wait for bidi url: %w", err)
	}
	f.log.Debug("firefox bidi listening", "url", wsURL, "after", time.Since(start))
	f.sessionURL = strings.TrimRight(wsURL, "/") + "/session"
	conn, err := bidi.Dial(ctx, f.sessionURL, bidi.Options{Logger: f.log})
	if err != nil {
		return nil, err
	}
	if err := conn.NewSession(ctx); err != nil {
		_ = conn.Close()
		select {
		case <-f.proc.Exited():
			return nil, fmt.Errorf("%w (%w)", err, f.proc.ExitError())
		default:
		}
		return nil, err
	}
	return conn, nil
}

// bidiLink is the BiDi connection as the process's watcher sees it.
type bidiLink struct{ conn *bidi.Conn }

// Lost is closed when the BiDi connection is lost.
func (l bidiLink) Lost() <-chan struct{} { return l.conn.Done() }

// LostError wraps ErrBiDiLost and the connection's error.
func (l bidiLink) LostError() error { return fmt.Errorf("%w: %w", ErrBiDiLost, l.conn.Err()) }

// Release closes the connection.
func (l bidiLink) Release() { _ = l.conn.Close() }

// Conn returns the BiDi connection (session open).
func (f *Firefox) Conn() *bidi.Conn { return f.conn }

// SessionURL returns the BiDi session endpoint, ws://127.0.0.1:PORT/session.
// Firefox accepts one session, the one Conn holds; it refuses WebSocket
// requests that carry an Origin header, so pages cannot reach it.
func (f *Firefox) SessionURL() string { return f.sessionURL }

// PID returns the main Firefox process id (also its process group id).
func (f *Firefox) PID() int { return f.proc.PID() }

// Profile returns the temporary profile directory (removed after exit).
func (f *Firefox) Profile() string { return f.profile }

// Done returns a channel closed as soon as the process exited or the BiDi
// connection was lost (the process is then killed too).
func (f *Firefox) Done() <-chan struct{} { return f.proc.Done() }

// Err returns why Firefox ended: nil while it runs and after a requested
// Close, else an error wrapping ErrFirefoxExited or ErrBiDiLost.
func (f *Firefox) Err() error { return f.proc.Err() }

// Close stops Firefox: browser.close (bounded by a short timeout), then,
// if it has not exited soon after, SIGTERM, and SIGKILL after a delay. It
// returns once the process and its whole group are gone, the output reader
// and watcher have ended and the profile is removed. If ctx ends first,
// the group is killed at once and Close still waits for the cleanup. It is
// idempotent; later calls return the first call's result.
func (f *Firefox) Close(ctx context.Context) error { return f.proc.Close(ctx, f.quit) }

// quit asks Firefox to exit (browser.close, bounded) and gives it
// exitAfterBrowserClose to do so.
func (f *Firefox) quit(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, browserCloseTimeout)
	if err := f.conn.CloseBrowser(cctx); err != nil {
		f.log.Debug("browser.close failed", "err", err)
	}
	cancel()
	t := time.NewTimer(exitAfterBrowserClose)
	select {
	case <-f.proc.Exited():
	case <-t.C:
	case <-ctx.Done():
	}
	t.Stop()
}
