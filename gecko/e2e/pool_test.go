package e2e_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/gecko"
	"github.com/geckohost/geckohost/host"
	"github.com/geckohost/geckohost/host/client"
	"github.com/geckohost/geckohost/internal/netns"
	"github.com/geckohost/geckohost/internal/proc"
)

// ownStack starts a stack with popts for one test and closes it (checking
// the close) when the test ends.
func ownStack(t *testing.T, ctx context.Context, e engineKind, popts gecko.PoolOptions) *stack {
	t.Helper()
	return ownStackWith(t, ctx, e, popts, nil)
}

// ownStackWith is ownStack with host options changed by hopts.
func ownStackWith(t *testing.T, ctx context.Context, e engineKind, popts gecko.PoolOptions, hopts func(*host.Options)) *stack {
	t.Helper()
	netns.Skip(t)
	s, err := newStackWith(ctx, e, popts, hopts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.close(cctx); err != nil {
			t.Errorf("close stack: %v", err)
		}
	})
	return s
}

// waitBrowsers polls the pool until ok(its browsers) holds.
func waitBrowsers(ctx context.Context, t *testing.T, s *stack, what string, ok func([]gecko.BrowserInfo) bool) []gecko.BrowserInfo {
	t.Helper()
	for {
		bs := s.pool.Browsers()
		if ok(bs) {
			return bs
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: browsers %+v", what, bs)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestTwoBrowsers runs two Firefox processes of two workers each: a token
// stays on its browser while it has room, spills to the other when it is
// full, and a fifth worker waits in the queue, then gets 301.
func TestTwoBrowsers(t *testing.T) {
	forEngines(t, func(t *testing.T, e engineKind) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		s := ownStackWith(t, ctx, e, gecko.PoolOptions{Browsers: 2, MaxWorkersPerBrowser: 2, Warm: 1, RecycleAfter: -1},
			func(o *host.Options) { o.QueueTimeout = 500 * time.Millisecond })
		bs := waitBrowsers(ctx, t, s, "two browsers", func(bs []gecko.BrowserInfo) bool {
			return len(bs) == 2 && bs[0].Warm >= 1 && bs[1].Warm >= 1
		})
		if bs[0].PID == bs[1].PID {
			t.Fatalf("one process for two browsers: %+v", bs)
		}
		open := func(token string) *client.Session {
			t.Helper()
			sess, err := dial(ctx, t, s, token, "/echo.js")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sess.Close() })
			if out := exchange(ctx, t, sess, sess.WorkerID); string(out[0].Data) != sess.WorkerID {
				t.Fatalf("echo = %q", out[0].Data)
			}
			return sess
		}
		workers := func() map[int]int {
			m := map[int]int{}
			for _, b := range s.pool.Browsers() {
				m[b.Index] = b.Workers
			}
			return m
		}
		open(s.tokenA)
		open(s.tokenA)
		w := workers()
		if !(w[0] == 2 && w[1] == 0 || w[0] == 0 && w[1] == 2) {
			t.Fatalf("token a's two workers are not on one browser: %v", w)
		}
		open(s.tokenB)
		open(s.tokenA) // its browser is full: the other one takes it
		if w := workers(); w[0] != 2 || w[1] != 2 {
			t.Fatalf("workers per browser = %v, want 2 and 2", w)
		}
		_, err := dial(ctx, t, s, s.tokenB, "/echo.js")
		if !isErrno(err, engine.NoGeckoAvailable) || !strings.Contains(err.Error(), "--queue-timeout") {
			t.Fatalf("fifth worker: %v, want 301 after the queue timeout", err)
		}
	})
}

