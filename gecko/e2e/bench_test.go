package e2e_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/geckohost/geckohost/gecko"
	"github.com/geckohost/geckohost/host/client"
	"github.com/geckohost/geckohost/internal/netns"
	"github.com/geckohost/geckohost/internal/proc"
)

var (
	benchOnce  sync.Once
	benchStack *stack
	benchErr   error
)

// defaultStack is a stack with the default pool options, for benchmarks.
// It is closed by TestMain via shared cleanup below.
func defaultStack(b *testing.B) *stack {
	b.Helper()
	netns.Skip(b)
	benchOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		benchStack, benchErr = newStack(ctx, firefox, gecko.PoolOptions{})
		if benchErr == nil {
			extraClose = append(extraClose, benchStack)
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchStack
}

// waitWarm waits until the pool holds want warm slots for the token (when
// it has a user context) and want generic ones: a quiet, fully warm pool
// (no refill running, which would delay the negotiation).
func waitWarm(ctx context.Context, b *testing.B, s *stack, want int) {
	b.Helper()
	for {
		bs := s.pool.Browsers()
		if len(bs) > 0 && (bs[0].TokenWarm >= want || bs[0].Tokens == 0) && bs[0].Warm >= want {
			return
		}
		select {
		case <-ctx.Done():
			b.Fatalf("no warm slot: %+v", bs)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// runDials dials b.N sessions one after the other, each on a quiet, fully
// warm pool (the wait is not timed), and reports percentiles of
// pick(Timings). BenchmarkHelloToOpenUnpaced covers the loaded case.
func runDials(b *testing.B, pick func(client.Timings) time.Duration, name string) {
	s := defaultStack(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var ds []time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		waitWarm(ctx, b, s, 4) // the default Warm
		if d, err := time.ParseDuration(os.Getenv("E2E_SETTLE")); err == nil {
			time.Sleep(d) // exploring: what runs after the last refill
		}
		b.StartTimer()
		sess, err := client.Dial(ctx, s.wsURL, client.Options{Token: s.tokenA, Source: s.src.URL + "/echo.js", Loopback: true, GatherFirst: os.Getenv("E2E_GATHER_FIRST") != ""})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		ds = append(ds, pick(sess.Timings))
		_ = sess.Close()
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(ds)
	q := func(f float64) float64 { return float64(ds[int(f*float64(len(ds)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), name+"-p50-ms")
	b.ReportMetric(q(0.9), name+"-p90-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkHelloToAnswer measures hello → worker-hello with a warm slot.
func BenchmarkHelloToAnswer(b *testing.B) {
	runDials(b, func(t client.Timings) time.Duration { return t.Answer }, "answer")
}

// BenchmarkHelloToOpen measures hello → the client's data channel open.
func BenchmarkHelloToOpen(b *testing.B) {
	runDials(b, func(t client.Timings) time.Duration { return t.Open }, "open")
}

// BenchmarkHelloToOpenUnpaced dials back to back without waiting for warm
// slots: the pool's sustained rate (cold tabs once the warm ones are used).
func BenchmarkHelloToOpenUnpaced(b *testing.B) {
	s := defaultStack(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	waitWarm(ctx, b, s, 1)
	b.ResetTimer()
	for range b.N {
		sess, err := client.Dial(ctx, s.wsURL, client.Options{Token: s.tokenA, Source: s.src.URL + "/echo.js", Loopback: true})
		if err != nil {
			b.Fatal(err)
		}
		_ = sess.Close()
	}
}

// BenchmarkWarmStart measures Pool.Start + the first hello → open on a
// fresh stack (run it with -benchtime=1x or 3x: each op starts Firefox).
func BenchmarkWarmStart(b *testing.B) {
	netns.Skip(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var starts, firsts []time.Duration
	for range b.N {
		b.StopTimer()
		t0 := time.Now()
		s, err := newStack(ctx, firefox, gecko.PoolOptions{})
		if err != nil {
			b.Fatal(err)
		}
		starts = append(starts, time.Since(t0))
		b.StartTimer()
		t1 := time.Now()
		sess, err := client.Dial(ctx, s.wsURL, client.Options{Token: s.tokenA, Source: s.src.URL + "/echo.js", Loopback: true})
		if err != nil {
			b.Fatal(err)
		}
		firsts = append(firsts, time.Since(t1))
		b.StopTimer()
		_ = sess.Close()
		if err := s.close(ctx); err != nil {
			b.Fatal(err)
		}
	}
	slices.Sort(starts)
	slices.Sort(firsts)
	b.ReportMetric(float64(starts[len(starts)/2].Milliseconds()), "start-ms")
	b.ReportMetric(float64(firsts[len(firsts)/2].Milliseconds()), "first-open-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkMemory100Workers opens 100 live echo workers and reports the
// PSS of the whole Firefox process tree (PSS-MiB: in the last round,
// max-PSS-MiB: the most of any round; USS-MiB: the tree's private memory,
// which other Firefoxes on the machine do not lower), then closes them; each of the b.N
// rounds does it again in the same browser, so -benchtime 30x shows what
// worker churn does. It runs only when -bench names it. E2E_PSS_DETAIL=1
// prints each process's PSS; E2E_MEMDUMP=1 has Firefox write its
// about:memory reports (after a memory minimisation, which changes what
// later rounds measure: use it to look, not to measure) in the first and
// the last round.
func BenchmarkMemory100Workers(b *testing.B) {
	if f := flag.Lookup("test.bench"); f == nil || !strings.Contains(f.Value.String(), "Memory") {
		b.Skip("run with -bench Memory100Workers")
	}
	memoryRounds(b, defaultStack(b), 100)
}

// BenchmarkMemory250Workers2Browsers is BenchmarkMemory100Workers with 250
// live workers spread over two browsers (their trees summed). It runs only
// when -bench names it.
func BenchmarkMemory250Workers2Browsers(b *testing.B) {
	if f := flag.Lookup("test.bench"); f == nil || !strings.Contains(f.Value.String(), "Memory") {
		b.Skip("run with -bench Memory250Workers2Browsers")
	}
	netns.Skip(b)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := newStack(ctx, firefox, gecko.PoolOptions{Browsers: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.close(cctx); err != nil {
			b.Error(err)
		}
	}()
	// Both browsers up (each with its generic page) before the first hello.
	for {
		bs := s.pool.Browsers()
		if len(bs) == 2 && bs[0].Warm > 0 && bs[1].Warm > 0 {
			break
		}
		select {
		case <-ctx.Done():
			b.Fatalf("browsers not ready: %+v", bs)
		case <-time.After(50 * time.Millisecond):
		}
	}
	memoryRounds(b, s, 250)
}

// memoryRounds runs the memory benchmarks' b.N rounds of n live workers on s.
func memoryRounds(b *testing.B, s *stack, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var maxPSS float64
	for round := range b.N {
		var sessions []*client.Session
		var mu sync.Mutex
		sem := make(chan struct{}, 8)
		var wg sync.WaitGroup
		var firstErr error
		for range n {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				sess, err := client.Dial(ctx, s.wsURL, client.Options{Token: s.tokenA, Source: s.src.URL + "/echo.js", Loopback: true})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
					return
				}
				sessions = append(sessions, sess)
			}()
		}
		wg.Wait()
		if firstErr != nil {
			b.Fatal(firstErr)
		}
		time.Sleep(2 * time.Second) // settle before sampling memory (measurement, not synchronisation)
		var pss, uss float64
		for _, br := range s.pool.Browsers() {
			pss += groupPSS(br.PID)
			uss += groupUSS(br.PID)
		}
		maxPSS = max(maxPSS, pss)
		b.ReportMetric(pss/1024, "PSS-MiB")
		b.ReportMetric(uss/1024, "USS-MiB")
		b.ReportMetric(maxPSS/1024, "max-PSS-MiB")
		b.Logf("round %d: %.0f MiB PSS, %.0f MiB USS", round, pss/1024, uss/1024)
		if os.Getenv("E2E_MEMDUMP") != "" && (round == 0 || round == b.N-1) {
			memoryReport(ctx, b, s)
		}
		b.ReportMetric(float64(len(sessions)), "workers")
		for _, se := range sessions {
			_ = se.Close()
		}
	}
}

// sigMinimizeAndReport is SIGRTMIN+1 with glibc (whose SIGRTMIN is 34).
const sigMinimizeAndReport = syscall.Signal(35)

// memoryReport has the browsers minimise their memory and write their
// about:memory reports (Firefox does both on SIGRTMIN+1) to the temporary
// directory, and waits for the files.
func memoryReport(ctx context.Context, b *testing.B, s *stack) {
	for _, br := range s.pool.Browsers() {
		pattern := filepath.Join(os.TempDir(), fmt.Sprintf("unified-memory-report-*-%d.json.gz", br.PID))
		before, _ := filepath.Glob(pattern)
		if err := syscall.Kill(br.PID, sigMinimizeAndReport); err != nil {
			b.Fatal(err)
		}
		for {
			now, _ := filepath.Glob(pattern)
			if len(now) > len(before) {
				b.Logf("memory report: %s", now[len(now)-1])
				break
			}
			select {
			case <-ctx.Done():
				b.Fatalf("no memory report %s", pattern)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

// groupPSS sums Pss (KiB) over the processes of a process group. PSS
// charges a page shared by several processes to each a share: the other
// Firefoxes running on the machine (other tests, other users) lower it.
// groupUSS is the part that does not depend on them.
func groupPSS(pgid int) float64 { return groupMem(pgid, "Pss") }

// groupUSS sums the private pages (KiB: Private_Clean + Private_Dirty) of
// the processes of a process group: memory that only they use.
func groupUSS(pgid int) float64 {
	return groupMem(pgid, "Private_Clean") + groupMem(pgid, "Private_Dirty")
}

// groupMem sums one smaps_rollup field (KiB) over the processes of a
// process group; E2E_PSS_DETAIL=1 prints each process's value.
func groupMem(pgid int, field string) float64 {
	var total float64
	for _, pid := range proc.GroupMembers(pgid) {
		f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			name, val, ok := strings.Cut(sc.Text(), ":")
			if !ok || name != field {
				continue
			}
			var kb float64
			if _, err := fmt.Sscanf(strings.TrimSpace(val), "%f kB", &kb); err == nil {
				total += kb
				if os.Getenv("E2E_PSS_DETAIL") != "" {
					fmt.Fprintf(os.Stderr, "%s %d: %.0f MiB %s\n", field, pid, kb/1024, processKind(pid))
				}
			}
			break
		}
		f.Close()
	}
	return total
}

// processKind names a Firefox process from its command line: "parent", or
// the kind of child ("tab", "socket", "rdd", "utility", "forkserver").
func processKind(pid int) string {
	cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	// Firefox rewrites its children's argv in place, NULs as blanks.
	args := strings.Fields(strings.ReplaceAll(string(cmd), "\x00", " "))
	if !slices.Contains(args, "-contentproc") {
		if len(args) > 0 && strings.Contains(args[0], "forkserver") {
			return "forkserver"
		}
		return "parent"
	}
	return args[len(args)-1]
}
