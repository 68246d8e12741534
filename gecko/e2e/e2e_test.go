package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/gecko"
	"github.com/geckohost/geckohost/host/client"
	"github.com/geckohost/geckohost/internal/leaktest"
	"github.com/geckohost/geckohost/internal/proc"
)

// sessionLeaks are the options of the per-test leak check: it looks only
// at per-session goroutines (host's session goroutines, gecko's worker
// goroutines, the Go client's and pion's), waiting up to 10 s since closing
// peer connections ends goroutines asynchronously. The shared pool's own
// long-lived goroutines (supervisor, refillers, Firefox's pipes, HTTP
// keep-alives) come and go with the browser's life, not with a test;
// TestMain checks that every goroutine is gone once the pools are closed.
var sessionLeaks = []leaktest.Option{
	leaktest.Only(
		"geckohost/host.(*session)",
		"geckohost/gecko.(*worker)",
		"geckohost/gecko/chromium.(*worker)",
		"geckohost/host/client.",
		"github.com/pion/",
	),
	leaktest.Timeout(10 * time.Second),
}

func dial(ctx context.Context, t testing.TB, s *stack, token, path string, opt ...func(*client.Options)) (*client.Session, error) {
	t.Helper()
	o := client.Options{Token: token, Source: s.src.URL + path, Loopback: true}
	for _, f := range opt {
		f(&o)
	}
	return client.Dial(ctx, s.wsURL, o)
}

// exchange sends msgs on the session's channel and returns what comes back.
func exchange(ctx context.Context, t testing.TB, sess *client.Session, msgs ...any) []webrtc.DataChannelMessage {
	t.Helper()
	got := make(chan webrtc.DataChannelMessage, len(msgs)+1)
	sess.Channel.OnMessage(func(m webrtc.DataChannelMessage) { got <- m })
	for _, m := range msgs {
		var err error
		switch v := m.(type) {
		case string:
			err = sess.Channel.SendText(v)
		case []byte:
			err = sess.Channel.Send(v)
		}
		if err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	var out []webrtc.DataChannelMessage
	for range msgs {
		select {
		case m := <-got:
			out = append(out, m)
		case <-ctx.Done():
			t.Fatalf("waiting for replies: %v (got %d of %d)", ctx.Err(), len(out), len(msgs))
		}
	}
	return out
}

func closeSession(t testing.TB, sess *client.Session) {
	t.Helper()
	if err := sess.Close(); err != nil {
		t.Errorf("close session: %v", err)
	}
}

func TestEchoTextAndBinary(t *testing.T) {
	forShared(t, func(t *testing.T, s *stack) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sess, err := dial(ctx, t, s, s.tokenA, "/echo.js")
		if err != nil {
			t.Fatal(err)
		}
		defer closeSession(t, sess)
		t.Logf("worker %s: answer %v, connected %v, open %v", sess.WorkerID, sess.Timings.Answer, sess.Timings.Connected, sess.Timings.Open)
		bin := []byte{0, 1, 2, 255, 254}
		big := bytes.Repeat([]byte("x"), 60000)
		out := exchange(ctx, t, sess, "hello", bin, "second", big)
		if !out[0].IsString || string(out[0].Data) != "hello" {
			t.Errorf("reply 0 = %+v", out[0])
		}
		if out[1].IsString || !bytes.Equal(out[1].Data, bin) {
			t.Errorf("reply 1 = %+v, want binary %v", out[1], bin)
		}
		if !out[2].IsString || string(out[2].Data) != "second" {
			t.Errorf("reply 2 = %+v", out[2])
		}
		if out[3].IsString || !bytes.Equal(out[3].Data, big) {
			t.Errorf("reply 3: %d bytes, string %v", len(out[3].Data), out[3].IsString)
		}
	})
}

