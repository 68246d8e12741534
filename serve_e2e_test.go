package main

import (
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/geckohost/geckohost/gecko"
	"github.com/geckohost/geckohost/host/client"
	"github.com/geckohost/geckohost/internal/leaktest"
	"github.com/geckohost/geckohost/internal/netns"
)

// TestServeEndToEnd runs the real `serve` wiring (store, Firefox pool, host,
// web) as a user would after `geckohost token add`, connects a pion client
// to the bundled echo worker, and checks the echo and the session record.
func TestServeEndToEnd(t *testing.T) {
	ctx := serveTest(t)

	addr, secret, db := startServe(t, ctx, "e2e")

	sess, err := client.Dial(ctx, "ws://"+addr+"/", client.Options{
		Token: secret, Source: "http://" + addr + "/workers/echo.js", Loopback: true})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	got := make(chan string, 1)
	sess.Channel.OnMessage(func(m webrtc.DataChannelMessage) { got <- string(m.Data) })
	if err := sess.Channel.SendText("hello gecko"); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != "hello gecko" {
			t.Errorf("echo %q", m)
		}
	case <-ctx.Done():
		t.Fatal("no echo")
	}
	if err := sess.Close(); err != nil {
		t.Error(err)
	}

	// The session is recorded; once the peer closed, it ends.
	for {
		r := geckohost(t, "sessions", "--db", db, "--json")
		wantOK(t, r)
		var rows []struct {
			WorkerID string `json:"worker_id"`
			State    string `json:"state"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
			t.Fatalf("sessions --json: %v: %s", err, r.stdout)
		}
		if len(rows) == 1 && rows[0].WorkerID == sess.WorkerID && rows[0].State == "ended" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("session not ended: %s", r.stdout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startServe starts a real `serve` (store, Firefox pool with loopback ICE,
// host, web) in-process, as a user would after `geckohost token add --name
// token`, and returns its address, the token's secret and the database
// path; it is stopped, and checked to stop cleanly, when the test ends.
// serveTest skips t where a real serve cannot run (not root, no Firefox),
// checks it for leaked goroutines and returns its 90 s context.
func serveTest(t *testing.T) context.Context {
	t.Helper()
	netns.Skip(t)
	if _, err := gecko.FindFirefox(""); err != nil {
		t.Skip(err)
	}
	leaktest.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func startServe(t *testing.T, ctx context.Context, token string) (addr, secret, db string) {
	t.Helper()
	db = filepath.Join(t.TempDir(), "geckohost.db")
	r := geckohost(t, "token", "add", "--db", db, "--name", token)
	wantOK(t, r)
	secret = strings.TrimSpace(r.stdout)

	addrc := make(chan net.Addr, 1)
	cfg := serveConfig{DBPath: db, Listen: "127.0.0.1:0", Browsers: 1, MaxWorkersPerBrowser: 150,
		Warm: 2, WorkerIdle: time.Minute, ICELoopback: true, LogFormat: "json", LogLevel: "info",
		onListen: func(a net.Addr) { addrc <- a }}
	runCtx, stop := context.WithCancel(ctx)
	var logs syncBuffer
	errc := make(chan error, 1)
	go func() { errc <- runServe(runCtx, cfg, &logs) }()
	t.Cleanup(func() {
		stop()
		if err := <-errc; err != nil {
			t.Errorf("serve: %v\n%s", err, logs.String())
		}
	})
	select {
	case a := <-addrc:
		addr = a.String()
	case err := <-errc:
		errc <- err
		t.Fatalf("serve: %v", err)
	}
	for !strings.Contains(logs.String(), `"msg":"geckohost ready"`) {
		select {
		case err := <-errc:
			errc <- err
			t.Fatalf("serve stopped before ready: %v\n%s", err, logs.String())
		case <-ctx.Done():
			t.Fatalf("serve not ready: %s", logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return addr, secret, db
}
