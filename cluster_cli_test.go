package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/geckohost/geckohost/internal/leaktest"
	"github.com/geckohost/geckohost/internal/redistest"
)

// TestTokenCommandsRedis: token add, list and revoke with --redis (or
// $GECKOHOST_REDIS) keep the tokens in Redis, not in a database file.
func TestTokenCommandsRedis(t *testing.T) {
	leaktest.Check(t)
	rs := redistest.Start(t)
	db := filepath.Join(t.TempDir(), "never.db")
	r := geckohost(t, "token", "add", "--db", db, "--redis", rs.URL(), "--name", "alice", "--max-workers", "2", "--rate", "3/1m")
	wantOK(t, r)
	if !secretRE.MatchString(r.stdout) || !strings.Contains(r.stderr, `created token "alice" (id 1`) || !strings.Contains(r.stderr, "redis://127.0.0.1:") {
		t.Errorf("add: %+v", r)
	}
	t.Setenv("GECKOHOST_REDIS", rs.URL())
	wantOK(t, geckohost(t, "token", "add", "--name", "bob"))
	wantFail(t, geckohost(t, "token", "add", "--name", "bob"), "already taken")

	r = geckohost(t, "token", "list", "--json")
	wantOK(t, r)
	var toks []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &toks); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	if len(toks) != 2 || toks[0]["name"] != "alice" || toks[0]["max_workers"] != 2.0 || toks[1]["name"] != "bob" || toks[0]["status"] != "active" {
		t.Errorf("list %v", toks)
	}
	r = geckohost(t, "token", "revoke", "alice", "--redis", rs.URL()) // the flag after the argument, as people type it
	wantOK(t, r)
	if !strings.Contains(r.stderr, `token "alice" (id 1) revoked`) {
		t.Errorf("revoke: %+v", r)
	}
	wantFail(t, geckohost(t, "token", "revoke", "carol"), "no token with that name")
	r = geckohost(t, "token", "list")
	wantOK(t, r)
	if !strings.Contains(r.stdout, "revoked") || !strings.Contains(r.stdout, "3/1m0s") {
		t.Errorf("table:\n%s", r.stdout)
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Errorf("token add --redis made %s (%v)", db, err)
	}

	// No node, no session yet.
	r = geckohost(t, "nodes")
	wantOK(t, r)
	if r.stdout != "" || !strings.Contains(r.stderr, "no live nodes") {
		t.Errorf("nodes: %+v", r)
	}
	if r = geckohost(t, "nodes", "--json"); strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("nodes --json: %+v", r)
	}
	if r = geckohost(t, "sessions", "--json"); r.code != 0 || strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("sessions --redis --json: %+v", r)
	}
}

// TestClusterFlagErrors: bad or unreachable Redis URLs are one-line errors.
func TestClusterFlagErrors(t *testing.T) {
	leaktest.Check(t)
	db := filepath.Join(t.TempDir(), "db")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "redis://" + ln.Addr().String() + "/0"
	_ = ln.Close() // nothing listens there now
	wantFail(t, geckohost(t, "nodes"), "--redis URL is required")
	wantFail(t, geckohost(t, "nodes", "--redis", "http://x:1"), "bad Redis URL", "redis://")
	wantFail(t, geckohost(t, "nodes", "--redis", "redis://u:secret@127.0.0.1:1/x"), "bad Redis URL")
	r := geckohost(t, "token", "list", "--redis", "redis://u:hunter2@"+ln.Addr().String()+"/0")
	wantFail(t, r, "cluster store unreachable")
	if strings.Contains(r.stderr, "hunter2") {
		t.Errorf("the password is shown: %s", r.stderr)
	}
	wantFail(t, geckohost(t, "sessions", "--redis", closed), "cluster store unreachable")
	wantFail(t, geckohost(t, "serve", "--db", db, "--redis", "redis:/nohost"), "--redis")
	wantFail(t, geckohost(t, "serve", "--db", db, "--node-id", "a"), "--node-id", "only with --redis")
	wantFail(t, geckohost(t, "serve", "--db", db, "--redis", closed, "--node-id", "a b"), "--node-id")
	wantFail(t, geckohost(t, "serve", "--db", db, "--listen", "127.0.0.1:0", "--redis", closed), "cluster store unreachable")
}
