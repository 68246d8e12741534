package cluster

import (
	"context"
	"time"
)

// Crash stops n as a killed process would: its loops and relay stop, it
// neither leaves the registry nor closes anything (tests only). The
// returned function waits for its goroutines, once its engine's workers
// are gone too.
func Crash(n *Node) (wait func()) {
	n.mu.Lock()
	n.closed = true
	n.stopped = true
	n.mu.Unlock()
	n.cancel()
	return n.wg.Wait
}

// SetTokenClock replaces the clock of t (tests only).
func SetTokenClock(t *Tokens, now func() time.Time) { t.now = now }

// Negotiating returns how many sessions n counts as negotiating.
func Negotiating(n *Node) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.negotiating
}

// Keys returns every geckohost key in Redis (tests only).
func (c *Client) Keys(ctx context.Context) ([]string, error) {
	return c.rdb.Keys(ctx, keyPrefix+"*").Result()
}
