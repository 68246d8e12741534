package chromium_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/geckohost/geckohost/gecko/chromium"
	"github.com/geckohost/geckohost/gecko/egress"
)

// TestTokensHaveSeparateStorage: what one token's worker stores, another
// token's does not see (a browser context each); the same token's next
// worker does.
func TestTokensHaveSeparateStorage(t *testing.T) {
	s := newStack(t, chromium.PoolOptions{Warm: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	step := func(token, msg, want string) {
		t.Helper()
		sess, err := s.dial(ctx, token, "/idb.js")
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		if got, err := ask(ctx, sess, msg); err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", msg, got, err, want)
		}
	}
	step(s.tokenA, "put:secret", "put")
	step(s.tokenA, "get", "got secret")
	step(s.tokenB, "get", "got nothing")
}

// TestEgressRefused: with egress none, a worker's fetch of a server on
// loopback fails (the browser context's proxy refuses it) and the refusal
// is counted; an allowed origin is reached.
func TestEgressRefused(t *testing.T) {
	hits := make(chan string, 4)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits <- r.URL.Path
		_, _ = w.Write([]byte("reached"))
	}))
	defer target.Close()
	allowed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer allowed.Close()
	s := newStack(t, chromium.PoolOptions{Warm: 1, Egress: egress.Policy{Mode: egress.None, Allow: []string{allowed.URL}}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sess, err := s.dial(ctx, s.tokenA, "/probe.js")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ask(ctx, sess, target.URL+"/secret"); err != nil || !strings.HasPrefix(got, "err ") {
		t.Errorf("fetch of a refused origin = %q, %v; want an error", got, err)
	}
	if got, err := ask(ctx, sess, allowed.URL+"/"); err != nil || got != "ok 0" {
		t.Errorf("fetch of an allowed origin = %q, %v; want ok 0", got, err)
	}
	_ = sess.Close()
	select {
	case p := <-hits:
		t.Errorf("the refused server got a request for %s", p)
	default:
	}
	rec, err := s.db.GetSession(ctx, sess.WorkerID)
	for err == nil && rec.State != "ended" && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond) // polling the session record
		rec, err = s.db.GetSession(ctx, sess.WorkerID)
	}
	if err != nil || rec.EgressRefused < 1 {
		t.Errorf("egress refused = %+v, %v; want ≥ 1", rec, err)
	}
}
