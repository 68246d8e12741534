package chromium_test

import (
	"context"
	"testing"
	"time"

	"github.com/geckohost/geckohost/gecko/chromium"
)

// TestLimits: the busy limit, the lifetime, the memory limit and the
// storage quota end (or refuse) as the Firefox engine's do.
func TestLimits(t *testing.T) {
	s := newStack(t, chromium.PoolOptions{Warm: 1, WorkerBusyLimit: time.Second, WorkerMaxLifetime: 3 * time.Second,
		WorkerMemory: 256 << 20, WorkerStorage: 16 << 20})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for _, c := range []struct{ path, msg, reply, end string }{
		{"/busy.js", "go", "", "cpu-limit"},
		{"/echo.js", "", "", "lifetime"},
		{"/bomb.js", "go", "growing", "memory-limit"},
		{"/quota.js", "go", "err QuotaExceededError", ""},
	} {
		sess, err := s.dial(ctx, s.tokenA, c.path)
		if err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		t0 := time.Now()
		switch {
		case c.reply != "":
			if got, err := ask(ctx, sess, c.msg); err != nil || got != c.reply {
				t.Errorf("%s: reply %q, %v; want %q", c.path, got, err, c.reply)
			}
		case c.msg != "":
			_ = sess.Channel.SendText(c.msg)
		}
		if c.end != "" {
			if r := s.waitEnd(ctx, t, sess.WorkerID); r != c.end {
				t.Errorf("%s: ended %q, want %q", c.path, r, c.end)
			}
			t.Logf("%s: %s after %v", c.path, c.end, time.Since(t0).Round(time.Millisecond))
		}
		_ = sess.Close()
	}
}
