package cluster_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/geckohost/geckohost/cluster"
	"github.com/geckohost/geckohost/domain"
)

// TestTokens: add, look up, list and revoke as with SQLite: same checks,
// same secret form, the hash only in Redis.
func TestTokens(t *testing.T) {
	f := newFixture(t)
	toks := f.c.Tokens()
	tok, secret, err := toks.AddToken(f.ctx, domain.NewToken{Name: "me", TTL: time.Hour, MaxWorkers: 3,
		Rate: domain.Rate{Count: 60, Window: time.Minute}, Sources: []string{"HTTPS://Example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, domain.SecretPrefix) || tok.Prefix != secret[:8] || tok.ID != 1 {
		t.Errorf("token %+v, secret %q", tok, secret)
	}
	if _, _, err := toks.AddToken(f.ctx, domain.NewToken{Name: "me"}); !errors.Is(err, domain.ErrNameTaken) {
		t.Errorf("same name: %v", err)
	}
	for _, nt := range []domain.NewToken{{Name: "123"}, {Name: "x", MaxWorkers: -1}, {Name: "x", Sources: []string{"ftp://x"}},
		{Name: "x", Rate: domain.Rate{Count: 1, Window: time.Millisecond}}} {
		if _, _, err := toks.AddToken(f.ctx, nt); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("AddToken(%+v): %v, want ErrInvalid", nt, err)
		}
	}
	got, err := toks.LookupToken(f.ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "me" || got.MaxWorkers != 3 || got.Rate != tok.Rate || len(got.Sources) != 1 || got.Sources[0] != "https://example.com" ||
		!got.Expires.Equal(tok.Expires) || got.LastUsed.IsZero() {
		t.Errorf("lookup %+v, want %+v", got, tok)
	}
	if _, err := toks.LookupToken(f.ctx, secret+"x"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("wrong secret: %v", err)
	}
	// The secret itself is nowhere in Redis.
	keys, err := f.c.Keys(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.Contains(k, secret) {
			t.Errorf("key %q holds the secret", k)
		}
	}
	list, err := toks.ListTokens(f.ctx)
	if err != nil || len(list) != 1 || list[0].Name != "me" {
		t.Fatalf("list %+v %v", list, err)
	}
	if _, err := toks.RevokeToken(f.ctx, "nobody"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("revoke unknown: %v", err)
	}
	r1, err := toks.RevokeToken(f.ctx, "1")
	if err != nil || r1.Revoked.IsZero() {
		t.Fatalf("revoke: %+v %v", r1, err)
	}
	r2, err := toks.RevokeToken(f.ctx, "me")
	if err != nil || !r2.Revoked.Equal(r1.Revoked) {
		t.Errorf("second revoke %+v %v: the first time is kept", r2, err)
	}
	fresh := f.c.Tokens()
	if _, err := fresh.LookupToken(f.ctx, secret); !errors.Is(err, domain.ErrRevoked) {
		t.Errorf("revoked lookup: %v", err)
	}
}

// TestTokenCache: a node reuses a lookup for at most its cache time, so a
// revoke made elsewhere is seen within it; expiry is exact.
func TestTokenCache(t *testing.T) {
	f := newFixture(t)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	node := f.c.Tokens()
	cluster.SetTokenClock(node, clock)
	admin := f.c.Tokens()
	cluster.SetTokenClock(admin, clock)
	_, secret, err := admin.AddToken(f.ctx, domain.NewToken{Name: "t", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := node.LookupToken(f.ctx, secret); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RevokeToken(f.ctx, "t"); err != nil {
		t.Fatal(err)
	}
	advance(cluster.DefaultTokenCache - time.Millisecond)
	if _, err := node.LookupToken(f.ctx, secret); err != nil {
		t.Errorf("within the cache time: %v", err)
	}
	advance(time.Millisecond)
	if _, err := node.LookupToken(f.ctx, secret); !errors.Is(err, domain.ErrRevoked) {
		t.Errorf("after the cache time: %v, want revoked", err)
	}

	_, secret2, err := admin.AddToken(f.ctx, domain.NewToken{Name: "u", TTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := node.LookupToken(f.ctx, secret2); err != nil {
		t.Fatal(err)
	}
	advance(time.Second)
	if _, err := node.LookupToken(f.ctx, secret2); !errors.Is(err, domain.ErrExpired) {
		t.Errorf("expired while cached: %v", err)
	}
}

// TestRegistry: nodes list each other with their load; a crashed node is
// out once silent for Stale; a closed one leaves at once.
func TestRegistry(t *testing.T) {
	f := newFixture(t)
	a := f.node("a", 4, func(o *cluster.Options) { o.Addr = "127.0.0.1:1"; o.Version = "v-test" })
	b := f.node("b", 2, nil)
	f.seen(2)
	secret := f.token(domain.NewToken{})
	a.hello(secret).connect()
	f.eventually("a's worker in the registry", func() error {
		nodes, err := f.c.Nodes(f.ctx)
		if err != nil {
			return err
		}
		if len(nodes) != 2 || nodes[0].ID != "a" || nodes[0].Workers != 1 || nodes[0].Capacity != 4 || nodes[0].Addr != "127.0.0.1:1" ||
			nodes[0].Version != "v-test" || nodes[0].State != cluster.StateReady || nodes[1].ID != "b" || nodes[1].Capacity != 2 {
			return errors.New("not yet")
		}
		return nil
	})
	b.crash()
	f.eventually("b out", func() error {
		nodes, err := f.c.Nodes(f.ctx)
		if err != nil {
			return err
		}
		if len(nodes) != 1 {
			return errors.New("b still listed")
		}
		return nil
	})
	a.stop()
	nodes, err := f.c.Nodes(f.ctx)
	if err != nil || len(nodes) != 0 {
		t.Errorf("after a closed: %+v %v", nodes, err)
	}
}

// TestSessionStream: ended sessions of every node are in the stream,
// newest first, with the node that ran the worker and the one that took
// the hello.
func TestSessionStream(t *testing.T) {
	f := newFixture(t)
	a := f.node("a", 1, nil)
	b := f.node("b", 1, nil)
	f.seen(2)
	secret := f.token(domain.NewToken{Name: "s"})
	id1, _ := a.hello(secret).connect()
	id2, _ := a.hello(secret).connect() // relayed to b
	a.eng.Worker(id1).end("peer-closed")
	b.eng.Worker(id2).end("idle")
	b.hello("gh_nope").expectError(102, "unknown token")
	f.eventually("stream", func() error {
		recs, err := f.c.Sessions(f.ctx, domain.SessionFilter{TokenName: "s"})
		if err != nil {
			return err
		}
		if len(recs) != 2 {
			return errors.New("not yet")
		}
		if recs[0].WorkerID != id2 || recs[0].NodeID != "b" || recs[0].Front != "a" || recs[0].EndReason != "idle" ||
			recs[1].WorkerID != id1 || recs[1].NodeID != "a" || recs[1].EndReason != "peer-closed" || recs[0].TokenID == 0 {
			t.Fatalf("records %+v", recs)
		}
		all, err := f.c.Sessions(f.ctx, domain.SessionFilter{})
		if err != nil || len(all) != 3 {
			return errors.New("the 102 not yet")
		}
		return nil
	})
}
