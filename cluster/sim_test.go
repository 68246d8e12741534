package cluster_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/geckohost/geckohost/cluster"
	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/host"
	"github.com/geckohost/geckohost/internal/leaktest"
	"github.com/geckohost/geckohost/internal/redistest"
	"github.com/geckohost/geckohost/web"
)

// simEnv runs the full simulation: GECKOHOST_CLUSTER_SIM=1 (50 nodes, 500
// hellos/s, 20 s), or NODES,RATE,DURATION such as 50,500,20s. Without it a
// small run (5 nodes, 50 hellos/s, 1 s) checks that the simulation works.
const simEnv = "GECKOHOST_CLUSTER_SIM"

// TestClusterSimulation simulates a large cluster in one process: nodes
// with a fake engine (workers answer at once, connect on the client's first
// candidate and end after a second), each with its host.Server, one real
// Redis, and clients that open sessions at a fixed rate through random
// nodes with random tokens. It reports hello → answer for sessions served
// by the node that took the hello and for relayed ones (the difference is
// the relay's overhead), the Redis commands and Redis CPU per session, the
// same for an idle node, and the node count at which Redis would saturate
// one core with every node taking 40 sessions a second.
func TestClusterSimulation(t *testing.T) {
	nodes, rate, dur := 5, 50, time.Second
	if v := os.Getenv(simEnv); v != "" {
		nodes, rate, dur = 50, 500, 20*time.Second
		if v != "1" {
			parts := strings.Split(v, ",")
			if len(parts) != 3 {
				t.Fatalf("%s=%q: want 1 or NODES,RATE,DURATION", simEnv, v)
			}
			var err error
			nodes, _ = strconv.Atoi(parts[0])
			rate, _ = strconv.Atoi(parts[1])
			if dur, err = time.ParseDuration(parts[2]); err != nil || nodes < 1 || rate < 1 {
				t.Fatalf("%s=%q: want NODES,RATE,DURATION", simEnv, v)
			}
		}
	} else if testing.Short() {
		t.Skip("short")
	}
	leaktest.Check(t)
	rs := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), dur+3*time.Minute)
	defer cancel()
	admin, err := cluster.Open(ctx, rs.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = admin.Close() }()
	// As many tokens as hellos a second, each worker living about a
	// second: a token has one live worker on average, and about 60% of
	// the hellos go to their token's node elsewhere (relayed).
	tokens := rate
	secrets := make([]string, tokens)
	for i := range secrets {
		_, secrets[i], err = admin.Tokens().AddToken(ctx, domain.NewToken{Name: fmt.Sprintf("t%d", i)})
		if err != nil {
			t.Fatal(err)
		}
	}

	type simNode struct {
		node *cluster.Node
		srv  *host.Server
		hs   *httptest.Server
		c    *cluster.Client
		url  string
		demo string
	}
	var sn []*simNode
	defer func() {
		for _, n := range sn {
			sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
			_ = n.srv.Shutdown(sctx)
			n.hs.Close()
			_ = n.node.Close(sctx)
			_ = n.c.Close()
			scancel()
		}
	}()
	for i := range nodes {
		id := fmt.Sprintf("n%02d", i)
		c, err := cluster.Dial(rs.URL())
		if err != nil {
			t.Fatal(err)
		}
		eng := newFakeEngine(id, 1000)
		eng.mode = func(engine.WorkerRequest) string { return modeShort }
		nd, err := cluster.New(cluster.Options{Client: c, ID: id, Local: eng, Load: eng.Load})
		if err != nil {
			t.Fatal(err)
		}
		if err := nd.Start(ctx); err != nil {
			t.Fatal(err)
		}
		srv, err := host.New(host.Options{Store: nd, Engine: nd.Engine(), Limiter: nd, Web: web.Handler()})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv)
		sn = append(sn, &simNode{node: nd, srv: srv, hs: hs, c: c,
			url: "ws" + strings.TrimPrefix(hs.URL, "http") + "/", demo: hs.URL + "/workers/echo.js"})
	}

	// Idle: the registry's own load.
	idle := 3 * time.Second
	if os.Getenv(simEnv) == "" {
		idle = time.Second
	}
	i0 := redisInfo(t, rs.Addr)
	time.Sleep(idle) // a measured interval, not a wait for something
	i1 := redisInfo(t, rs.Addr)
	idleCmds := float64(i1.commands-i0.commands) / idle.Seconds() / float64(nodes)
	idleCPU := (i1.cpu - i0.cpu) / idle.Seconds() / float64(nodes)

	// Load.
	var (
		mu              sync.Mutex
		local, relayed  []time.Duration
		failed, started atomic.Int64
		wg              sync.WaitGroup
		why             = map[string]int{}
	)
	i2 := redisInfo(t, rs.Addr)
	// Paced by the clock, not a ticker (a busy machine drops ticks): each
	// round starts the sessions due by then.
	begin := time.Now()
	launched := 0
	for {
		elapsed := time.Since(begin)
		if elapsed >= dur {
			break
		}
		due := int(elapsed.Seconds() * float64(rate))
		if launched >= due {
			time.Sleep(time.Second / time.Duration(rate)) // pacing
			continue
		}
		launched++
		started.Add(1)
		front := rand.IntN(nodes)
		secret := secrets[rand.IntN(tokens)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, by, err := simSession(ctx, sn[front].url, sn[front].demo, secret)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed.Add(1)
				msg := err.Error()
				if len(msg) > 90 {
					msg = msg[:90]
				}
				why[msg]++
				return
			}
			if by == fmt.Sprintf("n%02d", front) {
				local = append(local, d)
			} else {
				relayed = append(relayed, d)
			}
		}()
	}
	wg.Wait()
	i3 := redisInfo(t, rs.Addr)
	elapsed := dur.Seconds()
	n := float64(started.Load())
	cmdsPerSession := (float64(i3.commands-i2.commands) - idleCmds*float64(nodes)*elapsed) / n
	cpuPerSession := ((i3.cpu - i2.cpu) - idleCPU*float64(nodes)*elapsed) / n
	const perNode = 40 // sessions a second one 2-core node takes (README)
	saturate := 1 / (perNode*cpuPerSession + idleCPU)

	t.Logf("%d nodes, %d hellos/s for %v: %d sessions, %d failed", nodes, rate, dur, started.Load(), failed.Load())
	t.Logf("hello → answer, served by the node that took the hello (%d): %s", len(local), pcts(local))
	t.Logf("hello → answer, relayed to another node (%d): %s", len(relayed), pcts(relayed))
	t.Logf("relay overhead: p50 %v, p99 %v", pct(relayed, 50)-pct(local, 50), pct(relayed, 99)-pct(local, 99))
	t.Logf("Redis per session: %.1f commands, %.0f µs CPU; per idle node: %.1f commands/s, %.0f µs CPU/s",
		cmdsPerSession, cpuPerSession*1e6, idleCmds, idleCPU*1e6)
	t.Logf("Redis CPU over the run: %.0f%% of one core; saturates one core at about %.0f nodes taking %d sessions/s each",
		100*(i3.cpu-i2.cpu)/elapsed, saturate, perNode)
	if failed.Load() > 0 {
		t.Errorf("%d sessions failed: %v", failed.Load(), why)
	}
}

