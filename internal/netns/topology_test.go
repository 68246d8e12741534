package netns_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/geckohost/geckohost/internal/netns"
)

// TestTopology builds two namespaces and a router, runs a process inside
// one and checks that cleanup leaves no namespace behind.
func TestTopology(t *testing.T) {
	var names []string
	t.Run("build", func(t *testing.T) {
		tp := netns.NewTopology(t, true)
		c := tp.Namespace("client")
		r := tp.Namespace("router")
		h := tp.Namespace("host")
		if ci, ri := tp.Link(c, "203.0.113.2/24", r, "203.0.113.1/24"); ci != "eth0" || ri != "eth0" {
			t.Fatalf("interfaces %s %s", ci, ri)
		}
		if ri, hi := tp.Link(r, "198.51.100.254/24", h, "198.51.100.1/24"); ri != "eth1" || hi != "eth0" {
			t.Fatalf("interfaces %s %s", ri, hi)
		}
		c.Route("default", "203.0.113.1")
		h.Route("default", "198.51.100.254")
		r.Forward()
		r.NFT("table inet gh {\n chain forward {\n  type filter hook forward priority 0;\n  meta l4proto udp drop\n }\n}\n")
		names = []string{c.Name, r.Name, h.Name}

		out, err := exec.Command("ip", "-n", c.Name, "route").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "default via 203.0.113.1") {
			t.Fatalf("client routes: %s %v", out, err)
		}
		out, err = exec.Command("ip", "netns", "exec", r.Name, "nft", "list", "ruleset").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "udp drop") {
			t.Fatalf("router rules: %s %v", out, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		// A process inside sees only its namespace's interfaces.
		cmd := h.Command(ctx, "ip", "-o", "addr")
		out, err = cmd.Output()
		if err != nil || !strings.Contains(string(out), "198.51.100.1/24") || strings.Contains(string(out), "203.0.113") {
			t.Fatalf("addresses seen inside: %s %v", out, err)
		}
		// One left running is killed (and reported) at cleanup: here it is
		// stopped by its context first, as a test should.
		sleeper := h.Command(ctx, "sleep", "60")
		if err := sleeper.Start(); err != nil {
			t.Fatal(err)
		}
		// "ip netns exec" joins the namespace after it started: wait for it.
		for len(h.Pids()) != 1 {
			select {
			case <-ctx.Done():
				t.Fatalf("pids in host: %v, want the sleeper alone", h.Pids())
			case <-time.After(10 * time.Millisecond):
			}
		}
		cancel()
		_ = sleeper.Wait()
	})
	if len(names) == 0 {
		t.Skip("no topology was built")
	}
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.Contains(string(out), n) {
			t.Errorf("namespace %s left after cleanup:\n%s", n, out)
		}
	}
}
