package netns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// EnvVar is set to "1" in the environment of a test binary re-executed in
// its private network namespace.
const EnvVar = "GECKOHOST_NETNS"

var (
	mu         sync.Mutex
	skipReason string
)

// Inside reports whether this process runs inside the private network
// namespace made by Run.
func Inside() bool { return os.Getenv(EnvVar) == "1" }

// Reason says why the tests do not run inside a private network namespace
// ("" when they do).
func Reason() string {
	if Inside() {
		return ""
	}
	mu.Lock()
	defer mu.Unlock()
	if skipReason == "" {
		return "not running inside a private network namespace (use netns.Run in TestMain)"
	}
	return skipReason
}

// Skip skips t unless the test runs inside the private network namespace.
func Skip(t testing.TB) {
	t.Helper()
	if !Inside() {
		t.Skip(Reason())
	}
}

// Run is for TestMain. Outside the namespace it re-executes the test binary
// inside a new one (see the package doc) and returns its exit code; inside
// it, or when that is not possible, it returns m.Run().
func Run(m *testing.M) int {
	if Inside() {
		return m.Run()
	}
	if reason := cannot(); reason != "" {
		mu.Lock()
		skipReason = reason
		mu.Unlock()
		fmt.Fprintf(os.Stderr, "netns: %s; tests that need a private network namespace are skipped\n", reason)
		return m.Run()
	}
	code, err := reexec()
	if err != nil {
		fmt.Fprintf(os.Stderr, "netns: %v\n", err)
		return 2
	}
	return code
}

func cannot() string {
	if os.Geteuid() != 0 {
		return "not running as root (unshare --net needs root)"
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		return "unshare not found on PATH (Debian: apt-get install util-linux)"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "ip not found on PATH (Debian: apt-get install iproute2)"
	}
	return ""
}

func reexec() (int, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("find test binary: %w", err)
	}
	args := append([]string{"--net", "--", "sh", "-c", `ip link set lo up && exec "$@"`, "sh", self}, os.Args[1:]...)
	cmd := exec.Command("unshare", args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), EnvVar+"=1")
	setPdeathsig(cmd)
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 0, fmt.Errorf("run tests in a network namespace: %w", err)
	}
	return 0, nil
}
