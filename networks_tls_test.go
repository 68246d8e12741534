package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestNetworkTLS: serve --tls-cert/--tls-key on the host's LAN address,
// with a certificate of a CA made here. On the client machine, stock
// Chromium, trusting that CA the way a user does (in the NSS database of
// its HOME, with certutil; no flag, no WebRTC flag), loads the demo page
// over https and geckohost.js connects over wss://; the Go client and
// `geckohost bench --url wss://... --ca` connect; the Go client without
// the CA is refused by its own TLS check.
func TestNetworkTLS(t *testing.T) {
	forServeEngines(t, false, func(t *testing.T, e serveEngine) {
		ctx, tp := netTest(t, false)
		h := tp.Namespace("host")
		c := tp.Namespace("client")
		tp.Link(h, "198.51.100.1/24", c, "198.51.100.2/24")
		c.Route("default", "198.51.100.1")

		dir := t.TempDir()
		ca := newTestCA(t, dir)
		cert, key := ca.issue(t, dir, 1, "198.51.100.1")
		s := startNetServe(t, e, h, "198.51.100.1:8765", "--tls-cert", cert, "--tls-key", key)
		s.page = "https://198.51.100.1:8765/"
		s.waitReady(t, ctx)
		if !strings.Contains(s.logs.String(), `"demo":"https://198.51.100.1:8765/"`) {
			t.Errorf("serve did not give the https demo URL:\n%s", s.logs.String())
		}
		chromium, goClient := s.job("chromium", 1), s.job("go", 1)
		chromium.CA, goClient.CA = ca.pemFile, ca.pemFile
		res := runClients(t, ctx, c, chromium, goClient, s.job("go", 1))
		wantEcho(t, ctx, s, "https, chromium", res[0][0])
		wantEcho(t, ctx, s, "wss, go", res[1][0])
		if r := res[2][0]; r.Echo != "" || !strings.Contains(r.Reason, "certificate") {
			t.Errorf("go without the CA: %+v, want a certificate error", r)
		}

		args, _ := json.Marshal([]string{"bench", "--url", "wss://198.51.100.1:8765/", "--token", s.token, "--ca", ca.pemFile,
			"-n", "3", "--messages", "2", "--json"})
		cmd, err := c.Reexec(ctx, []string{childEnv + "=cli", childArgs + "=" + string(args)})
		if err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("bench over wss: %v\n%s\n%s", err, out.String(), errb.String())
		}
		t.Logf("bench over wss from the LAN: %s", out.String())
	})
}
