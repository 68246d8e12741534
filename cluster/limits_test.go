package cluster_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/engine"
)

// TestMaxWorkersAcrossNodes: a token's live workers on every node count
// against its --max-workers; once one ends, another may start.
func TestMaxWorkersAcrossNodes(t *testing.T) {
	f := newFixture(t)
	a := f.node("a", 1, nil)
	b := f.node("b", 1, nil)
	c := f.node("c", 5, nil)
	f.seen(3)
	secret := f.token(domain.NewToken{MaxWorkers: 2})
	id, _ := a.hello(secret).connect()
	b.hello(secret).connect()
	c.hello(secret).expectError(engine.LimitReached, "maximum of 2 concurrent workers")
	a.eng.Worker(id).end(engine.EndPeerClosed)
	f.eventually("a worker freed", func() error {
		w := c.hello(secret)
		m := w.read()
		if m["messageType"] == "worker-error" {
			return fmt.Errorf("%v", m["reason"])
		}
		return nil
	})
}

// TestRateAcrossNodes: a rate of 3 per minute spread over three nodes
// refuses the fourth start, on any node.
func TestRateAcrossNodes(t *testing.T) {
	f := newFixture(t)
	a := f.node("a", 5, nil)
	b := f.node("b", 5, nil)
	c := f.node("c", 5, nil)
	f.seen(3)
	secret := f.token(domain.NewToken{Rate: domain.Rate{Count: 3, Window: time.Minute}})
	a.hello(secret).connect()
	b.hello(secret).connect()
	c.hello(secret).connect()
	for _, n := range []*tnode{a, b, c} {
		n.hello(secret).expectError(engine.LimitReached, "rate limit of 3 workers per 1m0s; next in")
	}
}

// TestDeadNodeCountsNoMore: the live workers of a node that stopped
// heartbeating no longer count against the token's limit.
func TestDeadNodeCountsNoMore(t *testing.T) {
	f := newFixture(t)
	a := f.node("a", 5, nil)
	b := f.node("b", 5, nil)
	f.seen(2)
	secret := f.token(domain.NewToken{MaxWorkers: 1})
	b.hello(secret).connect()
	a.hello(secret).expectError(engine.LimitReached, "maximum of 1")
	b.crash()
	f.eventually("b's worker uncounted", func() error {
		w := a.hello(secret)
		if m := w.read(); m["messageType"] == "worker-error" {
			return fmt.Errorf("%v", m["reason"])
		}
		return nil
	})
}
