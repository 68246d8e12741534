package cluster_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/geckohost/geckohost/cluster"
	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/engine"
)

// readyz returns the node's /readyz status and body.
func (tn *tnode) readyz() (int, string) {
	tn.f.t.Helper()
	resp, err := http.Get(tn.hs.URL + "/readyz")
	if err != nil {
		tn.f.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestNodeDiesMidNegotiation: a client whose worker is negotiating on a
// node that dies gets a 303 once the node is out of the registry, and the
// token's next hello goes to a live node.
func TestNodeDiesMidNegotiation(t *testing.T) {
	f := newFixture(t)
	a := f.node("a", 0, nil) // full: every hello is relayed
	b := f.node("b", 5, nil)
	b.eng.mode = func(engine.WorkerRequest) string { return modeHang }
	f.seen(2)
	secret := f.token(domain.NewToken{})
	w := a.hello(secret)
	f.eventually("worker negotiating on b", func() error {
		if b.eng.Live() != 1 {
			return fmt.Errorf("b runs %d", b.eng.Live())
		}
		return nil
	})
	c := f.node("c", 5, nil)
	f.seen(3)
	start := time.Now()
	b.crash()
	w.expectError(engine.GeckoCrashed, "node b stopped answering")
	t.Logf("303 %v after the crash (stale %v)", time.Since(start).Round(time.Millisecond), testStale)
	_, ans := a.hello(secret).connect()
	if answeredBy(ans) != "c" {
		t.Errorf("next hello answered by %q, want c", answeredBy(ans))
	}
	_ = c
}

// TestRedisOutage: while Redis is down hellos get 301 "cluster store
// unreachable" and /readyz is 503; a connected session (relayed, on
// another node) is untouched; once Redis is back the nodes recover by
// themselves.
func TestRedisOutage(t *testing.T) {
	f := newFixture(t)
	a := f.node("a", 0, nil)
	b := f.node("b", 5, nil)
	f.seen(2)
	secret := f.token(domain.NewToken{})
	id, ans := a.hello(secret).connect()
	if answeredBy(ans) != "b" {
		t.Fatalf("answered by %q", answeredBy(ans))
	}
	f.redis.Stop(t)
	f.eventually("a unready", func() error {
		if code, body := a.readyz(); code != http.StatusServiceUnavailable || !strings.Contains(body, "cluster store unreachable") {
			return fmt.Errorf("readyz %d %q", code, body)
		}
		return nil
	})
	a.hello(secret).expectError(engine.NoGeckoAvailable, "cluster store unreachable")
	b.hello(secret).expectError(engine.NoGeckoAvailable, "cluster store unreachable")
	if b.eng.Worker(id) == nil {
		t.Fatal("the connected worker ended during the outage")
	}
	f.redis.Restart(t)
	f.eventually("a ready again", func() error {
		if code, body := a.readyz(); code != http.StatusOK {
			return fmt.Errorf("readyz %d %q", code, body)
		}
		return nil
	})
	_, ans = a.hello(secret).connect()
	if answeredBy(ans) != "b" {
		t.Errorf("answered by %q after the outage", answeredBy(ans))
	}
	if b.eng.Worker(id) == nil {
		t.Error("the connected worker ended after the outage")
	}
}

// TestDrain: a draining node gets no workers, relays its own clients'
// hellos, and is not ready; Drain returns once nothing negotiates.
func TestDrain(t *testing.T) {
	f := newFixture(t)
	a := f.node("a", 5, nil)
	b := f.node("b", 5, nil)
	f.seen(2)
	secret := f.token(domain.NewToken{})
	ctx, cancel := context.WithTimeout(f.ctx, 5*time.Second)
	defer cancel()
	if err := b.node.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	f.eventually("b draining in the registry", func() error {
		nodes, err := f.c.Nodes(f.ctx)
		if err != nil {
			return err
		}
		for _, ni := range nodes {
			if ni.ID == "b" && ni.State == cluster.StateDraining {
				return nil
			}
		}
		return fmt.Errorf("nodes %+v", nodes)
	})
	f.seen(2)
	if code, _ := b.readyz(); code != http.StatusServiceUnavailable {
		t.Errorf("draining readyz %d", code)
	}
	for _, via := range []*tnode{a, b} {
		if _, ans := via.hello(secret).connect(); answeredBy(ans) != "a" {
			t.Errorf("hello via %s answered by %q, want a", via.id, answeredBy(ans))
		}
	}
	if b.eng.Live() != 0 {
		t.Errorf("draining b runs %d workers", b.eng.Live())
	}
}

// TestNodeIDInUse: a second live node with the same id is refused.
func TestNodeIDInUse(t *testing.T) {
	f := newFixture(t)
	f.node("a", 1, nil)
	c, err := cluster.Dial(f.redis.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	n, err := cluster.New(cluster.Options{Client: c, ID: "a", Local: newFakeEngine("a2", 1)})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(f.ctx); err == nil || !strings.Contains(err.Error(), "--node-id") {
		t.Errorf("Start with a live node's id: %v", err)
	}
	if err := n.Close(f.ctx); err != nil {
		t.Error(err)
	}
}
