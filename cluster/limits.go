package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/geckohost/geckohost/domain"
)

// The cluster-wide limits. Each token's live workers are a hash (worker id
// → the node running it) and its recent starts a sorted set (start time,
// by Redis's clock). Reserve checks both and adds the worker in one script;
// entries of nodes that left the registry are dropped there, so a node
// that dies takes its counts with it.

var _ domain.Limiter = (*Node)(nil)
var _ domain.Store = (*Node)(nil)

// reserveScript: KEYS live, starts, seen; ARGV worker, node, max,
// rate count, rate window ms, stale ms. Returns {0, node, n, ...} (the
// token's other live workers per node), {1, live} at MaxWorkers, or
// {2, wait ms} at the rate limit.
var reserveScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local stale = tonumber(ARGV[6])
local fields = redis.call('HGETALL', KEYS[1])
local alive, counts, total = {}, {}, 0
for i = 1, #fields, 2 do
  local w, node = fields[i], fields[i + 1]
  local a = alive[node]
  if a == nil then
    local seen = redis.call('HGET', KEYS[3], node)
    a = seen ~= false and now - tonumber(seen) < stale
    alive[node] = a
  end
  if not a then
    redis.call('HDEL', KEYS[1], w)
  elseif w ~= ARGV[1] then
    total = total + 1
    counts[node] = (counts[node] or 0) + 1
  end
end
local max = tonumber(ARGV[3])
if max > 0 and total >= max then return {1, total} end
local count, window = tonumber(ARGV[4]), tonumber(ARGV[5])
if count > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
  local n = redis.call('ZCARD', KEYS[2])
  if n >= count then
    local oldest = redis.call('ZRANGE', KEYS[2], n - count, n - count, 'WITHSCORES')
    return {2, tonumber(oldest[2]) + window - now}
  end
  redis.call('ZADD', KEYS[2], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[2], window)
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local out = {0}
for node, c in pairs(counts) do
  table.insert(out, node)
  table.insert(out, c)
end
return out
`)

// Reserve implements domain.Limiter across the cluster: the token's live
// workers on every live node count against its MaxWorkers, its starts on
// every node against its Rate. While Redis is unreachable it fails with a
// 301 "cluster store unreachable".
func (n *Node) Reserve(ctx context.Context, tok domain.Token, workerID string) error {
	if !n.healthy.Load() {
		return n.unhealthyError("reserve a worker")
	}
	v, err := reserveScript.Run(ctx, n.c.rdb, []string{keyLive(tok.ID), keyStarts(tok.ID), keyNodesSeen},
		workerID, n.opts.ID, tok.MaxWorkers, tok.Rate.Count, tok.Rate.Window.Milliseconds(), n.opts.Stale.Milliseconds()).Slice()
	if err != nil {
		return unreachable("reserve a worker", err)
	}
	if len(v) == 0 {
		return fmt.Errorf("reserve a worker: empty reply")
	}
	code, _ := v[0].(int64)
	switch code {
	case 1:
		return domain.MaxWorkersError(tok)
	case 2:
		ms, _ := v[1].(int64)
		return domain.RateLimitError(tok, time.Duration(max(ms, 1))*time.Millisecond)
	}
	counts := map[string]int{}
	for i := 1; i+1 < len(v); i += 2 {
		node, _ := v[i].(string)
		c, _ := v[i+1].(int64)
		counts[node] = int(c)
	}
	n.mu.Lock()
	n.reserved[workerID] = counts
	n.mu.Unlock()
	return nil
}

// Release implements domain.Limiter: the count is removed in the background
// (retried while Redis is unreachable). A worker running on another node
// is released by that node when it ends.
func (n *Node) Release(tok domain.Token, workerID string) {
	n.mu.Lock()
	delete(n.reserved, workerID)
	remote := n.remoteOwned[workerID]
	delete(n.remoteOwned, workerID)
	if !remote {
		n.releases[workerID] = tok.ID
	}
	n.mu.Unlock()
	if !remote {
		n.releaseNow()
	}
}

// flushReleases removes the pending counts.
func (n *Node) flushReleases(ctx context.Context) {
	n.mu.Lock()
	todo := make(map[string]int64, len(n.releases))
	for w, id := range n.releases {
		if _, live := n.local[w]; !live { // a worker still running keeps its count
			todo[w] = id
		}
	}
	n.mu.Unlock()
	if len(todo) == 0 {
		return
	}
	pipe := n.c.rdb.Pipeline()
	for w, id := range todo {
		pipe.HDel(ctx, keyLive(id), w)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		n.log.Debug("release workers (retried later)", "node", n.opts.ID, "count", len(todo), "err", err)
		return
	}
	n.mu.Lock()
	for w := range todo {
		delete(n.releases, w)
	}
	n.mu.Unlock()
}

// tokenNodes reads the token's live workers per node (other than
// workerID), for a StartWorker without a Reserve.
func (n *Node) tokenNodes(ctx context.Context, tokenID int64, workerID string) (map[string]int, error) {
	f, err := n.c.rdb.HGetAll(ctx, keyLive(tokenID)).Result()
	if err != nil {
		return nil, unreachable("read the token's workers", err)
	}
	counts := map[string]int{}
	for w, node := range f {
		if w != workerID && n.alive(node) {
			counts[node]++
		}
	}
	return counts, nil
}

// trackLocal notes a worker running on this node (its count is
// re-published after an outage).
func (n *Node) trackLocal(workerID string, tokenID int64) {
	n.mu.Lock()
	n.local[workerID] = tokenID
	n.mu.Unlock()
}

// untrackLocal forgets a worker that ended; release also removes its count
// (the worker's node owns the count of a relayed worker).
func (n *Node) untrackLocal(workerID string, tokenID int64, release bool) {
	n.mu.Lock()
	delete(n.local, workerID)
	if release {
		n.releases[workerID] = tokenID
	}
	n.mu.Unlock()
	if release {
		n.releaseNow()
	}
}

// reassertLive re-publishes this node's live workers (after an outage
// long enough for other nodes to have dropped them as a dead node's).
func (n *Node) reassertLive(ctx context.Context) error {
	n.mu.Lock()
	byToken := map[int64][]any{}
	for w, id := range n.local {
		byToken[id] = append(byToken[id], w, n.opts.ID)
	}
	n.mu.Unlock()
	if len(byToken) == 0 {
		return nil
	}
	pipe := n.c.rdb.Pipeline()
	for id, fv := range byToken {
		pipe.HSet(ctx, keyLive(id), fv...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return unreachable("re-publish live workers", err)
	}
	return nil
}

// LookupToken implements domain.Store: the token is looked up in Redis (see
// Tokens.LookupToken); while Redis is unreachable it fails with a 301
// "cluster store unreachable".
func (n *Node) LookupToken(ctx context.Context, secret string) (domain.Token, error) {
	return n.tokens.LookupToken(ctx, secret)
}