func TestWorkerErrors(t *testing.T) {
	forShared(t, func(t *testing.T, s *stack) {
		// The reasons are the browser's own messages (per engine; Firefox's
		// where an engine has none of its own).
		cases := []struct {
			path   string
			errno  engine.Errno
			reason map[engineKind]string
		}{
			{"/missing.js", engine.UnableToFetchWorkerCode, map[engineKind]string{firefox: "404"}},
			// Positions are those of the user's file (1-based); a parse error at
			// the end of input is at the end of the source.
			{"/syntax.js", engine.SyntaxErrorInWorkerCode, map[engineKind]string{
				firefox:  "SyntaxError: missing } after function body (line 2, column 1)",
				chromium: "SyntaxError: Unexpected end of input (line 2, column 1)",
			}},
			{"/throw.js", engine.UncaughtExceptionInWorkerCode, map[engineKind]string{firefox: "Error: boom (line 2, column 7)"}},
			{"/syntax1.js", engine.SyntaxErrorInWorkerCode, map[engineKind]string{
				firefox:  "SyntaxError: unexpected token: ')' (line 1, column 52)",
				chromium: "SyntaxError: Unexpected token ')' (line 1, column 52)",
			}},
			{"/json.js", engine.UncaughtExceptionInWorkerCode, map[engineKind]string{firefox: "(line 2, column 8)"}},
		}
		for _, c := range cases {
			t.Run(strings.TrimPrefix(c.path, "/"), func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				sess, err := dial(ctx, t, s, s.tokenA, c.path)
				if err == nil {
					closeSession(t, sess)
					t.Fatal("dial succeeded")
				}
				var we *engine.Error
				if !errors.As(err, &we) {
					t.Fatalf("err = %v, want *engine.Error", err)
				}
				if reason := perEngine(s.kind, c.reason); we.Errno != c.errno || !strings.Contains(we.Reason, reason) {
					t.Fatalf("got %d %q, want %d containing %q", we.Errno, we.Reason, c.errno, reason)
				}
				t.Logf("%d: %s", we.Errno, we.Reason)
			})
		}
	})
}

func TestICEBeforeAndAfterAnswer(t *testing.T) {
	forShared(t, func(t *testing.T, s *stack) {
		for _, after := range []bool{false, true} {
			t.Run(fmt.Sprintf("after=%v", after), func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				sess, err := dial(ctx, t, s, s.tokenA, "/echo.js", func(o *client.Options) { o.CandidatesAfterAnswer = after })
				if err != nil {
					t.Fatal(err)
				}
				defer closeSession(t, sess)
				if out := exchange(ctx, t, sess, "ping"); string(out[0].Data) != "ping" {
					t.Fatalf("echo = %q", out[0].Data)
				}
			})
		}
	})
}

func TestWorkerClose(t *testing.T) {
	forShared(t, func(t *testing.T, s *stack) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sess, err := dial(ctx, t, s, s.tokenA, "/close.js")
		if err != nil {
			t.Fatal(err)
		}
		defer closeSession(t, sess)
		closed := make(chan struct{})
		sess.Channel.OnClose(func() { close(closed) })
		if out := exchange(ctx, t, sess, "bye"); string(out[0].Data) != "bye" {
			t.Fatalf("echo = %q", out[0].Data)
		}
		select {
		case <-closed:
		case <-ctx.Done():
			t.Fatal("data channel not closed after the worker's self.close()")
		}
		waitSession(ctx, t, s, sess.WorkerID, "worker-closed")
	})
}

