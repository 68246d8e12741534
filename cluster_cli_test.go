package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/geckohost/geckohost/cluster"
	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/internal/leaktest"
	"github.com/geckohost/geckohost/internal/redistest"
	"github.com/geckohost/geckohost/store"
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

// nopEngine is an engine that takes no worker: a cluster node needs one.
type nopEngine struct{}

func (nopEngine) StartWorker(context.Context, engine.WorkerRequest) (engine.Worker, error) {
	return nil, engine.Errorf(engine.NoGeckoAvailable, "no worker here")
}
func (nopEngine) Ready() error { return nil }

// TestSessionsRedisJSONEveryField: a session record a node saves reaches
// `sessions --redis --json` (through the cluster's stream) with every field
// as recorded, egress_refused and run_id included, and `sessions --json` of
// the node's SQLite file shows the same record in the same form.
func TestSessionsRedisJSONEveryField(t *testing.T) {
	leaktest.Check(t)
	rs := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dbPath := filepath.Join(t.TempDir(), "node.db")
	db, err := store.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	cl, err := cluster.Open(ctx, rs.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cl.Close() }()
	node, err := cluster.New(cluster.Options{Client: cl, ID: "node-a", Local: nopEngine{}, Records: db})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 123e6, time.UTC)
	rec := domain.Session{WorkerID: "w-1", TokenID: 7, TokenName: "alice", Source: "https://example.com/w.js",
		RemoteAddr: "192.0.2.1:5000", Origin: "https://example.com", Engine: "firefox", State: domain.StateEnded,
		Errno: 305, Reason: "no pair", Created: t0, Answered: t0.Add(15 * time.Millisecond),
		Connected: t0.Add(40 * time.Millisecond), Ended: t0.Add(2 * time.Second), EndReason: "ice-failed",
		EgressRefused: 3, RunID: "run-42"}
	if err := node.SaveSession(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := node.Close(ctx); err != nil { // flushes the stream
		t.Fatal(err)
	}
	want := rec
	want.NodeID = "node-a"
	wantJSON := want.JSON()

	r := geckohost(t, "sessions", "--redis", rs.URL(), "--json")
	wantOK(t, r)
	var got []cluster.RecordJSON
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	if len(got) != 1 || !reflect.DeepEqual(got[0].SessionJSON, wantJSON) || got[0].Front != "node-a" {
		t.Fatalf("sessions --redis --json:\n%s\nwant %+v", r.stdout, wantJSON)
	}
	for _, field := range []string{`"egress_refused": 3`, `"run_id": "run-42"`, `"node_id": "node-a"`, `"front": "node-a"`} {
		if !strings.Contains(r.stdout, field) {
			t.Errorf("sessions --redis --json lacks %s:\n%s", field, r.stdout)
		}
	}

	// The node's own file: the same record, without the cluster's token id.
	r = geckohost(t, "sessions", "--db", dbPath, "--json")
	wantOK(t, r)
	var local []domain.SessionJSON
	if err := json.Unmarshal([]byte(r.stdout), &local); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	want.TokenID = 0
	if len(local) != 1 || !reflect.DeepEqual(local[0], want.JSON()) {
		t.Errorf("sessions --json:\n%s\nwant %+v", r.stdout, want.JSON())
	}
}
