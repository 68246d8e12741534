package chromium_test

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/geckohost/geckohost/gecko/chromium"
	"github.com/geckohost/geckohost/internal/leaktest"
	"github.com/geckohost/geckohost/internal/proc"
)

// waitEnd waits until the session of worker id has ended and returns its
// end reason.
func (s *stack) waitEnd(ctx context.Context, t *testing.T, id string) string {
	t.Helper()
	for {
		rec, err := s.db.GetSession(ctx, id)
		if err == nil && rec.State == "ended" {
			return rec.EndReason
		}
		select {
		case <-ctx.Done():
			t.Fatalf("session %s not ended (%+v, %v)", id, rec, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestStartStopNoLeaks starts and closes a pool: no goroutine, process or
// user data directory is left.
func TestStartStopNoLeaks(t *testing.T) {
	needChromium(t)
	leaktest.Check(t, leaktest.Only("geckohost/", "github.com/chromedp/"), leaktest.Timeout(10*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p := chromium.NewPool(chromium.PoolOptions{ICELoopback: true, Logger: testLogger()})
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Ready(); err != nil {
		t.Errorf("ready: %v", err)
	}
	bs := p.Browsers()
	if len(bs) != 1 || bs[0].PID == 0 || bs[0].BiDi == "" {
		t.Fatalf("browsers: %+v", bs)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := proc.GroupMembers(bs[0].PID); len(n) > 0 {
		t.Errorf("process group %d still has processes %v", bs[0].PID, n)
	}
	if _, err := os.Stat(bs[0].Profile); !os.IsNotExist(err) {
		t.Errorf("user data dir %s left: %v", bs[0].Profile, err)
	}
}

// TestKillRenderer kills a connected worker's renderer: it ends
// content-crashed at once, and the token's next worker runs.
func TestKillRenderer(t *testing.T) {
	s := newStack(t, chromium.PoolOptions{Warm: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sess, err := s.dial(ctx, s.tokenA, "/echo.js")
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	var pid int
	for _, b := range s.pool.Browsers() {
		for _, c := range b.Contents {
			if c.Token != 0 {
				pid = c.PID
			}
		}
	}
	if pid == 0 {
		t.Fatalf("no renderer of the token: %+v", s.pool.Browsers())
	}
	t0 := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if r := s.waitEnd(ctx, t, sess.WorkerID); r != "content-crashed" {
		t.Errorf("end reason %q, want content-crashed", r)
	}
	t.Logf("ended %v after the kill", time.Since(t0).Round(time.Millisecond))
	if n := s.pool.Browsers()[0].ContentCrashes; n != 1 {
		t.Errorf("content crashes %d, want 1", n)
	}
	next, err := s.dial(ctx, s.tokenA, "/echo.js")
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	if got, err := ask(ctx, next, "again"); err != nil || got != "again" {
		t.Errorf("echo after the crash = %q, %v", got, err)
	}
}

// TestKillBrowser kills Chromium (kill -9): a connected worker ends
// browser-died, the browser is restarted and serves again, and nothing
// of the dead one is left.
func TestKillBrowser(t *testing.T) {
	s := newStack(t, chromium.PoolOptions{Warm: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sess, err := s.dial(ctx, s.tokenA, "/echo.js")
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	old := s.pool.Browsers()[0]
	if err := syscall.Kill(old.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if r := s.waitEnd(ctx, t, sess.WorkerID); r != "browser-died" {
		t.Errorf("end reason %q, want browser-died", r)
	}
	for s.pool.Ready() != nil || len(s.pool.Browsers()) == 0 || s.pool.Browsers()[0].PID == old.PID {
		select {
		case <-ctx.Done():
			t.Fatalf("not restarted: %+v", s.pool.Slots())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if b := s.pool.Browsers()[0]; b.Restarts != 1 {
		t.Errorf("restarts %d, want 1", b.Restarts)
	}
	if n := proc.GroupMembers(old.PID); len(n) > 0 {
		t.Errorf("process group %d of the dead browser still has processes %v", old.PID, n)
	}
	if _, err := os.Stat(old.Profile); !os.IsNotExist(err) {
		t.Errorf("user data dir %s left: %v", old.Profile, err)
	}
	next, err := s.dial(ctx, s.tokenA, "/echo.js")
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	if got, err := ask(ctx, next, "again"); err != nil || got != "again" {
		t.Errorf("echo after the restart = %q, %v", got, err)
	}
}
