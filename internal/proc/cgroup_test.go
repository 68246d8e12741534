package proc_test

import (
	"errors"
	"os"
	"os/exec"
	"testing"

	"github.com/geckohost/geckohost/internal/proc"
)

// TestCPUGroup moves a child process into a new CPU group and back, where
// this machine lets the test make one.
func TestCPUGroup(t *testing.T) {
	g, err := proc.NewCPUGroup("geckohost-test-cpugroup")
	if errors.Is(err, errors.ErrUnsupported) || errors.Is(err, os.ErrPermission) {
		t.Skipf("no cpu cgroup here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if err := g.Add(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := g.Remove(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := g.Add(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil { // moves it back, removes the group
		t.Fatal(err)
	}
}
