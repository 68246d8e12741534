package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// goCommand is the go command that runs these tests.
func goCommand(t *testing.T) string {
	if p, err := exec.LookPath(filepath.Join(runtime.GOROOT(), "bin", "go")); err == nil {
		return p
	}
	p, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command: %v", err)
	}
	return p
}

// TestReportFakePackage runs testreport on testdata/fake (a pass, a
// failure with logs, a failing subtest, a missing-component skip, a plain
// skip, and with FAKE_HANG=1 a test that hangs until -timeout): the
// failures' logs are printed in full, the skips listed with their reasons,
// the counts right, and the exit status 1; with -ci too; a timed-out test
// is a failure with its output.
func TestReportFakePackage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	goCmd := goCommand(t)
	report := func(args ...string) (string, int) {
		t.Helper()
		var out, errs bytes.Buffer
		code := run(ctx, append([]string{"-go", goCmd}, args...), &out, &errs)
		if errs.Len() > 0 {
			t.Logf("stderr: %s", errs.String())
		}
		return out.String(), code
	}

	t.Setenv("CI", "")
	out, code := report("-count=1", "./testdata/fake")
	for _, want := range []string{
		"fake_test.go:14: first log line of the failure",
		"fake_test.go:15: the failure itself",
		"--- FAIL: TestFail",
		"fake_test.go:20: subtest failed",
		"skipped tests (2; 1 for a missing component):",
		"SKIP github.com/geckohost/geckohost/internal/cmd/testreport/testdata/fake TestMissing: missing: chromium (apt-get install chromium)",
		"SKIP github.com/geckohost/geckohost/internal/cmd/testreport/testdata/fake TestShort: short",
		"FAIL\tgithub.com/geckohost/geckohost/internal/cmd/testreport/testdata/fake",
		"\n4 passed, 3 failed, 2 skipped\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "quiet when it passes") {
		t.Errorf("a passing test's log was printed:\n%s", out)
	}
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}

	// Only the passing and skipping tests: green, but -ci fails it.
	out, code = report("-count=1", "-run", "Pass|Missing|Short", "./testdata/fake")
	if code != 0 || !strings.Contains(out, "ok  \tgithub.com/geckohost/geckohost/internal/cmd/testreport/testdata/fake") || !strings.Contains(out, "1 passed, 0 failed, 2 skipped") {
		t.Errorf("without CI: exit status %d, output:\n%s", code, out)
	}
	out, code = report("-ci", "-count=1", "-run", "Pass|Missing|Short", "./testdata/fake")
	if code != 1 || !strings.Contains(out, "CI=true and 1 tests skipped for a missing component") {
		t.Errorf("with -ci: exit status %d, output:\n%s", code, out)
	}
	out, code = report("-count=1", "-run", "Pass|Short", "./testdata/fake")
	if code != 0 {
		t.Errorf("a plain skip under CI failed the run: %d\n%s", code, out)
	}

	// A test running when the package times out is a failure, with its log.
	t.Setenv("FAKE_HANG", "1")
	out, code = report("-count=1", "-timeout", "2s", "-run", "Hang", "./testdata/fake")
	if code == 0 || !strings.Contains(out, "TestHang (did not finish") || !strings.Contains(out, "fake_test.go:35: hanging") || !strings.Contains(out, "panic: test timed out") {
		t.Errorf("timeout: exit status %d, output:\n%s", code, out)
	}
}

func TestParseArgs(t *testing.T) {
	env := map[string]string{"CI": "true"}
	o, err := parseArgs([]string{"-go", "/x/go", "-race", "./..."}, func(k string) string { return env[k] })
	if err != nil || o.goCmd != "/x/go" || !o.ci || strings.Join(o.args, " ") != "-race ./..." {
		t.Errorf("parseArgs: %+v, %v", o, err)
	}
	o, _ = parseArgs([]string{"./..."}, func(string) string { return "" })
	if o.goCmd != "go" || o.ci {
		t.Errorf("defaults: %+v", o)
	}
	if _, err := parseArgs([]string{"-go"}, func(string) string { return "" }); err == nil {
		t.Error("-go without a value accepted")
	}
}
