package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/internal/leaktest"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func openTest(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(testCtx(t), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func userVersion(t *testing.T, db *DB) int {
	t.Helper()
	var v int
	if err := db.sql.QueryRowContext(testCtx(t), "PRAGMA user_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// fakeClock is a settable clock for expiry tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestDefaultPath(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "/xdg")
	if p, err := DefaultPath(); err != nil || p != "/xdg/geckohost/geckohost.db" {
		t.Errorf("with XDG_DATA_HOME: %q, %v", p, err)
	}
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("HOME", "/home/u")
	if p, err := DefaultPath(); err != nil || p != "/home/u/.local/share/geckohost/geckohost.db" {
		t.Errorf("without XDG_DATA_HOME: %q, %v", p, err)
	}
}

func TestOpenFreshCreatesModes(t *testing.T) {
	leaktest.Check(t)
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "geckohost.db")
	db := openTest(t, path)
	if v := userVersion(t, db); v != len(migrations) {
		t.Errorf("user_version = %d, want %d", v, len(migrations))
	}
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600, path + "-wal": 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode %v, want %v", p, got, want)
		}
	}
	var mode string
	if err := db.sql.QueryRowContext(testCtx(t), "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode %q, %v", mode, err)
	}
	var fk int
	if err := db.sql.QueryRowContext(testCtx(t), "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Errorf("foreign_keys %d, %v", fk, err)
	}
}

func TestOpenTwiceKeepsData(t *testing.T) {
	leaktest.Check(t)
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.AddToken(ctx, domain.NewToken{Name: "kept"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2 := openTest(t, path)
	if v := userVersion(t, db2); v != len(migrations) {
		t.Errorf("user_version = %d after re-open", v)
	}
	toks, err := db2.ListTokens(ctx)
	if err != nil || len(toks) != 1 || toks[0].Name != "kept" {
		t.Errorf("tokens after re-open: %+v, %v", toks, err)
	}
}

func TestOpenConcurrent(t *testing.T) {
	leaktest.Check(t)
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "new.db")
	const n = 8
	dbs := make([]*DB, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			dbs[i], errs[i] = Open(ctx, path)
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Open %d: %v", i, errs[i])
			continue
		}
		if _, _, err := dbs[i].AddToken(ctx, domain.NewToken{Name: fmt.Sprintf("t%d", i)}); err != nil {
			t.Errorf("AddToken via %d: %v", i, err)
		}
	}
	for _, db := range dbs {
		if db != nil {
			if v := userVersion(t, db); v != len(migrations) {
				t.Errorf("user_version %d", v)
			}
			_ = db.Close()
		}
	}
	db := openTest(t, path)
	toks, err := db.ListTokens(ctx)
	if err != nil || len(toks) != n {
		t.Errorf("got %d tokens, %v; want %d", len(toks), err, n)
	}
}

func TestOpenNewerSchema(t *testing.T) {
	leaktest.Check(t)
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "db")
	db := openTest(t, path)
	if _, err := db.sql.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations)+1)); err != nil {
		t.Fatal(err)
	}
	_, err := Open(ctx, path)
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open newer: %v, want ErrSchemaTooNew", err)
	}
	t.Log(err)
}

