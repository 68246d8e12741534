package core

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/geckohost/geckohost/internal/leaktest"
	"github.com/geckohost/geckohost/internal/proc"
)

var errTestExited = errors.New("test browser exited")

// shLink is a Link that is never lost (the fake browsers have no protocol).
type shLink struct{ released chan struct{} }

func (l shLink) Lost() <-chan struct{} { return nil }
func (l shLink) LostError() error      { return nil }
func (l shLink) Release()              { close(l.released) }

// startSh starts sh -c script as a browser with a profile directory of its
// own and waits for its URL line.
func startSh(t *testing.T, ctx context.Context, script string, waitDelay time.Duration) (*Process, string, shLink) {
	t.Helper()
	dir := t.TempDir() + "/profile"
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	p, err := Start(Command{Name: "sh", Path: "/bin/sh", Args: []string{"-c", script}, Dir: dir, DirName: "profile",
		Prefix: "LISTENING ", Exited: errTestExited, WaitDelay: waitDelay})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	u, err := p.WaitURL(ctx)
	if err != nil {
		p.Abort()
		t.Fatalf("WaitURL: %v", err)
	}
	if u != "ws://x" {
		t.Errorf("WaitURL = %q, want ws://x", u)
	}
	l := shLink{released: make(chan struct{})}
	p.Watch(l)
	return p, dir, l
}

// assertGone checks that nothing of p is left: no process of its group,
// no profile, the link released.
func assertGone(t *testing.T, p *Process, dir string, l shLink) {
	t.Helper()
	if m := proc.GroupMembers(p.PID()); len(m) > 0 {
		t.Errorf("group %d left: %v", p.PID(), m)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("profile %s left: %v", dir, err)
	}
	select {
	case <-l.released:
	default:
		t.Error("link not released")
	}
}

// TestProcessClose: Close ends a browser (and the child it started in its
// group) with SIGTERM, removes its profile and leaves Err nil.
func TestProcessClose(t *testing.T) {
	leaktest.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, dir, l := startSh(t, ctx, "sleep 60 & echo 'LISTENING ws://x'; wait", 5*time.Second)
	if err := p.Close(ctx, nil); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Err(); err != nil {
		t.Errorf("Err after Close = %v", err)
	}
	assertGone(t, p, dir, l)
}

// TestProcessStubborn: a browser that ignores SIGTERM is killed after
// WaitDelay.
func TestProcessStubborn(t *testing.T) {
	leaktest.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, dir, l := startSh(t, ctx, "trap '' TERM; echo 'LISTENING ws://x'; while :; do sleep 1; done", 300*time.Millisecond)
	if err := p.Close(ctx, nil); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if ws, ok := p.State().Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Errorf("ended with %v, want killed by SIGKILL", p.State())
	}
	assertGone(t, p, dir, l)
}

// TestProcessDied: a browser killed with SIGKILL ends Done with an error
// wrapping Command.Exited, and the children it leaves are killed.
func TestProcessDied(t *testing.T) {
	leaktest.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, dir, l := startSh(t, ctx, "sleep 60 & echo 'LISTENING ws://x'; wait", 5*time.Second)
	if err := syscall.Kill(p.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-ctx.Done():
		t.Fatal("Done not closed after kill")
	}
	if err := p.Err(); !errors.Is(err, errTestExited) {
		t.Errorf("Err = %v, want %v", err, errTestExited)
	}
	if err := p.Close(ctx, nil); err != nil {
		t.Fatalf("Close: %v", err)
	}
	assertGone(t, p, dir, l)
}

// TestProcessExitBeforeURL: WaitURL reports an exit before the URL line.
func TestProcessExitBeforeURL(t *testing.T) {
	leaktest.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dir := t.TempDir() + "/profile"
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	p, err := Start(Command{Name: "sh", Path: "/bin/sh", Args: []string{"-c", "exit 3"}, Dir: dir,
		Prefix: "LISTENING ", Exited: errTestExited, WaitDelay: time.Second})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if _, err := p.WaitURL(ctx); !errors.Is(err, errTestExited) {
		t.Errorf("WaitURL = %v, want %v", err, errTestExited)
	}
	p.Abort()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("profile %s left: %v", dir, err)
	}
}
