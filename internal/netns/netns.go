package netns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/geckohost/geckohost/internal/testenv"
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
	if skipReason != "" {
		return skipReason
	}
	if r := cannot(); r != "" {
		return r
	}
	return "not running inside a private network namespace (use netns.Run in TestMain)"
}

// Skip skips t unless the test runs inside the private network namespace.
// When root, unshare or ip is missing, it is a missing-component skip
// (see internal/testenv), listed by make test and failing CI.
func Skip(t testing.TB) {
	t.Helper()
	if !Inside() {
		t.Skip(testenv.Prefix + Reason())
	}
}

// Run is for TestMain. Outside the namespace it re-executes the test binary
// inside a new one (see the package doc) and returns its exit code; inside
// it, or when that is not possible, it returns m.Run().
func Run(m *testing.M) int { return run(m, loUp) }

// RunWithUplink is Run for a namespace that, besides lo, has an uplink as
// a workstation has: uplink0 with 192.0.2.2/24 and the default route
// through it (uplink0 is one end of a veth pair whose other end, uplink1,
// stays in the namespace with no address: nothing answers there, and no
// packet leaves). Browsers with stock settings gather candidates only
// when there is a default route.
func RunWithUplink(m *testing.M) int { return run(m, loUp+" && "+uplink) }

// The namespace's set-up commands.
const (
	loUp   = "ip link set lo up"
	uplink = "ip link add uplink0 type veth peer name uplink1 && ip addr add 192.0.2.2/24 dev uplink0 && ip link set uplink1 up && ip link set uplink0 up && ip route add default via 192.0.2.1 dev uplink0"
)

func run(m *testing.M, setup string) int {
	if Inside() {
		return m.Run()
	}
	if reason := cannot(); reason != "" {
		mu.Lock()
		skipReason = reason
		mu.Unlock()
		fmt.Fprintf(os.Stderr, "netns: missing %s; tests that need a private network namespace are skipped\n", reason)
		return m.Run()
	}
	code, err := reexec(setup)
	if err != nil {
		fmt.Fprintf(os.Stderr, "netns: %v\n", err)
		return 2
	}
	return code
}

func cannot() string {
	if os.Geteuid() != 0 {
		return testenv.Reason("root", "run the tests as root: sudo make test", "unshare --net needs root")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		return testenv.Reason("unshare", "apt-get install util-linux")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return testenv.Reason("ip", "apt-get install iproute2")
	}
	return ""
}

func reexec(setup string) (int, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("find test binary: %w", err)
	}
	args := append([]string{"--net", "--", "sh", "-c", setup + ` && exec "$@"`, "sh", self}, os.Args[1:]...)
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