// TestRecycleUserContext: once a token's user context has started
// RecycleAfter workers, the next one gets a fresh context (fresh storage);
// the old context is removed when its last worker ends, and the new one
// keeps working.
func TestRecycleUserContext(t *testing.T) {
	forEngines(t, func(t *testing.T, e engineKind) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		s := ownStack(t, ctx, e, gecko.PoolOptions{Warm: 1, RecycleAfter: 2})
		waitBrowsers(ctx, t, s, "warm", func(bs []gecko.BrowserInfo) bool { return len(bs) == 1 && bs[0].Warm >= 1 })
		a1 := openIDB(ctx, t, s, s.tokenA, "set:first", "ok")
		a2 := openIDB(ctx, t, s, s.tokenA, "get", "got:first") // the context's storage
		if bs := s.pool.Browsers(); bs[0].Tokens != 1 || bs[0].Retiring != 0 {
			t.Fatalf("before recycling: %+v", bs)
		}
		a3 := openIDB(ctx, t, s, s.tokenA, "get", "got:") // a fresh context: empty storage
		if bs := s.pool.Browsers(); bs[0].Tokens != 1 || bs[0].Retiring != 1 || bs[0].Workers != 3 {
			t.Fatalf("after recycling: %+v", bs)
		}
		closeSession(t, a1)
		closeSession(t, a2)
		waitBrowsers(ctx, t, s, "old context removed", func(bs []gecko.BrowserInfo) bool {
			return len(bs) == 1 && bs[0].Retiring == 0 && bs[0].Workers == 1
		})
		ask(ctx, t, a3, "set:second", "ok")
		openIDB(ctx, t, s, s.tokenA, "get", "got:second")
	})
}

// TestRecycleBrowser: once a browser has started RecycleBrowserAfter
// workers and runs none, a replacement is launched; a session that starts
// meanwhile goes on wherever it landed, later ones go to the replacement,
// and the old browser (process and profile) is gone once its last worker
// ends.
func TestRecycleBrowser(t *testing.T) {
	forEngines(t, func(t *testing.T, e engineKind) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		s := ownStack(t, ctx, e, gecko.PoolOptions{Warm: 1, RecycleBrowserAfter: 2, RecycleAfter: -1})
		first := waitBrowsers(ctx, t, s, "warm", func(bs []gecko.BrowserInfo) bool { return len(bs) == 1 && bs[0].Warm >= 1 })[0]
		open := func(msg string) *client.Session {
			t.Helper()
			sess, err := dial(ctx, t, s, s.tokenA, "/echo.js")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sess.Close() })
			echo(ctx, t, sess, msg)
			return sess
		}
		a1 := open("one")
		a2 := open("two")
		if bs := s.pool.Browsers(); len(bs) != 1 || bs[0].Started != 2 {
			t.Fatalf("a busy browser is being replaced: %+v", bs)
		}
		closeSession(t, a1)
		closeSession(t, a2)
		waitBrowsers(ctx, t, s, "idle", func(bs []gecko.BrowserInfo) bool {
			n := 0
			for _, b := range bs {
				n += b.Workers
			}
			return n == 0
		})
		// The browser is idle now: its replacement starts. A session opened
		// meanwhile lands on the old browser (until the replacement takes
		// over) or on the new one; either way it works.
		mid := open("while replacing")
		waitBrowsers(ctx, t, s, "replacement up", func(bs []gecko.BrowserInfo) bool {
			return len(bs) >= 1 && !bs[0].Standby && bs[0].PID != first.PID
		})
		echo(ctx, t, mid, "still there")
		late := open("on the new browser")
		if bs := s.pool.Browsers(); bs[0].PID == first.PID || bs[0].Workers < 1 {
			t.Fatalf("new session not on the replacement: %+v", bs)
		}
		closeSession(t, mid)
		waitBrowsers(ctx, t, s, "old browser closed", func(bs []gecko.BrowserInfo) bool { return len(bs) == 1 })
		for {
			left := proc.GroupMembers(first.PID)
			if len(left) == 0 {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("the replaced browser's processes %v are still there", left)
			case <-time.After(20 * time.Millisecond):
			}
		}
		if _, err := os.Stat(first.Profile); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the replaced browser's profile %s is still there (%v)", first.Profile, err)
		}
		echo(ctx, t, late, "the new browser goes on")
	})
}

// echo sends msg on the session and expects it back.
func echo(ctx context.Context, t *testing.T, sess *client.Session, msg string) {
	t.Helper()
	ask(ctx, t, sess, msg, msg)
}
