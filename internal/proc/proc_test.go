package proc

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"
)

func TestGroupMembersAndAlive(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Skip("cannot start sleep:", err)
	}
	pid := cmd.Process.Pid
	if got := GroupMembers(pid); !slices.Equal(got, []int{pid}) {
		t.Errorf("GroupMembers(%d) = %v, want [%d]", pid, got, pid)
	}
	if !Alive(pid) {
		t.Errorf("Alive(%d) = false for a running process", pid)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if Alive(pid) {
		t.Errorf("Alive(%d) = true after Wait", pid)
	}
	if got := GroupMembers(pid); len(got) != 0 {
		t.Errorf("GroupMembers(%d) = %v after Wait, want none", pid, got)
	}
	if Alive(0) || Alive(-1) {
		t.Error("Alive of pid 0 or -1 = true")
	}
}

func ExampleGroupMembers() {
	// The members of this process's own group include this process.
	members := GroupMembers(syscall.Getpgrp())
	_ = slices.Contains(members, os.Getpid())
}

func TestCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	// Spin until the kernel accounts this process at least one tick.
	for deadline := time.Now().Add(10 * time.Second); CPU(os.Getpid()) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("CPU of this process stayed 0 for 10 s of spinning")
		}
	}
	if CPU(-1) != 0 {
		t.Error("CPU(-1) != 0")
	}
}