// waitSession polls the session record until it ended with reason.
func waitSession(ctx context.Context, t testing.TB, s *stack, id, reason string) {
	t.Helper()
	for {
		rec, err := s.db.GetSession(ctx, id)
		if err == nil && rec.State == "ended" {
			if rec.EndReason != reason {
				t.Errorf("session ended with %q, want %q", rec.EndReason, reason)
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("session %s not ended (%+v, %v)", id, rec, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestConcurrentSessions(t *testing.T) {
	forShared(t, func(t *testing.T, s *stack) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		const n = 20
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tok := s.tokenA
				if i%2 == 1 {
					tok = s.tokenB
				}
				sess, err := client.Dial(ctx, s.wsURL, client.Options{Token: tok, Source: s.src.URL + "/echo.js", Loopback: true})
				if err != nil {
					errs <- fmt.Errorf("session %d: %w", i, err)
					return
				}
				defer sess.Close()
				got := make(chan string, 1)
				sess.Channel.OnMessage(func(m webrtc.DataChannelMessage) { got <- string(m.Data) })
				want := fmt.Sprint("msg ", i)
				if err := sess.Channel.SendText(want); err != nil {
					errs <- err
					return
				}
				select {
				case g := <-got:
					if g != want {
						errs <- fmt.Errorf("session %d: echo %q", i, g)
					}
				case <-ctx.Done():
					errs <- fmt.Errorf("session %d: no echo", i)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

func TestTokensHaveSeparateStorage(t *testing.T) {
	forShared(t, func(t *testing.T, s *stack) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		openIDB(ctx, t, s, s.tokenA, "set:secret-of-a", "ok")
		openIDB(ctx, t, s, s.tokenA, "get", "got:secret-of-a") // a's own storage
		openIDB(ctx, t, s, s.tokenB, "get", "got:")            // not a's
	})
}

// openIDB opens a session of token to the IndexedDB worker, sends op and
// expects want back; the session is closed when the test ends.
func openIDB(ctx context.Context, t *testing.T, s *stack, token, op, want string) *client.Session {
	t.Helper()
	sess, err := dial(ctx, t, s, token, "/idb.js")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeSession(t, sess) })
	ask(ctx, t, sess, op, want)
	return sess
}

// ask sends msg on the session and expects want back.
func ask(ctx context.Context, t *testing.T, sess *client.Session, msg, want string) {
	t.Helper()
	if out := exchange(ctx, t, sess, msg); string(out[0].Data) != want {
		t.Fatalf("%q: got %q, want %q", msg, out[0].Data, want)
	}
}

// TestKillFirefox uses a stack of its own: it kills the browser with
// SIGKILL while a worker negotiates, expects 303 within 2 s, a working
// hello after the restart, and no process or profile left after Close.
func TestKillFirefox(t *testing.T) {
	forEngines(t, func(t *testing.T, e engineKind) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		s, err := newStack(ctx, e, gecko.PoolOptions{Warm: 1})
		if err != nil {
			t.Fatal(err)
		}
		closed := false
		defer func() {
			if !closed {
				_ = s.close(ctx)
			}
		}()
		seen := map[int]string{}
		record := func() {
			for _, b := range s.pool.Browsers() {
				seen[b.PID] = b.Profile
			}
		}
		record()
		if len(seen) != 1 {
			t.Fatalf("browsers: %+v", s.pool.Browsers())
		}
		var pid int
		for p := range seen {
			pid = p
		}

		running := s.onFetch("/started.js")
		type result struct {
			err error
			at  time.Time
		}
		res := make(chan result, 1)
		go func() {
			sess, err := dial(ctx, t, s, s.tokenA, "/slow.js")
			if sess != nil {
				sess.Close()
			}
			res <- result{err, time.Now()}
		}()
		select {
		case <-running:
		case <-ctx.Done():
			t.Fatal("the worker source never started")
		}
		killed := time.Now()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		r := <-res
		var we *engine.Error
		if !errors.As(r.err, &we) || we.Errno != engine.GeckoCrashed {
			t.Fatalf("err = %v, want 303", r.err)
		}
		if d := r.at.Sub(killed); d > 2*time.Second {
			t.Errorf("303 after %v, want ≤ 2 s", d)
		}
		t.Logf("303 %v after the kill: %s", r.at.Sub(killed), we.Reason)

		// The pool restarts the browser; the next hello succeeds.
		for s.pool.Ready() != nil || len(s.pool.Browsers()) == 0 {
			select {
			case <-ctx.Done():
				t.Fatal("browser not restarted")
			case <-time.After(50 * time.Millisecond):
			}
		}
		t.Logf("ready again %v after the kill", time.Since(killed))
		record()
		sess, err := dial(ctx, t, s, s.tokenA, "/echo.js")
		if err != nil {
			t.Fatalf("hello after restart: %v", err)
		}
		if out := exchange(ctx, t, sess, "alive"); string(out[0].Data) != "alive" {
			t.Fatalf("echo = %q", out[0].Data)
		}
		closeSession(t, sess)
		t.Logf("echo after restart %v after the kill", time.Since(killed))

		closed = true
		if err := s.close(ctx); err != nil {
			t.Fatalf("close: %v", err)
		}
		if err := s.pool.Ready(); err == nil {
			t.Error("Ready after Close = nil")
		}
		for p, profile := range seen {
			if left := proc.GroupMembers(p); len(left) > 0 {
				t.Errorf("process group %d still has %v", p, left)
				for _, q := range left {
					b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", q))
					c, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", q))
					t.Logf("%s | %q", b, c)
				}
			}
			if _, err := os.Stat(profile); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("profile %s still exists (%v)", profile, err)
			}
		}
		// engine.ErrClosed after Close (host turns it into 304).
		if _, err := s.pool.StartWorker(ctx, engine.WorkerRequest{WorkerID: "x", TokenID: 1, Source: s.src.URL + "/echo.js"}); !errors.Is(err, engine.ErrClosed) {
			t.Errorf("StartWorker after Close: %v, want engine.ErrClosed", err)
		}
	})
}

func isErrno(err error, n engine.Errno) bool {
	var we *engine.Error
	return errors.As(err, &we) && we.Errno == n
}

// TestWorkerIdle uses a stack of its own with a 1 s WorkerIdle: a worker
// whose channel carries no message is ended ("idle"); messages keep it.
func TestWorkerIdle(t *testing.T) {
	forEngines(t, func(t *testing.T, e engineKind) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		s := ownStack(t, ctx, e, gecko.PoolOptions{Warm: 1, WorkerIdle: time.Second})
		sess, err := dial(ctx, t, s, s.tokenA, "/echo.js")
		if err != nil {
			t.Fatal(err)
		}
		defer closeSession(t, sess)
		closed := make(chan struct{})
		sess.Channel.OnClose(func() { close(closed) })
		opened := time.Now()
		// Keep it busy for 2 s: it must stay up.
		for time.Since(opened) < 2*time.Second {
			if out := exchange(ctx, t, sess, "tick"); string(out[0].Data) != "tick" {
				t.Fatalf("echo = %q", out[0].Data)
			}
			select {
			case <-closed:
				t.Fatal("closed while busy")
			case <-time.After(300 * time.Millisecond):
			}
		}
		quiet := time.Now()
		select {
		case <-closed:
			t.Logf("closed %v after the last message", time.Since(quiet))
		case <-ctx.Done():
			t.Fatal("idle worker not ended")
		}
		waitSession(ctx, t, s, sess.WorkerID, "idle")

		// A worker busy past its idle time posts as it ends: the page asks it
		// to close (idle) and delivers what it posted before closing.
		busy, err := dial(ctx, t, s, s.tokenA, "/burst.js")
		if err != nil {
			t.Fatal(err)
		}
		defer closeSession(t, busy)
		if err := checkBurst(burst(ctx, t, busy, "1600")); err != nil {
			t.Errorf("messages posted right before the idle end: %v", err)
		}
		waitSession(ctx, t, s, busy.WorkerID, "idle")
	})
}

// TestWorkerCannotReachHost: a worker's WebSocket to geckohost's own
// signaling endpoint is refused (its Origin is the shell's, not allowed).
func TestWorkerCannotReachHost(t *testing.T) {
	forShared(t, func(t *testing.T, s *stack) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sess, err := dial(ctx, t, s, s.tokenA, "/ws.js")
		if err != nil {
			t.Fatal(err)
		}
		defer closeSession(t, sess)
		if out := exchange(ctx, t, sess, s.wsURL); string(out[0].Data) != "error" {
			t.Fatalf("worker's WebSocket to %s: %q, want error", s.wsURL, out[0].Data)
		}
	})
}
