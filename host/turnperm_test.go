package host_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/host"
	"github.com/geckohost/geckohost/store"
)

// relayPeers records what host tells the TURN relay.
type relayPeers struct {
	mu   sync.Mutex
	live map[string][]string // session → "token addr:port"
}

func (r *relayPeers) AddPeer(tokenID int64, session string, a netip.AddrPort) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.live[session] = append(r.live[session], fmt.Sprintf("%d %s", tokenID, a))
}

func (r *relayPeers) DropPeers(session string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.live, session)
}

func (r *relayPeers) get(session string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.live[session])
}

// TestRelayPeers: the UDP candidates of a worker (in its answer and
// trickled) are the relay's peers for the token while the worker lives,
// and are dropped when it ends; TCP and mDNS candidates are not.
func TestRelayPeers(t *testing.T) {
	answer := "v=0\r\na=mid:0\r\na=candidate:1 1 UDP 2122252543 192.0.2.1 50000 typ host\r\n" +
		"a=candidate:2 1 TCP 2105524479 192.0.2.1 9 typ host tcptype active\r\n"
	eng := newFakeEngine(func(ctx context.Context, req engine.WorkerRequest) ([]step, error) {
		return []step{
			{Ev: engine.Event{Kind: engine.EventAnswer, Answer: answer}},
			{Ev: engine.Event{Kind: engine.EventCandidate, Candidate: candidate("candidate:3 1 udp 1686052863 198.51.100.7 50001 typ srflx raddr 192.0.2.1 rport 50002")}},
			{Ev: engine.Event{Kind: engine.EventCandidate, Candidate: candidate("candidate:4 1 udp 2122252543 0f1e2d3c.local 50003 typ host")}},
			{Ev: engine.Event{Kind: engine.EventCandidate, Candidate: candidate("")}},
			{Ev: engine.Event{Kind: engine.EventConnected}},
		}, nil
	})
	rp := &relayPeers{live: map[string][]string{}}
	h := newHarness(t, eng, func(o *host.Options) { o.RelayPeers = rp })
	secret := h.token(store.NewToken{})
	tok, err := h.db.LookupToken(h.ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	c := h.hello(secret)
	w := h.nextWorker()
	for { // worker-hello, candidates, connected, then the host closes
		if _, _, err := c.c.Read(h.ctx); err != nil {
			break
		}
	}
	want := []string{fmt.Sprintf("%d 192.0.2.1:50000", tok.ID), fmt.Sprintf("%d 198.51.100.7:50001", tok.ID)}
	id := w.req.WorkerID
	if got := rp.get(id); !slices.Equal(got, want) {
		t.Fatalf("relay peers of %s: %q, want %q", id, got, want)
	}
	h.emit(w, engine.Event{Kind: engine.EventEnded, Reason: engine.EndPeerClosed})
	eventually(t, h.ctx, "peers dropped", func() error {
		if got := rp.get(id); got != nil {
			return fmt.Errorf("still %q", got)
		}
		return nil
	})
}
