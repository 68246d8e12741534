package bidi_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/geckohost/geckohost/gecko/bidi"
	"github.com/geckohost/geckohost/internal/leaktest"
)

// The bidi tests drive a real Firefox, started here with a bare-bones
// launcher (the supervised one lives in package gecko, which imports this
// package) and shared by all tests of the package.

var shared struct {
	once    sync.Once
	cmd     *exec.Cmd
	profile string
	url     string // BiDi session URL
	conn    *bidi.Conn
	stop    context.CancelFunc // SIGTERM to the browser
	err     error
}

// sharedFirefox returns the connection (session open) to the Firefox
// shared by the package's tests, starting it on first use. It also checks
// that the test leaves no goroutine behind: call it first in the test, so
// that the check runs after the test's other cleanups. (TestMain's check
// cannot see a leaked Conn: closing the shared browser ends its read loop.)
func sharedFirefox(t *testing.T) *bidi.Conn {
	t.Helper()
	shared.once.Do(startShared)
	if shared.err != nil {
		t.Fatalf("start shared firefox: %v", shared.err)
	}
	leaktest.Check(t)
	return shared.conn
}

func startShared() {
	bin, err := exec.LookPath("firefox-esr")
	if err != nil {
		if bin, err = exec.LookPath("firefox"); err != nil {
			shared.err = fmt.Errorf("no firefox on PATH: %w", err)
			return
		}
	}
	profile, err := os.MkdirTemp("", "geckohost-profile-bidi-test-*")
	if err != nil {
		shared.err = err
		return
	}
	shared.profile = profile
	prefs := `user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("app.update.disabledForTesting", true);
user_pref("toolkit.telemetry.enabled", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
user_pref("services.settings.server", "http://127.0.0.1:9/v1");
`
	if err := os.WriteFile(filepath.Join(profile, "user.js"), []byte(prefs), 0o600); err != nil {
		shared.err = err
		return
	}
	procCtx, stop := context.WithCancel(context.Background())
	shared.stop = stop
	cmd := exec.CommandContext(procCtx, bin, "--headless", "--no-remote", "--profile", profile, "--remote-debugging-port", "0")
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = append(os.Environ(), "MOZ_REMOTE_SETTINGS_DEVTOOLS=1", "MOZ_CRASHREPORTER_DISABLE=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		shared.err = err
		return
	}
	if err := cmd.Start(); err != nil {
		shared.err = err
		return
	}
	shared.cmd = cmd
	urlCh := make(chan string, 1)
	go func() { // ends at EOF, when the process group is gone
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			if _, u, ok := strings.Cut(sc.Text(), "WebDriver BiDi listening on "); ok && !sent {
				urlCh <- strings.TrimSpace(u) + "/session"
				sent = true
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	select {
	case shared.url = <-urlCh:
	case <-ctx.Done():
		shared.err = fmt.Errorf("no bidi url: %w", ctx.Err())
		return
	}
	c, err := bidi.Dial(ctx, shared.url, bidi.Options{})
	if err != nil {
		shared.err = err
		return
	}
	if err := c.NewSession(ctx); err != nil {
		shared.err = err
		_ = c.Close()
		return
	}
	shared.conn = c
}

// stopShared closes the shared Firefox and removes its profile.
func stopShared() {
	if shared.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = shared.conn.CloseBrowser(ctx)
		cancel()
		_ = shared.conn.Close()
	}
	if shared.cmd != nil {
		done := make(chan struct{})
		go func() { _ = shared.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			shared.stop() // SIGTERM, then SIGKILL after WaitDelay
		}
		<-done
		_ = syscall.Kill(-shared.cmd.Process.Pid, syscall.SIGKILL) // content processes
	}
	if shared.stop != nil {
		shared.stop()
	}
	if shared.profile != "" {
		_ = os.RemoveAll(shared.profile)
	}
}

func TestMain(m *testing.M) {
	snap := leaktest.Take()
	code := m.Run()
	stopShared()
	os.Exit(snap.Code(code))
}
