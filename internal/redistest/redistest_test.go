package redistest_test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/geckohost/geckohost/internal/leaktest"
	"github.com/geckohost/geckohost/internal/redistest"
)

// do sends one inline command and returns the first reply line.
func do(t *testing.T, addr, cmd string) (string, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "%s\r\n", cmd); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(line, "$") && line != "$-1\r\n" {
		line, err = r.ReadString('\n')
	}
	return strings.TrimSpace(line), err
}

// TestStopRestartKeepsData: the server answers, keeps its data across
// Stop and Restart on the same address, and refuses connections between.
func TestStopRestartKeepsData(t *testing.T) {
	leaktest.Check(t)
	srv := redistest.Start(t)
	if !strings.HasPrefix(srv.URL(), "redis://127.0.0.1:") {
		t.Errorf("URL %q", srv.URL())
	}
	if got, err := do(t, srv.Addr, "SET k v"); err != nil || got != "+OK" {
		t.Fatalf("SET: %q %v", got, err)
	}
	srv.Stop(t)
	if _, err := do(t, srv.Addr, "PING"); err == nil {
		t.Fatal("PING answered after Stop")
	}
	srv.Restart(t)
	if got, err := do(t, srv.Addr, "GET k"); err != nil || got != "v" {
		t.Fatalf("GET after restart: %q %v\n%s", got, err, srv.Output())
	}
}