// modeShort: like modeOK, but the worker ends a second after connected.
const modeShort = "short"

// simSession runs one session; it returns hello → answer and the node
// that answered.
func simSession(ctx context.Context, url, source, secret string) (time.Duration, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = c.CloseNow() }()
	write := func(v any) error {
		b, _ := json.Marshal(v)
		return c.Write(ctx, websocket.MessageText, b)
	}
	read := func() (map[string]any, error) {
		_, b, err := c.Read(ctx)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		return m, json.Unmarshal(b, &m)
	}
	start := time.Now()
	if err := write(map[string]any{"messageType": "hello", "action": "client-hello", "authorization": "Bearer " + secret,
		"source": source, "webrtcOffer": testOffer}); err != nil {
		return 0, "", err
	}
	m, err := read()
	if err != nil {
		return 0, "", err
	}
	if m["action"] != "worker-hello" {
		return 0, "", fmt.Errorf("got %v", m)
	}
	d := time.Since(start)
	ans, _ := m["webrtcAnswer"].(string)
	if err := write(map[string]any{"messageType": "ice", "action": "client-candidate",
		"candidate": map[string]any{"candidate": "candidate:client", "sdpMid": "0", "sdpMLineIndex": 0}}); err != nil {
		return 0, "", err
	}
	for {
		m, err := read()
		if err != nil {
			return 0, "", err
		}
		if m["messageType"] == "connected" {
			break
		}
		if m["messageType"] == "worker-error" {
			return 0, "", fmt.Errorf("%v", m)
		}
	}
	return d, answeredBy(ans), nil
}

type redisStats struct {
	commands int64
	cpu      float64 // seconds, user + sys
}

// redisInfo reads INFO's total_commands_processed and used_cpu_*.
func redisInfo(t *testing.T, addr string) redisStats {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("INFO\r\n")); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	head, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(head, "$") {
		t.Fatalf("INFO: %q %v", head, err)
	}
	size, _ := strconv.Atoi(strings.TrimSpace(head[1:]))
	buf := make([]byte, size)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatal(err)
	}
	var s redisStats
	for _, line := range strings.Split(string(buf), "\r\n") {
		k, v, _ := strings.Cut(line, ":")
		switch k {
		case "total_commands_processed":
			s.commands, _ = strconv.ParseInt(v, 10, 64)
		case "used_cpu_sys", "used_cpu_user":
			f, _ := strconv.ParseFloat(v, 64)
			s.cpu += f
		}
	}
	return s
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)].Round(10 * time.Microsecond)
}

func pcts(ds []time.Duration) string {
	return fmt.Sprintf("p50 %v, p90 %v, p99 %v", pct(ds, 50), pct(ds, 90), pct(ds, 99))
}
