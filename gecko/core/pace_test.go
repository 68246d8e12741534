package core

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPace drives one real process's pacing with CPU figures of its own: a
// busy window lowers it (the cgroup, else nice), a quiet spell restores it.
func TestPace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	pid := cmd.Process.Pid

	pc := NewPacing(slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer pc.Close()
	var s PaceState
	t0 := time.Now()
	pc.Pace(&s, pid, 0, t0)
	pc.Pace(&s, pid, BusyWindow/4, t0.Add(BusyWindow)) // a quarter of a core
	if s.Niced() {
		t.Fatal("niced under BusyShare")
	}
	t1 := t0.Add(2 * BusyWindow)
	pc.Pace(&s, pid, BusyWindow/4+BusyWindow, t1) // a whole core
	if !s.Niced() {
		t.Fatal("not niced over BusyShare")
	}
	if pc.group == nil {
		if n := nice(t, pid); n != BusyNice {
			t.Errorf("nice %d, want %d", n, BusyNice)
		}
	} else if !inGroup(t, pid) {
		t.Error("not moved into the cpu cgroup")
	}
	// Quiet: the first quiet window starts QuietFor, which must pass.
	cpu := BusyWindow/4 + BusyWindow
	pc.Pace(&s, pid, cpu, t1.Add(BusyWindow))
	pc.Pace(&s, pid, cpu, t1.Add(2*BusyWindow))
	if !s.Niced() {
		t.Fatal("restored before QuietFor")
	}
	pc.Pace(&s, pid, cpu, t1.Add(BusyWindow+QuietFor+BusyWindow))
	if s.Niced() {
		t.Fatal("not restored after QuietFor")
	}
	if pc.group == nil {
		if n := nice(t, pid); n != 0 {
			t.Errorf("nice %d after restoring, want 0", n)
		}
	} else if inGroup(t, pid) {
		t.Error("still in the cpu cgroup after restoring")
	}
}

// inGroup reports whether pid is in a pacing cgroup.
func inGroup(t *testing.T, pid int) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(b), "-busy-")
}

// nice returns pid's nice value.
func nice(t *testing.T, pid int) int {
	t.Helper()
	// The raw getpriority syscall returns 20 - nice.
	r, _, errno := syscall.Syscall(syscall.SYS_GETPRIORITY, syscall.PRIO_PROCESS, uintptr(pid), 0)
	if errno != 0 {
		t.Fatal(errno)
	}
	return 20 - int(r)
}
