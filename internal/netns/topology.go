package netns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/geckohost/geckohost/internal/testenv"
)

// Topology is a network a test builds for itself out of named network
// namespaces ("ip netns add", with names unique to the test process),
// veth pairs between them, addresses, routes and nftables rules, and the
// processes it starts inside them. Everything is removed in t.Cleanup,
// even when the test fails: the processes still in a namespace are
// killed, then the namespace is deleted (with its interfaces), so that
// "ip netns list" is empty again.
//
// Use only the documentation address ranges (192.0.2.0/24,
// 198.51.100.0/24, 203.0.113.0/24): nothing in a topology reaches
// another network, as no namespace has an interface outside it.
type Topology struct {
	t      testing.TB
	prefix string

	mu  sync.Mutex
	nss []*Namespace
}

// Namespace is one named network namespace of a Topology.
type Namespace struct {
	// Name is the namespace's name as "ip netns" knows it.
	Name string
	tp   *Topology
	ifs  int // interfaces made by Link so far
}

// seq numbers the topologies of this process.
var seq atomic.Int64

// nsName is a namespace made by a Topology: gh-<pid>-<seq>-<name>.
var nsName = regexp.MustCompile(`^gh-([0-9]+)-[0-9]+-`)

// CanBuild says why this process cannot build topologies ("" when it
// can): it needs root, ip (iproute2) and, with nft, nftables.
func CanBuild(nft bool) string {
	if os.Geteuid() != 0 {
		return testenv.Reason("root", "run the tests as root: sudo make test", "named network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return testenv.Reason("ip", "apt-get install iproute2")
	}
	if nft {
		if _, err := exec.LookPath("nft"); err != nil {
			return testenv.Reason("nft", "apt-get install nftables")
		}
	}
	return ""
}

// NewTopology returns an empty topology for t, or skips t with the reason
// when it cannot be built (see CanBuild; nft: the test needs nftables). It
// first removes the namespaces left by test processes that died without
// cleaning up.
func NewTopology(t testing.TB, nft bool) *Topology {
	t.Helper()
	if reason := CanBuild(nft); reason != "" {
		t.Skip(testenv.Prefix + reason)
	}
	removeStale()
	tp := &Topology{t: t, prefix: fmt.Sprintf("gh-%d-%d-", os.Getpid(), seq.Add(1))}
	t.Cleanup(tp.cleanup)
	return tp
}

// removeStale deletes the namespaces of dead test processes.
func removeStale() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		m := nsName.FindStringSubmatch(f[0])
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		if pid == os.Getpid() || processAlive(pid) {
			continue
		}
		killAll(f[0])
		_ = exec.Command("ip", "netns", "del", f[0]).Run()
	}
}

func processAlive(pid int) bool {
	return syscall.Kill(pid, 0) == nil || errors.Is(syscall.Kill(pid, 0), syscall.EPERM)
}

// Namespace adds a namespace (its lo up) named after name.
func (tp *Topology) Namespace(name string) *Namespace {
	tp.t.Helper()
	n := &Namespace{Name: tp.prefix + name, tp: tp}
	tp.run("ip", "netns", "add", n.Name)
	tp.mu.Lock()
	tp.nss = append(tp.nss, n)
	tp.mu.Unlock()
	n.IP("link", "set", "lo", "up")
	return n
}

// Link joins a and b with a veth pair, brings both ends up with the
// addresses aCIDR and bCIDR (such as "198.51.100.1/24"; "" for none) and
// returns the interface names (eth0, eth1, ... in each namespace).
func (tp *Topology) Link(a *Namespace, aCIDR string, b *Namespace, bCIDR string) (aIf, bIf string) {
	tp.t.Helper()
	tp.mu.Lock()
	aIf, bIf = fmt.Sprintf("eth%d", a.ifs), fmt.Sprintf("eth%d", b.ifs)
	a.ifs++
	b.ifs++
	tp.mu.Unlock()
	tp.run("ip", "link", "add", aIf, "netns", a.Name, "type", "veth", "peer", "name", bIf, "netns", b.Name)
	for _, e := range []struct {
		n        *Namespace
		ifc, pfx string
	}{{a, aIf, aCIDR}, {b, bIf, bCIDR}} {
		if e.pfx != "" {
			e.n.IP("addr", "add", e.pfx, "dev", e.ifc)
		}
		e.n.IP("link", "set", e.ifc, "up")
	}
	return aIf, bIf
}

