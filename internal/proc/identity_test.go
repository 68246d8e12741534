package proc_test

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/geckohost/geckohost/internal/proc"
)

func TestSelfIsRunning(t *testing.T) {
	s := proc.Self()
	if s.PID != os.Getpid() {
		t.Fatalf("Self().PID = %d, want %d", s.PID, os.Getpid())
	}
	if runtime.GOOS == "linux" && (s.Start == 0 || s.Boot == "" || s.NS == "") {
		t.Fatalf("Self() = %+v: want start, boot and namespace on Linux", s)
	}
	if got := proc.Check(s); runtime.GOOS == "linux" && got != proc.Running {
		t.Errorf("Check(Self()) = %v, want running", got)
	}
	if !s.SameHost() && runtime.GOOS == "linux" {
		t.Error("Self() is not SameHost")
	}
}

func TestCheck(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	s := proc.Self()
	// A process that ran and was reaped.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	gone := s
	gone.PID = cmd.Process.Pid
	reused := s
	reused.Start++ // our pid, but another start time: the pid was reused
	otherBoot := s
	otherBoot.Boot = "00000000-0000-0000-0000-000000000000"
	otherHost := otherBoot
	otherHost.NS = "pid:[1]"
	otherNS := s
	otherNS.NS = "pid:[1]"
	legacyLive := proc.ID{PID: s.PID}
	legacyGone := proc.ID{PID: cmd.Process.Pid}
	for _, c := range []struct {
		name string
		id   proc.ID
		want proc.Liveness
	}{
		{"self", s, proc.Running},
		{"exited", gone, proc.Gone},
		{"pid reused", reused, proc.Gone},
		{"earlier boot", otherBoot, proc.Gone},
		{"other machine", otherHost, proc.Unknown},
		{"other namespace", otherNS, proc.Unknown},
		{"pid only, running", legacyLive, proc.Unknown},
		{"pid only, gone", legacyGone, proc.Gone},
		{"no pid", proc.ID{}, proc.Gone},
	} {
		if got := proc.Check(c.id); got != c.want {
			t.Errorf("%s: Check(%v) = %v, want %v", c.name, c.id, got, c.want)
		}
	}
}

func TestParseString(t *testing.T) {
	s := proc.Self()
	got, err := proc.Parse(s.String() + "\n")
	if err != nil || got != s {
		t.Fatalf("Parse(%q) = %+v, %v; want %+v", s.String(), got, err, s)
	}
	if got, err := proc.Parse(" 1234\n"); err != nil || got != (proc.ID{PID: 1234}) {
		t.Errorf("Parse of a bare pid = %+v, %v", got, err)
	}
	for _, bad := range []string{"", "pid", "start=3", "pid=x", "pid=-1", "pid=3 start=x"} {
		if _, err := proc.Parse(bad); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
}

func ExampleCheck() {
	me := proc.Self()
	// Written into a directory or a database row, then read back later,
	// perhaps by another process:
	id, _ := proc.Parse(me.String())
	fmt.Println(proc.Check(id)) // anything but Gone: the owner may still use it
	// Output: running
}
