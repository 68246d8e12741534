package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Node states, as published in the registry.
const (
	// StateReady: the node takes workers.
	StateReady = "ready"
	// StateNotReady: the node's own browsers are not up (starting, or
	// restarting); it relays its clients' hellos to other nodes.
	StateNotReady = "not-ready"
	// StateDraining: the node is stopping; no worker is routed to it and
	// its clients' hellos are relayed to other nodes.
	StateDraining = "draining"
)

// Registry timings.
const (
	// DefaultHeartbeat is how often a node publishes its NodeInfo.
	DefaultHeartbeat = time.Second
	// DefaultStale is how long a node may go without a heartbeat before
	// it is out: no worker is routed to it, its workers count no more,
	// and its negotiating clients get a 303.
	DefaultStale = 3 * time.Second
)

// NodeInfo is what a node publishes about itself with each heartbeat.
type NodeInfo struct {
	// ID is the node id (serve --node-id).
	ID string `json:"id"`
	// State is StateReady, StateNotReady or StateDraining.
	State string `json:"state"`
	// Addr is the address serve listens on (for operators; nodes never
	// connect to each other).
	Addr string `json:"addr,omitempty"`
	// Version is the geckohost version.
	Version string `json:"version,omitempty"`
	// Engine is the engine its workers run in ("firefox", "chromium").
	Engine string `json:"engine,omitempty"`
	// Browsers is the number of running browsers; Workers the live
	// workers (its own clients' and relayed ones); Capacity the most
	// workers it can run (browsers × --max-workers-per-browser).
	Browsers int `json:"browsers"`
	Workers  int `json:"workers"`
	Capacity int `json:"capacity"`
	// Relayed is how many of Workers run for other nodes' clients.
	Relayed int `json:"relayed"`
	// Negotiating is how many sessions the node takes part in (as the
	// client's node or the worker's) that are not connected yet.
	Negotiating int `json:"negotiating"`
	// Started is when the node started; Instance tells two processes
	// with the same ID apart.
	Started  time.Time `json:"started"`
	Instance string    `json:"instance"`
	// Seen is the node's last heartbeat, by Redis's clock (set when read).
	Seen time.Time `json:"-"`
	// Age is how long ago that was, by Redis's clock (set when read).
	Age time.Duration `json:"-"`
}

// room reports whether the node can take one more worker.
func (ni NodeInfo) room() bool { return ni.State == StateReady && ni.Workers < ni.Capacity }

// load is the node's share of its capacity in use (1 when it has none).
func (ni NodeInfo) load() float64 {
	if ni.Capacity <= 0 {
		return 1
	}
	return float64(ni.Workers) / float64(ni.Capacity)
}

var heartbeatScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], now)
return now
`)

// heartbeat publishes ni.
func (c *Client) heartbeat(ctx context.Context, ni NodeInfo) error {
	b, err := json.Marshal(ni)
	if err != nil {
		return fmt.Errorf("encode node info: %w", err)
	}
	if err := heartbeatScript.Run(ctx, c.rdb, []string{keyNodes, keyNodesSeen}, ni.ID, string(b)).Err(); err != nil {
		return unreachable("heartbeat", err)
	}
	return nil
}

// deregister removes node id from the registry (at its clean exit).
func (c *Client) deregister(ctx context.Context, id string) error {
	pipe := c.rdb.TxPipeline()
	pipe.HDel(ctx, keyNodes, id)
	pipe.HDel(ctx, keyNodesSeen, id)
	if _, err := pipe.Exec(ctx); err != nil {
		return unreachable("deregister", err)
	}
	return nil
}

// readNodesScript returns {now, id, seen, json, ...} for the live nodes and
// removes the ones silent for ARGV[1] ms or more.
var readNodesScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local stale = tonumber(ARGV[1])
local seen = redis.call('HGETALL', KEYS[2])
local infos = redis.call('HGETALL', KEYS[1])
local info = {}
for i = 1, #infos, 2 do info[infos[i]] = infos[i + 1] end
local out = {now}
for i = 1, #seen, 2 do
  local id, s = seen[i], tonumber(seen[i + 1])
  if now - s >= stale then
    redis.call('HDEL', KEYS[2], id)
    redis.call('HDEL', KEYS[1], id)
  elseif info[id] then
    table.insert(out, id)
    table.insert(out, s)
    table.insert(out, info[id])
  end
end
return out
`)

// Nodes returns the live nodes (a heartbeat within DefaultStale), by id,
// and prunes the others from the registry.
func (c *Client) Nodes(ctx context.Context) ([]NodeInfo, error) {
	nodes, _, err := c.readNodes(ctx, DefaultStale)
	return nodes, err
}

// readNodes returns the nodes heard from within stale, by id, and Redis's
// clock.
func (c *Client) readNodes(ctx context.Context, stale time.Duration) ([]NodeInfo, time.Time, error) {
	v, err := readNodesScript.Run(ctx, c.rdb, []string{keyNodes, keyNodesSeen}, stale.Milliseconds()).Slice()
	if err != nil {
		return nil, time.Time{}, unreachable("read nodes", err)
	}
	if len(v) == 0 {
		return nil, time.Time{}, fmt.Errorf("read nodes: empty reply")
	}
	nowMS, _ := v[0].(int64)
	now := time.UnixMilli(nowMS)
	var out []NodeInfo
	for i := 1; i+2 < len(v); i += 3 {
		id, _ := v[i].(string)
		seenMS, _ := v[i+1].(int64)
		js, _ := v[i+2].(string)
		var ni NodeInfo
		if err := json.Unmarshal([]byte(js), &ni); err != nil {
			continue // a newer or broken entry: not routable
		}
		ni.ID = id
		ni.Seen = time.UnixMilli(seenMS)
		ni.Age = now.Sub(ni.Seen)
		out = append(out, ni)
	}
	slices.SortFunc(out, func(a, b NodeInfo) int { return strings.Compare(a.ID, b.ID) })
	return out, now, nil
}
