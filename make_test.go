package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/geckohost/geckohost/internal/testenv"
)

// TestMakeTestDeps runs the Makefile's test-deps (the first step of make
// test) on a PATH that has make, sh, tr, id and date but no apt-get: with everything
// present it says nothing; with something missing it fails with one line
// naming the packages and the command that installs them.
func TestMakeTestDeps(t *testing.T) {
	makeBin := testenv.NeedCommand(t, "make", "apt-get install make")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bin := t.TempDir()
	for _, name := range []string{"sh", "tr", "id", "date"} {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(p, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	testDeps := func(needs string) (string, string, error) {
		cmd := exec.CommandContext(ctx, makeBin, "-s", "test-deps", "TEST_NEEDS="+needs, "SUDO=sudo", "GO=go")
		cmd.Env = append(os.Environ(), "PATH="+bin)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	if out, errs, err := testDeps("sh=dash nope-geckohost,tr=coreutils " + bin + "=base-files"); err != nil || out != "" || errs != "" {
		t.Errorf("all present: %v, stdout %q, stderr %q", err, out, errs)
	}
	_, errs, err := testDeps("sh=dash nope-geckohost-a=pkg-a /nope/geckohost=pkg-b nope-geckohost-c=pkg-a")
	if err == nil {
		t.Fatal("test-deps passed with packages missing")
	}
	want := "make test: missing: pkg-a pkg-b; install them with: sudo apt-get install pkg-a pkg-b (or your system's packages)\n"
	if first, _, _ := strings.Cut(errs, "\n"); first+"\n" != want {
		t.Errorf("stderr %q, want its first line %q", errs, want)
	}
}