// IP runs "ip -n NAME args..." and fails the test when it fails.
func (n *Namespace) IP(args ...string) {
	n.tp.t.Helper()
	n.tp.run("ip", append([]string{"-n", n.Name}, args...)...)
}

// Route adds a route to dst ("default" or a CIDR) via the gateway via.
func (n *Namespace) Route(dst, via string) {
	n.tp.t.Helper()
	n.IP("route", "add", dst, "via", via)
}

// Forward turns on IPv4 forwarding (a router).
func (n *Namespace) Forward() {
	n.tp.t.Helper()
	n.Run("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
}

// NFT loads an nftables ruleset (the text "nft -f" reads) into the
// namespace.
func (n *Namespace) NFT(ruleset string) {
	n.tp.t.Helper()
	cmd := exec.Command("ip", "netns", "exec", n.Name, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		n.tp.t.Fatalf("nft in %s: %v: %s", n.Name, err, out)
	}
}

// Run runs a command inside the namespace to its end and fails the test
// when it fails (for set-up commands).
func (n *Namespace) Run(name string, args ...string) {
	n.tp.t.Helper()
	n.tp.run("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Command returns a command that runs inside the namespace ("ip netns
// exec" execs it, so the process is the command itself): ctx's end, or
// Stop, sends it SIGTERM, and Wait gives it 10 s more before SIGKILL; it
// is killed too if the test process dies. The caller starts and waits
// for it; whatever is left in the namespace is killed at cleanup.
func (n *Namespace) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	setPdeathsig(cmd)
	return cmd
}

// Reexec returns a Command that runs this test binary inside the
// namespace with env added to its environment (the binary's TestMain tells
// by env what to do there).
func (n *Namespace) Reexec(ctx context.Context, env []string, args ...string) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find test binary: %w", err)
	}
	cmd := n.Command(ctx, self, args...)
	cmd.Env = append(os.Environ(), env...)
	return cmd, nil
}

// Pids returns the processes running inside the namespace.
func (n *Namespace) Pids() []int { return pids(n.Name) }

func pids(name string) []int {
	out, err := exec.Command("ip", "netns", "pids", name).Output()
	if err != nil {
		return nil
	}
	var ps []int
	for _, f := range strings.Fields(string(out)) {
		if p, err := strconv.Atoi(f); err == nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// killAll kills every process in the namespace and waits (up to 10 s)
// until they are gone.
func killAll(name string) []int {
	ps := pids(name)
	for _, p := range ps {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(pids(name)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	return ps
}

func (tp *Topology) run(name string, args ...string) {
	tp.t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		tp.t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// cleanup kills what is left in the namespaces (a process left there is
// an error of the test: reported) and deletes them.
func (tp *Topology) cleanup() {
	tp.mu.Lock()
	nss := tp.nss
	tp.nss = nil
	tp.mu.Unlock()
	for i := len(nss) - 1; i >= 0; i-- {
		n := nss[i]
		if left := killAll(n.Name); len(left) > 0 {
			tp.t.Errorf("netns %s: processes %v were still running at cleanup (killed)", n.Name, left)
		}
		if out, err := exec.Command("ip", "netns", "del", n.Name).CombinedOutput(); err != nil {
			tp.t.Errorf("ip netns del %s: %v: %s", n.Name, err, out)
		}
	}
}
