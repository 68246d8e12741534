package gecko

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Launcher launches Firefoxes with the same options. After its first
// launch it builds a template profile in the background (a Firefox started
// once at the lowest CPU priority, then closed), and later launches copy
// that template instead of starting from an empty profile, which makes
// start-up faster (see BenchmarkLauncher). A template that cannot be used
// is dropped, and launches go on from empty profiles; a failed build is not
// retried. It is safe for concurrent use; Close removes the template.
type Launcher struct {
	opts FirefoxOptions
	log  *slog.Logger

	ctx    context.Context // ends at Close; bounds the template build
	cancel context.CancelFunc
	wg     sync.WaitGroup // the template build

	mu       sync.Mutex
	root     string // template directory (geckohost-template-*), "" if none
	template string // the ready template profile inside root, "" until built
	tried    bool   // a build was started (there is no retry after a failure)
	closed   bool
}

// NewLauncher returns a Launcher for opts. Nothing starts until Launch.
func NewLauncher(opts FirefoxOptions) *Launcher {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Launcher{opts: opts, log: log, ctx: ctx, cancel: cancel}
}

// Launch starts a Firefox like LaunchFirefox, from the template profile
// when it is ready.
func (l *Launcher) Launch(ctx context.Context) (*Firefox, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, fmt.Errorf("launch firefox: %w", ErrLauncherClosed)
	}
	tmpl := l.template
	l.mu.Unlock()
	f, err := launch(ctx, l.opts, launchConfig{template: tmpl})
	if err != nil && tmpl != "" && ctx.Err() == nil && !errors.Is(err, ErrFirefoxNotFound) {
		// A damaged template must not stop the browsers: drop it and
		// start from an empty profile.
		l.log.Warn("firefox launch from the template profile failed; dropping the template", "err", err)
		l.dropTemplate(tmpl)
		f, err = launch(ctx, l.opts, launchConfig{})
	}
	if err != nil {
		return nil, err
	}
	l.startBuild()
	return f, nil
}

// dropTemplate removes the template tmpl unless it was replaced already.
func (l *Launcher) dropTemplate(tmpl string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.template != tmpl {
		return
	}
	// Launches in flight may still be copying it; they fail and fall back.
	_ = os.RemoveAll(l.root)
	l.root, l.template = "", ""
}

// HasTemplate reports whether launches now start from a template profile.
func (l *Launcher) HasTemplate() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.template != ""
}

// startBuild starts the background template build once.
func (l *Launcher) startBuild() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.tried {
		return
	}
	l.tried = true
	l.wg.Add(1)
	go l.build()
}

func (l *Launcher) build() {
	defer l.wg.Done()
	start := time.Now()
	tmpl, root, err := l.buildTemplate()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		if root != "" {
			_ = os.RemoveAll(root)
		}
		if l.ctx.Err() == nil {
			l.log.Warn("firefox template profile not built; launches use fresh profiles", "err", err)
		}
		return
	}
	if l.closed {
		_ = os.RemoveAll(root)
		return
	}
	l.root, l.template = root, tmpl
	l.log.Debug("firefox template profile ready", "dir", tmpl, "took", time.Since(start))
}

func (l *Launcher) buildTemplate() (tmpl, root string, err error) {
	root, err = os.MkdirTemp("", "geckohost-template-*")
	if err != nil {
		return "", "", fmt.Errorf("create template dir: %w", err)
	}
	// The owner file lets RemoveStaleProfiles tell a template whose
	// geckohost died from one in use.
	if err := writeOwner(root); err != nil {
		return "", root, fmt.Errorf("write template owner: %w", err)
	}
	tmpl = filepath.Join(root, "profile")
	if err := os.Mkdir(tmpl, 0o700); err != nil {
		return "", root, fmt.Errorf("create template profile: %w", err)
	}
	// At the lowest CPU priority a start takes long on a busy machine, and
	// no one waits for it: allow it three times the usual start timeout.
	opts := l.opts
	opts.StartTimeout = 3 * cmp.Or(opts.StartTimeout, defaultStartTimeout)
	f, err := launch(l.ctx, opts, launchConfig{profile: tmpl, nice: true})
	if err != nil {
		return "", root, fmt.Errorf("start template firefox: %w", err)
	}
	// A clean browser.close lets Firefox write out its databases; Close
	// of the Launcher (l.ctx) cuts it short with a kill.
	ctx, cancel := context.WithTimeout(l.ctx, 30*time.Second)
	defer cancel()
	if err := f.Close(ctx); err != nil {
		return "", root, fmt.Errorf("close template firefox: %w", err)
	}
	if err := f.Err(); err != nil {
		return "", root, fmt.Errorf("template firefox: %w", err)
	}
	return tmpl, root, nil
}

// Close stops a template build in progress, waits for it and removes the
// template. Firefoxes already launched are not affected. Later Launch calls
// fail with ErrLauncherClosed. If ctx ends first, Close still waits for the
// (canceled) build to end, which is bounded by its own timeouts, and
// returns ctx's error.
func (l *Launcher) Close(ctx context.Context) error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.cancel()
	waited := make(chan struct{})
	go func() { l.wg.Wait(); close(waited) }()
	var err error
	select {
	case <-waited:
	case <-ctx.Done():
		err = fmt.Errorf("close launcher: %w", ctx.Err())
		<-waited // the build ends soon: its context is canceled
	}
	l.mu.Lock()
	root := l.root
	l.root, l.template = "", ""
	l.mu.Unlock()
	if root != "" {
		if rerr := os.RemoveAll(root); rerr != nil && err == nil {
			err = fmt.Errorf("remove template profile: %w", rerr)
		}
	}
	return err
}

// skipInTemplate names profile entries that are not copied from a
// template: locks, crash and session state.
var skipInTemplate = map[string]bool{
	"lock": true, ".parentlock": true, "parent.lock": true,
	"minidumps": true, "crashes": true, "sessionstore-backups": true,
	"sessionstore.jsonlz4": true, "sessionCheckpoints.json": true,
	"user.js": true, permissionsFile: true, ownerFile: true,
}
