package bidi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/geckohost/geckohost/gecko/bidi"
	"github.com/geckohost/geckohost/internal/proc"
)

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// tab opens a tab in a new user context of the shared Firefox and removes
// both when the test ends.
func tab(t *testing.T, c *bidi.Conn) string {
	t.Helper()
	ctx := testContext(t)
	uc, err := c.CreateUserContext(ctx)
	if err != nil {
		t.Fatalf("CreateUserContext: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.RemoveUserContext(ctx, uc); err != nil {
			t.Errorf("RemoveUserContext: %v", err)
		}
	})
	id, err := c.CreateTab(ctx, uc)
	if err != nil {
		t.Fatalf("CreateTab: %v", err)
	}
	return id
}

func pageServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><title>bidi test</title><p id=p>hello</p>`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestNavigateAndCallFunction(t *testing.T) {
	c := sharedFirefox(t)
	ctx := testContext(t)
	id := tab(t, c)
	srv := pageServer(t)
	if err := c.Navigate(ctx, id, srv.URL+"/page"); err != nil {
		t.Fatalf("Navigate: %v", err)
	}
	raw, err := c.CallFunction(ctx, bidi.CallFunctionParams{
		FunctionDeclaration: "(a) => document.title + ' ' + document.getElementById('p').textContent + ' ' + a",
		Context:             id,
		Args:                []any{bidi.StringArg("world")},
	})
	if err != nil {
		t.Fatalf("CallFunction: %v", err)
	}
	s, err := bidi.StringValue(raw)
	if err != nil || s != "bidi test hello world" {
		t.Fatalf("result = %q, %v", s, err)
	}

	raw, err = c.CallFunction(ctx, bidi.CallFunctionParams{
		FunctionDeclaration: "async () => { await new Promise(r => setTimeout(r, 10)); return {n: 1.5, ok: true, list: [null, 'x'], big: 12n} }",
		Context:             id,
		AwaitPromise:        true,
	})
	if err != nil {
		t.Fatalf("CallFunction await: %v", err)
	}
	v, err := bidi.Value(raw)
	if err != nil {
		t.Fatalf("Value(%s): %v", raw, err)
	}
	want := map[string]any{"n": 1.5, "ok": true, "list": []any{nil, "x"}, "big": "12"}
	if fmt.Sprint(v) != fmt.Sprint(want) {
		t.Fatalf("Value = %v, want %v", v, want)
	}
}

func TestScriptException(t *testing.T) {
	c := sharedFirefox(t)
	ctx := testContext(t)
	id := tab(t, c)
	for _, tc := range []struct {
		fn    string
		await bool
	}{
		{"() => { throw new TypeError('boom') }", false},
		{"async () => { throw new TypeError('boom') }", true},
	} {
		_, err := c.CallFunction(ctx, bidi.CallFunctionParams{FunctionDeclaration: tc.fn, Context: id, AwaitPromise: tc.await})
		var se *bidi.ScriptError
		if !errors.As(err, &se) {
			t.Fatalf("%s: err = %v, want *ScriptError", tc.fn, err)
		}
		if se.Text != "TypeError: boom" || len(se.Exception) == 0 {
			t.Errorf("%s: ScriptError = %+v", tc.fn, se)
		}
	}
}

func TestUnknownCommand(t *testing.T) {
	c := sharedFirefox(t)
	err := c.Call(testContext(t), "geckohost.nothing", map[string]any{}, nil)
	var be *bidi.Error
	if !errors.As(err, &be) || be.Code != "unknown command" || be.Method != "geckohost.nothing" {
		t.Fatalf("err = %#v, want *Error unknown command", err)
	}
	// An invalid argument is reported too, and the connection goes on.
	err = c.Call(testContext(t), "browsingContext.close", map[string]any{"context": "no-such"}, nil)
	if !errors.As(err, &be) || be.Code != "no such frame" {
		t.Fatalf("close unknown context: err = %v, want no such frame", err)
	}
}

func TestChannelMessageEvent(t *testing.T) {
	c := sharedFirefox(t)
	ctx := testContext(t)
	id := tab(t, c)
	if err := c.Navigate(ctx, id, pageServer(t).URL); err != nil {
		t.Fatalf("Navigate: %v", err)
	}
	msgs := make(chan bidi.ScriptMessage, 16)
	c.OnEvent(func(e bidi.Event) {
		if e.Method != "script.message" {
			return
		}
		m, err := bidi.ParseScriptMessage(e.Params)
		if err != nil {
			t.Errorf("ParseScriptMessage: %v", err)
			return
		}
		select {
		case msgs <- m:
		default:
			t.Errorf("message channel full")
		}
	})
	t.Cleanup(func() { c.OnEvent(nil) })
	if err := c.Subscribe(ctx, []string{"script.message"}, []string{id}); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	_, err := c.CallFunction(ctx, bidi.CallFunctionParams{
		FunctionDeclaration: "(send) => { for (let i = 0; i < 3; i++) send('m' + i); }",
		Context:             id,
		Args:                []any{bidi.ChannelArg("test-chan")},
	})
	if err != nil {
		t.Fatalf("CallFunction: %v", err)
	}
	for i := range 3 {
		select {
		case m := <-msgs:
			s, err := bidi.StringValue(m.Data)
			if m.Channel != "test-chan" || err != nil || s != fmt.Sprintf("m%d", i) || m.Source.Context != id {
				t.Fatalf("message %d = %+v (%q, %v)", i, m, s, err)
			}
		case <-ctx.Done():
			t.Fatalf("message %d: %v", i, ctx.Err())
		}
	}
}

func TestPreloadScriptChannel(t *testing.T) {
	c := sharedFirefox(t)
	ctx := testContext(t)
	id := tab(t, c)
	got := make(chan string, 16)
	c.OnEvent(func(e bidi.Event) {
		if m, err := bidi.ParseScriptMessage(e.Params); err == nil && m.Channel == "preload" {
			s, _ := bidi.StringValue(m.Data)
			select {
			case got <- s:
			default: // never block the read loop
			}
		}
	})
	t.Cleanup(func() { c.OnEvent(nil) })
	if err := c.Subscribe(ctx, []string{"script.message"}, nil); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	ps, err := c.AddPreloadScript(ctx, "(send) => { send(location.pathname) }", []any{bidi.ChannelArg("preload")}, nil)
	if err != nil {
		t.Fatalf("AddPreloadScript: %v", err)
	}
	defer func() {
		if err := c.RemovePreloadScript(context.WithoutCancel(ctx), ps); err != nil {
			t.Errorf("RemovePreloadScript: %v", err)
		}
	}()
	if err := c.Navigate(ctx, id, pageServer(t).URL+"/preloaded"); err != nil {
		t.Fatalf("Navigate: %v", err)
	}
	// The preload script also runs in the transient initial document of
	// the navigation; wait for the page's own realm.
	for s := ""; s != "/preloaded"; {
		select {
		case s = <-got:
		case <-ctx.Done():
			t.Fatal("no preload message from /preloaded")
		}
	}
}

func TestCallContextCancel(t *testing.T) {
	c := sharedFirefox(t)
	ctx := testContext(t)
	id := tab(t, c)
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := c.CallFunction(cctx, bidi.CallFunctionParams{
			FunctionDeclaration: "() => new Promise(() => {})", Context: id, AwaitPromise: true,
		})
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	// The connection is still usable, and concurrent calls are fine.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			raw, err := c.CallFunction(ctx, bidi.CallFunctionParams{
				FunctionDeclaration: "(n) => n", Context: id, Args: []any{bidi.StringArg(fmt.Sprint(i))},
			})
			if s, serr := bidi.StringValue(raw); err != nil || serr != nil || s != fmt.Sprint(i) {
				t.Errorf("call %d: %q %v %v", i, s, err, serr)
			}
		})
	}
	wg.Wait()
}

// TestConnectionLoss uses a fake remote end that accepts one command and
// then drops the socket: the pending call fails with ErrClosed, Done is
// closed, Err says why, and later calls fail at once.
func TestConnectionLoss(t *testing.T) {
	ctx := testContext(t)
	got := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		_, data, err := ws.Read(r.Context())
		if err == nil {
			var cmd struct{ ID int }
			_ = json.Unmarshal(data, &cmd)
			_ = ws.Write(r.Context(), websocket.MessageText,
				fmt.Appendf(nil, `{"type":"event","method":"x.y","params":{"id":%d}}`, cmd.ID))
		}
		<-got
		_ = ws.CloseNow()
	}))
	defer srv.Close()
	c, err := bidi.Dial(ctx, "ws"+srv.URL[len("http"):], bidi.Options{})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	c.OnEvent(func(e bidi.Event) {
		if e.Method == "x.y" {
			close(got)
		}
	})
	err = c.Call(ctx, "a.b", nil, nil)
	if !errors.Is(err, bidi.ErrClosed) {
		t.Fatalf("pending call: err = %v, want ErrClosed", err)
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("Done not closed")
	}
	if !errors.Is(c.Err(), bidi.ErrClosed) {
		t.Fatalf("Err = %v", c.Err())
	}
	if err := c.Call(ctx, "a.b", nil, nil); !errors.Is(err, bidi.ErrClosed) {
		t.Fatalf("call after loss: err = %v, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// BenchmarkCallFunction measures one script.callFunction round trip to a
// loaded page of the shared Firefox.
func BenchmarkCallFunction(b *testing.B) {
	shared.once.Do(startShared)
	if shared.err != nil {
		b.Fatalf("start shared firefox: %v", shared.err)
	}
	c := shared.conn
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	id, err := c.CreateTab(ctx, "")
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseContext(context.WithoutCancel(ctx), id)
	cpu := firefoxCPU()
	for b.Loop() {
		if _, err := c.CallFunction(ctx, bidi.CallFunctionParams{
			FunctionDeclaration: "(s) => s.length", Context: id, Args: []any{bidi.StringArg("x")},
		}); err != nil {
			b.Fatal(err)
		}
	}
	reportFirefoxCPU(b, cpu)
}

// BenchmarkCall measures a command answered by Firefox's parent process
// alone (browser.getUserContexts): the client's and the protocol's own
// round-trip cost, without a content process.
func BenchmarkCall(b *testing.B) {
	shared.once.Do(startShared)
	if shared.err != nil {
		b.Fatalf("start shared firefox: %v", shared.err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cpu := firefoxCPU()
	for b.Loop() {
		if err := shared.conn.Call(ctx, "browser.getUserContexts", nil, nil); err != nil {
			b.Fatal(err)
		}
	}
	reportFirefoxCPU(b, cpu)
}

// BenchmarkChannelMessage measures one script.message event (a 300-byte
// string sent on a channel by a loaded page), Firefox's CPU per event
// included: what the worker shell pays per event it reports.
func BenchmarkChannelMessage(b *testing.B) {
	shared.once.Do(startShared)
	if shared.err != nil {
		b.Fatalf("start shared firefox: %v", shared.err)
	}
	c := shared.conn
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	id, err := c.CreateTab(ctx, "")
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseContext(context.WithoutCancel(ctx), id)
	got := make(chan struct{}, 1024)
	c.OnEvent(func(e bidi.Event) {
		if e.Method == "script.message" {
			got <- struct{}{}
		}
	})
	defer c.OnEvent(nil)
	if err := c.Subscribe(ctx, []string{"script.message"}, []string{id}); err != nil {
		b.Fatal(err)
	}
	cpu := firefoxCPU()
	b.ResetTimer()
	for sent := 0; sent < b.N; {
		n := min(b.N-sent, 512)
		if _, err := c.CallFunction(ctx, bidi.CallFunctionParams{
			FunctionDeclaration: "(send, n) => { const s = 'x'.repeat(300); for (let i = 0; i < n; i++) send(s); }",
			Context:             id,
			Args:                []any{bidi.ChannelArg("bench"), map[string]any{"type": "number", "value": n}},
		}); err != nil {
			b.Fatal(err)
		}
		for range n {
			select {
			case <-got:
			case <-ctx.Done():
				b.Fatal(ctx.Err())
			}
		}
		sent += n
	}
	b.StopTimer()
	reportFirefoxCPU(b, cpu)
}

// firefoxCPU is the CPU time each process of the shared Firefox has used.
func firefoxCPU() map[int]time.Duration {
	m := map[int]time.Duration{}
	for _, pid := range proc.GroupMembers(shared.cmd.Process.Pid) {
		m[pid] = proc.CPU(pid)
	}
	return m
}

// reportFirefoxCPU reports the shared Firefox's CPU time per op since
// firefoxCPU returned since (ff-cpu-µs/op: the browser's processes that ran
// throughout; /proc counts in 10 ms ticks, so run enough ops).
func reportFirefoxCPU(b *testing.B, since map[int]time.Duration) {
	var d time.Duration
	for pid, t := range firefoxCPU() {
		if t0, ok := since[pid]; ok {
			d += t - t0
		}
	}
	b.ReportMetric(float64(d.Microseconds())/float64(b.N), "ff-cpu-µs/op")
}