func TestOpenCorrupt(t *testing.T) {
	leaktest.Check(t)
	path := filepath.Join(t.TempDir(), "db")
	if err := os.WriteFile(path, bytes.Repeat([]byte("this is not sqlite\n"), 300), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(testCtx(t), path)
	if err == nil {
		t.Fatal("Open of a corrupt file succeeded")
	}
	t.Log(err)
	if !bytes.Contains([]byte(err.Error()), []byte("not a valid geckohost database")) {
		t.Errorf("error %q does not say the file is not a database", err)
	}
}

func TestOpenUnwritable(t *testing.T) {
	leaktest.Check(t)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(testCtx(t), filepath.Join(file, "sub", "db"))
	if err == nil {
		t.Fatal("Open under a regular file succeeded")
	}
	t.Log(err)
}

func TestTokenAddLookup(t *testing.T) {
	leaktest.Check(t)
	ctx := testCtx(t)
	db := openTest(t, filepath.Join(t.TempDir(), "db"))
	clk := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	db.now = clk.now

	tok, secret, err := db.AddToken(ctx, domain.NewToken{Name: "alice", Sources: []string{"https://Example.com/", "http://127.0.0.1:*"}, MaxWorkers: 3,
		WorkerMemory: 128 << 20, WorkerLifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) != len(domain.SecretPrefix)+43 || secret[:3] != domain.SecretPrefix {
		t.Errorf("secret %q has the wrong shape", secret)
	}
	if tok.Prefix != secret[:domain.PrefixLen] || tok.ID == 0 || !tok.Created.Equal(clk.now()) || !tok.Expires.IsZero() {
		t.Errorf("token %+v", tok)
	}
	if want := []string{"https://example.com", "http://127.0.0.1:*"}; fmt.Sprint(tok.Sources) != fmt.Sprint(want) {
		t.Errorf("sources %v, want %v", tok.Sources, want)
	}
	_, secret2, err := db.AddToken(ctx, domain.NewToken{Name: "bob"})
	if err != nil || secret2 == secret {
		t.Fatalf("second token: %v (same secret: %v)", err, secret2 == secret)
	}

	clk.add(time.Minute)
	got, err := db.LookupToken(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != tok.ID || got.Name != "alice" || got.MaxWorkers != 3 || !got.LastUsed.Equal(clk.now()) ||
		got.WorkerMemory != 128<<20 || got.WorkerLifetime != time.Hour {
		t.Errorf("lookup %+v", got)
	}
	toks, err := db.ListTokens(ctx)
	if err != nil || len(toks) != 2 {
		t.Fatalf("list: %v, %v", toks, err)
	}
	if !toks[0].LastUsed.Equal(clk.now()) || !toks[1].LastUsed.IsZero() {
		t.Errorf("last used not recorded: %+v", toks)
	}

	for _, bad := range []string{"", "gh_", secret + "x", secret[:len(secret)-1], "Bearer " + secret} {
		if _, err := db.LookupToken(ctx, bad); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("lookup %q: %v, want ErrNotFound", bad, err)
		}
	}
}

func TestTokenAddErrors(t *testing.T) {
	leaktest.Check(t)
	ctx := testCtx(t)
	db := openTest(t, filepath.Join(t.TempDir(), "db"))
	if _, _, err := db.AddToken(ctx, domain.NewToken{Name: "dup"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.AddToken(ctx, domain.NewToken{Name: "dup"}); !errors.Is(err, domain.ErrNameTaken) {
		t.Errorf("duplicate: %v", err)
	}
	for _, nt := range []domain.NewToken{
		{Name: ""}, {Name: "123"}, {Name: "has space"}, {Name: "é"}, {Name: string(bytes.Repeat([]byte("a"), 65))},
		{Name: "x", TTL: -time.Second}, {Name: "x", MaxWorkers: -1}, {Name: "x", Sources: []string{"example.com"}},
		{Name: "x", WorkerMemory: -1}, {Name: "x", WorkerLifetime: -time.Second},
	} {
		if _, _, err := db.AddToken(ctx, nt); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("AddToken(%+v): %v, want ErrInvalid", nt, err)
		}
	}
}

func TestTokenExpiry(t *testing.T) {
	leaktest.Check(t)
	ctx := testCtx(t)
	db := openTest(t, filepath.Join(t.TempDir(), "db"))
	clk := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	db.now = clk.now
	tok, secret, err := db.AddToken(ctx, domain.NewToken{Name: "short", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if want := clk.now().Add(time.Hour); !tok.Expires.Equal(want) {
		t.Errorf("expires %v, want %v", tok.Expires, want)
	}
	clk.add(time.Hour - time.Millisecond)
	if _, err := db.LookupToken(ctx, secret); err != nil {
		t.Errorf("just before expiry: %v", err)
	}
	clk.add(time.Millisecond)
	got, err := db.LookupToken(ctx, secret)
	if !errors.Is(err, domain.ErrExpired) || got.Name != "short" {
		t.Errorf("at expiry: %+v, %v; want ErrExpired", got, err)
	}
}

func TestTokenRevoke(t *testing.T) {
	leaktest.Check(t)
	ctx := testCtx(t)
	db := openTest(t, filepath.Join(t.TempDir(), "db"))
	clk := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	db.now = clk.now
	a, secretA, _ := db.AddToken(ctx, domain.NewToken{Name: "a"})
	_, secretB, _ := db.AddToken(ctx, domain.NewToken{Name: "b"})

	r, err := db.RevokeToken(ctx, fmt.Sprint(a.ID))
	if err != nil || r.Name != "a" || !r.Revoked.Equal(clk.now()) {
		t.Fatalf("revoke by id: %+v, %v", r, err)
	}
	clk.add(time.Hour)
	r2, err := db.RevokeToken(ctx, "a")
	if err != nil || !r2.Revoked.Equal(r.Revoked) {
		t.Errorf("revoke again: %+v, %v; want the first revocation time kept", r2, err)
	}
	if _, err := db.RevokeToken(ctx, "b"); err != nil {
		t.Errorf("revoke by name: %v", err)
	}
	for _, s := range []string{secretA, secretB} {
		if _, err := db.LookupToken(ctx, s); !errors.Is(err, domain.ErrRevoked) {
			t.Errorf("lookup revoked: %v, want ErrRevoked", err)
		}
	}
	for _, s := range []string{"nobody", "999"} {
		if _, err := db.RevokeToken(ctx, s); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("revoke %q: %v, want ErrNotFound", s, err)
		}
	}
}

// TestHashesOnly checks that no secret appears anywhere in the database
// files, in plaintext or as its base64 body.
func TestHashesOnly(t *testing.T) {
	leaktest.Check(t)
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "db")
	db := openTest(t, path)
	var secrets []string
	for i := range 20 {
		_, s, err := db.AddToken(ctx, domain.NewToken{Name: fmt.Sprintf("t%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.LookupToken(ctx, s); err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, s)
	}
	check := func(when string) {
		for _, f := range []string{path, path + "-wal", path + "-shm"} {
			b, err := os.ReadFile(f)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range secrets {
				if bytes.Contains(b, []byte(s[domain.PrefixLen:])) {
					t.Errorf("%s: secret found in %s", when, f)
				}
			}
		}
	}
	check("open")
	if _, err := db.sql.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	check("after checkpoint")
}

func TestSessions(t *testing.T) {
	leaktest.Check(t)
	ctx := testCtx(t)
	db := openTest(t, filepath.Join(t.TempDir(), "db"))
	tok, _, _ := db.AddToken(ctx, domain.NewToken{Name: "alice"})
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

	s := domain.Session{WorkerID: "w1", TokenID: tok.ID, TokenName: "alice", Source: "http://127.0.0.1:9/w.js",
		RemoteAddr: "127.0.0.1:5555", Engine: "firefox", State: domain.StateNegotiating, Created: base}
	if err := db.SaveSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	s.State, s.Answered = domain.StateAnswered, base.Add(12*time.Millisecond)
	if err := db.SaveSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	s.State, s.Connected = domain.StateConnected, base.Add(50*time.Millisecond)
	if err := db.SaveSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	s.State, s.Ended, s.EndReason = domain.StateEnded, base.Add(time.Minute), "worker-closed"
	if err := db.SaveSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetSession(ctx, "w1")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", s) {
		t.Errorf("GetSession:\n got %+v\nwant %+v", got, s)
	}
	if _, err := db.GetSession(ctx, "nope"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("GetSession unknown: %v", err)
	}
	if err := db.SaveSession(ctx, domain.Session{}); !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("SaveSession without id: %v", err)
	}
	// A failed session without a token.
	if err := db.SaveSession(ctx, domain.Session{WorkerID: "w0", State: domain.StateEnded, Errno: 102, Reason: "invalid token",
		Created: base.Add(-time.Second), Ended: base.Add(-time.Second), EndReason: "error"}); err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		if err := db.SaveSession(ctx, domain.Session{WorkerID: fmt.Sprintf("x%02d", i), TokenName: "bob",
			State: domain.StateNegotiating, Created: base.Add(time.Duration(i+1) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}

	all, err := db.ListSessions(ctx, domain.SessionFilter{})
	if err != nil || len(all) != 50 {
		t.Fatalf("default limit: %d, %v", len(all), err)
	}
	if all[0].WorkerID != "x59" || all[49].WorkerID != "x10" {
		t.Errorf("not newest first: first %s, last %s", all[0].WorkerID, all[49].WorkerID)
	}
	alice, err := db.ListSessions(ctx, domain.SessionFilter{TokenName: "alice"})
	if err != nil || len(alice) != 1 || alice[0].WorkerID != "w1" {
		t.Errorf("filter by token: %+v, %v", alice, err)
	}
	three, err := db.ListSessions(ctx, domain.SessionFilter{TokenName: "bob", Limit: 3})
	if err != nil || len(three) != 3 || three[2].WorkerID != "x57" {
		t.Errorf("limit 3: %+v, %v", three, err)
	}
	everything, err := db.ListSessions(ctx, domain.SessionFilter{Limit: 1000})
	if err != nil || len(everything) != 62 || everything[61].WorkerID != "w0" || everything[61].TokenID != 0 {
		t.Errorf("limit 1000: %d, %v", len(everything), err)
	}
	if _, err := db.ListSessions(ctx, domain.SessionFilter{Limit: -1}); !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("negative limit: %v", err)
	}
}

func TestSessionsConcurrentWriters(t *testing.T) {
	leaktest.Check(t)
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "db")
	db1 := openTest(t, path)
	db2 := openTest(t, path)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for g := range 4 {
		db := db1
		if g%2 == 1 {
			db = db2
		}
		wg.Go(func() {
			for i := range 25 {
				id := fmt.Sprintf("g%d-%d", g, i)
				for _, st := range []string{domain.StateNegotiating, domain.StateAnswered, domain.StateConnected, domain.StateEnded} {
					if err := db.SaveSession(ctx, domain.Session{WorkerID: id, State: st}); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	all, err := db1.ListSessions(ctx, domain.SessionFilter{Limit: 1000})
	if err != nil || len(all) != 100 {
		t.Errorf("got %d sessions, %v", len(all), err)
	}
}

func TestSourcePatterns(t *testing.T) {
	good := map[string]string{
		"https://example.com":     "https://example.com",
		"HTTPS://Example.COM/":    "https://example.com",
		"http://127.0.0.1:*":      "http://127.0.0.1:*",
		"http://127.0.0.1:8080":   "http://127.0.0.1:8080",
		"https://*.example.com":   "https://*.example.com",
		"http://[::1]:*":          "http://[::1]:*",
		"http://localhost":        "http://localhost",
		"https://a-b.c-d.example": "https://a-b.c-d.example",
	}
	for in, want := range good {
		got, err := domain.ValidateSourcePattern(in)
		if err != nil || got != want {
			t.Errorf("ValidateSourcePattern(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "example.com", "ftp://example.com", "https://", "https://example.com/path",
		"https://example.com?x", "https://u@example.com", "https://*", "https://*.*.com", "https://ex*.com",
		"http://127.0.0.1:0", "http://127.0.0.1:65536", "http://127.0.0.1:x", "http://::1", "http://[::1",
		"http://[1.2.3.4]", "https://-a.com", "https://a..com", "https://exa mple.com", "http://host:"} {
		if got, err := domain.ValidateSourcePattern(in); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("ValidateSourcePattern(%q) = %q, %v; want ErrInvalid", in, got, err)
		}
	}
}

func TestMatchSource(t *testing.T) {
	for _, c := range []struct {
		pattern, url string
		want         bool
	}{
		{"https://example.com", "https://example.com/w.js", true},
		{"https://example.com", "https://EXAMPLE.com:443/w.js", true},
		{"https://example.com", "https://example.com:8443/w.js", false},
		{"https://example.com", "http://example.com/w.js", false},
		{"https://example.com", "https://sub.example.com/w.js", false},
		{"http://127.0.0.1:*", "http://127.0.0.1:41234/x.js", true},
		{"http://127.0.0.1:*", "http://127.0.0.1/x.js", true},
		{"http://127.0.0.1:*", "http://127.0.0.2:1/x.js", false},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080", true},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8081", false},
		{"https://*.example.com", "https://a.b.example.com/w.js", true},
		{"https://*.example.com", "https://example.com/w.js", false},
		{"https://*.example.com", "https://badexample.com/w.js", false},
		{"http://[::1]:*", "http://[::1]:9/w.js", true},
		{"http://[::1]:*", "http://[0:0::1]:9/w.js", true},
		{"https://example.com", "https://user@example.com/w.js", false},
		{"https://example.com", "not a url", false},
		{"garbage", "https://example.com", false},
	} {
		if got := domain.MatchSource(c.pattern, c.url); got != c.want {
			t.Errorf("MatchSource(%q, %q) = %v, want %v", c.pattern, c.url, got, c.want)
		}
	}
}

func TestTokenRate(t *testing.T) {
	leaktest.Check(t)
	ctx := testCtx(t)
	db := openTest(t, filepath.Join(t.TempDir(), "db"))
	r := domain.Rate{Count: 60, Window: time.Minute}
	tok, secret, err := db.AddToken(ctx, domain.NewToken{Name: "ci", Rate: r})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Rate != r || tok.Rate.String() != "60/1m0s" {
		t.Errorf("added %+v", tok.Rate)
	}
	if _, _, err := db.AddToken(ctx, domain.NewToken{Name: "free"}); err != nil {
		t.Fatal(err)
	}
	got, err := db.LookupToken(ctx, secret)
	if err != nil || got.Rate != r {
		t.Errorf("lookup: %+v, %v", got.Rate, err)
	}
	toks, err := db.ListTokens(ctx)
	if err != nil || len(toks) != 2 || toks[0].Rate != r || !toks[1].Rate.IsZero() || toks[1].Rate.String() != "" {
		t.Errorf("list: %+v, %v", toks, err)
	}
	rev, err := db.RevokeToken(ctx, "ci")
	if err != nil || rev.Rate != r {
		t.Errorf("revoke: %+v, %v", rev.Rate, err)
	}

	for _, bad := range []domain.Rate{
		{Count: 0, Window: time.Minute}, {Count: -1, Window: time.Minute}, {Count: 5},
		{Count: 5, Window: 999 * time.Millisecond}, {Count: 5, Window: 30*24*time.Hour + time.Millisecond},
		{Count: domain.MaxRateCount + 1, Window: time.Hour}, {Count: 1, Window: time.Second + time.Microsecond},
		{Count: 1, Window: -time.Hour},
	} {
		if _, _, err := db.AddToken(ctx, domain.NewToken{Name: "bad", Rate: bad}); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("AddToken(rate %+v): %v, want ErrInvalid", bad, err)
		}
	}
	for _, ok := range []domain.Rate{{Count: 1, Window: time.Second}, {Count: domain.MaxRateCount, Window: 30 * 24 * time.Hour}} {
		if err := ok.Validate(); err != nil {
			t.Errorf("Validate(%+v): %v", ok, err)
		}
	}
}

// TestMigrateFromVersion1 upgrades a database written at schema version 1
// (before the rate limit columns): its tokens keep working, without a rate.
func TestMigrateFromVersion1(t *testing.T) {
	leaktest.Check(t)
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "db")
	old := openTest(t, path)
	// Rebuild the file as version 1 left it.
	if _, err := old.sql.ExecContext(ctx, `DROP TABLE IF EXISTS runs; DROP TABLE sessions; DROP TABLE tokens; PRAGMA user_version = 0`); err != nil {
		t.Fatal(err)
	}
	if _, err := old.sql.ExecContext(ctx, migrations[0]+`; PRAGMA user_version = 1`); err != nil {
		t.Fatal(err)
	}
	secret := "gh_old-secret"
	if _, err := old.sql.ExecContext(ctx,
		`INSERT INTO tokens (name, prefix, hash, created, sources, max_workers) VALUES ('old', 'gh_old-s', ?, 1, '[]', 2)`,
		domain.HashSecret(secret)); err != nil {
		t.Fatal(err)
	}
	if v := userVersion(t, old); v != 1 {
		t.Fatalf("user_version %d, want 1", v)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open (upgrade): %v", err)
	}
	defer func() { _ = db.Close() }()
	if v := userVersion(t, db); v != len(migrations) {
		t.Errorf("user_version %d after upgrade, want %d", v, len(migrations))
	}
	tok, err := db.LookupToken(ctx, secret)
	if err != nil || tok.Name != "old" || tok.MaxWorkers != 2 || !tok.Rate.IsZero() {
		t.Fatalf("old token after upgrade: %+v, %v", tok, err)
	}
	r := domain.Rate{Count: 10, Window: time.Second}
	if tok, _, err := db.AddToken(ctx, domain.NewToken{Name: "new", Rate: r}); err != nil || tok.Rate != r {
		t.Fatalf("new token after upgrade: %+v, %v", tok, err)
	}
}
