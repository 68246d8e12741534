package cluster_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/host"
)

// answeredBy returns the node named in a fake answer.
func answeredBy(answer string) string {
	_, node, _ := strings.Cut(answer, "answer from ")
	return node
}

// TestSpreadAndAffinity: with two workers per node, six sessions of one
// token through node a land two per node (a's own room first, then the
// token's node while it has room, then the least loaded); the seventh is a
// 301. A second token's second worker, through another node, lands beside
// its first.
func TestSpreadAndAffinity(t *testing.T) {
	f := newFixture(t)
	a := f.node("a", 2, nil)
	b := f.node("b", 2, nil)
	c := f.node("c", 2, nil)
	f.seen(3)

	other := f.token(domain.NewToken{Name: "other"})
	_, first := c.hello(other).connect()
	_, second := a.hello(other).connect()
	if answeredBy(first) != "c" || answeredBy(second) != "c" {
		t.Fatalf("token's workers on %s and %s, want both on c", answeredBy(first), answeredBy(second))
	}
	// Free c again.
	for _, w := range c.eng.workersList() {
		w.end(engine.EndPeerClosed)
	}
	f.eventually("c empty", func() error {
		if n := c.eng.Live(); n != 0 {
			return fmt.Errorf("%d live", n)
		}
		return nil
	})
	f.settled(map[string]int{"a": 0, "b": 0, "c": 0})

	secret := f.token(domain.NewToken{})
	var order []string
	for range 6 {
		_, ans := a.hello(secret).connect()
		order = append(order, answeredBy(ans))
	}
	if got := strings.Join(order, ","); got != "a,a,b,b,c,c" {
		t.Errorf("placement %s, want a,a,b,b,c,c", got)
	}
	for _, n := range []*tnode{a, b, c} {
		if l := n.eng.Live(); l != 2 {
			t.Errorf("node %s runs %d workers, want 2", n.id, l)
		}
	}
	a.hello(secret).expectError(engine.NoGeckoAvailable, "")
}

// TestQueueAcrossNodes: with every node full, a hello waits in its node's
// queue and takes the first place freed on any node.
func TestQueueAcrossNodes(t *testing.T) {
	f := newFixture(t)
	a := f.nodeWith("a", 1, nil, func(o *host.Options) { o.QueueSize = 10 })
	b := f.node("b", 1, nil)
	f.seen(2)
	secret := f.token(domain.NewToken{})
	a.hello(secret).connect()
	id, _ := b.hello(secret).connect()
	f.settled(map[string]int{"a": 1, "b": 1})
	w := a.hello(secret)
	f.eventually("queued", func() error {
		if st := a.srv.Status(); st.Queue.Depth != 1 {
			return fmt.Errorf("queue depth %d", st.Queue.Depth)
		}
		return nil
	})
	b.eng.Worker(id).end(engine.EndPeerClosed)
	if _, ans := w.connect(); answeredBy(ans) != "b" {
		t.Errorf("queued hello answered by %q, want b (where a place was freed)", answeredBy(ans))
	}
}
