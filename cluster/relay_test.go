package cluster_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/geckohost/geckohost/cluster"
	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/engine"
)

// TestLocalAndRelayed: a hello on a node with room runs there; on a full
// node it is relayed: the client gets the other node's answer and
// candidate, its candidate reaches that node's worker, connected is
// relayed, and the record names the node that ran the worker.
func TestLocalAndRelayed(t *testing.T) {
	f := newFixture(t)
	a := f.node("a", 1, nil)
	b := f.node("b", 1, nil)
	f.seen(2)
	secret := f.token(domain.NewToken{})

	id1, ans1 := a.hello(secret).connect()
	if !strings.HasSuffix(ans1, "from a") {
		t.Fatalf("first answer %q, want a's", ans1)
	}
	id2, ans2 := a.hello(secret).connect()
	if !strings.HasSuffix(ans2, "from b") {
		t.Fatalf("second answer %q, want b's (a is full)", ans2)
	}
	t.Logf("id1 %s id2 %s", id1, id2)
	w := b.eng.Worker(id2)
	if w == nil {
		t.Fatal("b does not run the relayed worker")
	}
	if got := w.Added(); len(got) != 1 || got[0].Candidate != "candidate:client" {
		t.Errorf("b's worker got candidates %v", got)
	}
	f.eventually("records", func() error {
		s, err := a.db.GetSession(f.ctx, id2)
		if err != nil {
			return err
		}
		if s.NodeID != "b" || s.State != domain.StateConnected {
			return fmt.Errorf("record %+v", s)
		}
		if s1, err := a.db.GetSession(f.ctx, id1); err != nil || s1.NodeID != "a" {
			return fmt.Errorf("record %+v %v", s1, err)
		}
		return nil
	})
}

// TestRelayedErrors: an error of the worker's node reaches the client with
// its errno and reason; a client that leaves while negotiating has its
// relayed worker closed.
func TestRelayedErrors(t *testing.T) {
	f := newFixture(t)
	a := f.node("a", 0, nil)
	b := f.node("b", 5, nil)
	b.eng.mode = func(req engine.WorkerRequest) string {
		if req.TokenName == "bad" {
			return modeSyntax
		}
		return modeHang
	}
	f.seen(2)
	a.hello(f.token(domain.NewToken{Name: "bad"})).expectError(engine.SyntaxErrorInWorkerCode, "SyntaxError: missing ) on b")

	w := a.hello(f.token(domain.NewToken{Name: "leaves"}))
	f.eventually("negotiating on b", func() error {
		if b.eng.Live() != 1 {
			return fmt.Errorf("b runs %d", b.eng.Live())
		}
		return nil
	})
	_ = w.c.CloseNow()
	f.eventually("closed on b", func() error {
		if n := b.eng.Live(); n != 0 {
			return fmt.Errorf("b runs %d", n)
		}
		if n := cluster.Negotiating(a.node) + cluster.Negotiating(b.node); n != 0 {
			return fmt.Errorf("%d negotiating", n)
		}
		return nil
	})
}

// TestFullNodeFallsThrough: a node whose registry entry is wrong (it
// looks empty but is full) refuses, and the hello goes to the next node.
func TestFullNodeFallsThrough(t *testing.T) {
	f := newFixture(t)
	lies := func(o *cluster.Options) {
		o.Load = func() cluster.Load { return cluster.Load{Browsers: 1, Capacity: 5} }
	}
	a := f.node("a", 0, nil)
	b := f.node("b", 1, lies)
	c := f.node("c", 1, nil)
	f.seen(3)
	secret := f.token(domain.NewToken{})
	var got []string
	for range 2 {
		_, ans := a.hello(secret).connect()
		got = append(got, answeredBy(ans))
	}
	if b.eng.Live() != 1 || c.eng.Live() != 1 {
		t.Errorf("placed on %v; b runs %d, c %d, want 1 each", got, b.eng.Live(), c.eng.Live())
	}
}
