package gecko

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/geckohost/geckohost/gecko/bidi"
	"github.com/geckohost/geckohost/internal/leaktest"
	"github.com/geckohost/geckohost/internal/proc"
	"github.com/geckohost/geckohost/internal/testenv"
)

// Fake browser: the test binary re-executed with fakeEnv set plays a
// Firefox that never gets ready. Modes:
//
//	hang  – starts a child (like a content process) that shares its stderr,
//	        writes "PID CHILDPID" to $GECKOHOST_FAKE_PIDFILE, and waits to be killed
//	exit  – writes a line to stderr and exits with status 3
//	child – waits to be killed
//	parent – launches a real Firefox, writes "PID PROFILE" to the PID file, waits
//	stubborn – a BiDi endpoint that opens sessions but ignores every other
//	        command, in a process that ignores SIGTERM
const (
	fakeEnv     = "GECKOHOST_FAKE_FIREFOX"
	fakePIDFile = "GECKOHOST_FAKE_PIDFILE"
)

func runFake(mode string) int {
	switch mode {
	case "hang":
		child := exec.Command(os.Args[0])
		child.Env = append(os.Environ(), fakeEnv+"=child")
		child.Stderr = os.Stderr
		if err := child.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "fake firefox:", err)
			return 1
		}
		pids := fmt.Sprintf("%d %d", os.Getpid(), child.Process.Pid)
		if err := os.WriteFile(os.Getenv(fakePIDFile), []byte(pids), 0o600); err != nil {
			fmt.Fprintln(os.Stderr, "fake firefox:", err)
			return 1
		}
		fmt.Fprintln(os.Stderr, "*** You are running in headless mode.")
		time.Sleep(time.Hour) // a process standing still, not synchronization
		return 0
	case "child":
		time.Sleep(time.Hour)
		return 0
	case "exit":
		fmt.Fprintln(os.Stderr, "fake firefox: giving up")
		return 3
	case "stubborn":
		return runStubborn()
	case "parent":
		// Not a browser: a geckohost stand-in that launches a real
		// Firefox, reports its PID and waits to be killed.
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		f, err := LaunchFirefox(ctx, FirefoxOptions{})
		if err != nil {
			fmt.Fprintln(os.Stderr, "parent:", err)
			return 1
		}
		line := fmt.Sprintf("%d %s", f.PID(), f.Profile())
		if err := os.WriteFile(os.Getenv(fakePIDFile), []byte(line), 0o600); err != nil {
			return 1
		}
		time.Sleep(time.Hour) // a process standing still, not synchronization
		return 0
	}
	return 2
}

// runStubborn is the "stubborn" fake browser.
func runStubborn() int {
	signal.Ignore(syscall.SIGTERM)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 1
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		for {
			_, data, err := ws.Read(r.Context())
			if err != nil {
				return
			}
			var cmd struct {
				ID     int    `json:"id"`
				Method string `json:"method"`
			}
			if json.Unmarshal(data, &cmd) == nil && cmd.Method == "session.new" {
				_ = ws.Write(r.Context(), websocket.MessageText,
					fmt.Appendf(nil, `{"type":"success","id":%d,"result":{"sessionId":"s","capabilities":{}}}`, cmd.ID))
			}
		}
	})}
	fmt.Fprintf(os.Stderr, "WebDriver BiDi listening on ws://%s\n", ln.Addr())
	_ = srv.Serve(ln) // until the process is killed
	return 0
}

func TestMain(m *testing.M) {
	if mode := os.Getenv(fakeEnv); mode != "" {
		os.Exit(runFake(mode))
	}
	snap := leaktest.Take()
	os.Exit(snap.Code(m.Run()))
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

func testContext(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func assertGone(t *testing.T, f *Firefox) {
	t.Helper()
	if m := groupMembers(f.PID()); len(m) > 0 {
		t.Errorf("processes of group %d left: %v", f.PID(), m)
	}
	if h := helpers(f.PID()); len(h) > 0 {
		t.Errorf("helper processes of firefox %d left: %v", f.PID(), h)
	}
	if _, err := os.Stat(f.Profile()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("profile %s left: %v", f.Profile(), err)
	}
}

func fakeLaunch(t *testing.T, mode string, timeout time.Duration) (error, []int) {
	t.Helper()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // the profile goes here
	pidFile := filepath.Join(t.TempDir(), "pids")
	f, err := LaunchFirefox(testContext(t, 30*time.Second), FirefoxOptions{
		Path:         os.Args[0],
		StartTimeout: timeout,
		Env:          []string{fakeEnv + "=" + mode, fakePIDFile + "=" + pidFile},
	})
	if err == nil {
		_ = f.Close(context.Background())
		t.Fatal("LaunchFirefox of a fake browser succeeded")
	}
	if ents, _ := os.ReadDir(tmp); len(ents) > 0 {
		t.Errorf("left in TMPDIR: %v", ents)
	}
	var pids []int
	if b, rerr := os.ReadFile(pidFile); rerr == nil {
		for _, s := range strings.Fields(string(b)) {
			pid, _ := strconv.Atoi(s)
			pids = append(pids, pid)
		}
	}
	return err, pids
}

func TestStartTimeout(t *testing.T) {
	start := time.Now()
	err, pids := fakeLaunch(t, "hang", 1500*time.Millisecond)
	if !errors.Is(err, ErrStartTimeout) {
		t.Fatalf("err = %v, want ErrStartTimeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("LaunchFirefox returned after %v", d)
	}
	if len(pids) != 2 {
		t.Fatalf("fake browser pids = %v", pids)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d still alive", pid)
		}
	}
	if m := groupMembers(pids[0]); len(m) > 0 {
		t.Errorf("group members left: %v", m)
	}
}

func TestStartExit(t *testing.T) {
	err, _ := fakeLaunch(t, "exit", 10*time.Second)
	if !errors.Is(err, ErrFirefoxExited) || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("err = %v, want ErrFirefoxExited with exit status 3", err)
	}
}

func TestLaunchContextCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := LaunchFirefox(ctx, FirefoxOptions{Path: os.Args[0], Env: []string{fakeEnv + "=hang", fakePIDFile + "=" + filepath.Join(t.TempDir(), "p")}})
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrStartTimeout) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestFindFirefox(t *testing.T) {
	if _, err := FindFirefox("/nonexistent/firefox"); !errors.Is(err, ErrFirefoxNotFound) {
		t.Errorf("explicit missing path: %v", err)
	}
	p, err := FindFirefox(os.Args[0])
	if err != nil || p != os.Args[0] {
		t.Errorf("explicit path: %q, %v", p, err)
	}
	if _, err := exec.LookPath("firefox-esr"); err == nil {
		if p, err := FindFirefox(""); err != nil || filepath.Base(p) != "firefox-esr" {
			t.Errorf("PATH lookup: %q, %v", p, err)
		}
	}
	t.Setenv("PATH", t.TempDir())
	_, err = FindFirefox("")
	if !errors.Is(err, ErrFirefoxNotFound) || !strings.Contains(err.Error(), "apt-get install firefox-esr") {
		t.Errorf("empty PATH: %v", err)
	}
	if _, err := LaunchFirefox(context.Background(), FirefoxOptions{}); !errors.Is(err, ErrFirefoxNotFound) {
		t.Errorf("LaunchFirefox with empty PATH: %v", err)
	}
}

func TestUserJS(t *testing.T) {
	js, err := userJS(map[string]any{"a.b": true, "c": 3, "d": "x\"y</script>"})
	if err != nil {
		t.Fatal(err)
	}
	want := "user_pref(\"a.b\", true);\nuser_pref(\"c\", 3);\nuser_pref(\"d\", \"x\\\"y\\u003c/script\\u003e\");\n"
	if string(js) != want {
		t.Errorf("userJS = %q, want %q", js, want)
	}
	if _, err := userJS(map[string]any{"f": 1.5}); err == nil {
		t.Error("float pref accepted")
	}
	if _, err := permissionsText([]string{"http://a\tb"}); err == nil {
		t.Error("origin with a tab accepted")
	}
	p := profilePrefs("/tmp/p", map[string]any{"media.peerconnection.ice.tcp": true})
	if p["media.peerconnection.ice.tcp"] != true || p["permissions.manager.defaultsUrl"] != "file:///tmp/p/default-permissions" {
		t.Errorf("profilePrefs: override or permissions URL wrong: %v %v", p["media.peerconnection.ice.tcp"], p["permissions.manager.defaultsUrl"])
	}
}

// BenchmarkLaunchFirefox measures exec → session ready with a fresh
// profile.
func BenchmarkLaunchFirefox(b *testing.B) {
	if _, err := FindFirefox(""); err != nil {
		b.Skip(err)
	}
	benchLaunch(b, func(ctx context.Context) (*Firefox, error) { return LaunchFirefox(ctx, FirefoxOptions{}) })
}

// BenchmarkLauncher measures exec → session ready from the Launcher's
// template profile (compare BenchmarkLaunchFirefox, a fresh profile).
func BenchmarkLauncher(b *testing.B) {
	if _, err := FindFirefox(""); err != nil {
		b.Skip(err)
	}
	l := NewLauncher(FirefoxOptions{})
	defer l.Close(context.Background())
	ctx := context.Background()
	f, err := l.Launch(ctx)
	if err != nil {
		b.Fatal(err)
	}
	_ = f.Close(ctx)
	for !l.HasTemplate() {
		time.Sleep(50 * time.Millisecond) // waiting outside the timed loop
	}
	benchLaunch(b, l.Launch)
}

// benchLaunch times launch (exec → session ready); closing each browser
// is not timed.
func benchLaunch(b *testing.B, launch func(context.Context) (*Firefox, error)) {
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		f, err := launch(ctx)
		if err != nil {
			cancel()
			b.Fatal(err)
		}
		b.StopTimer()
		if err := f.Close(ctx); err != nil {
			b.Error(err)
		}
		cancel()
		b.StartTimer()
	}
}

// TestParentDeath kills a process that launched Firefox with SIGKILL:
// Pdeathsig takes the browser down with it (the profile of a killed parent
// cannot be removed by it; the test removes it).
func TestParentDeath(t *testing.T) {
	if _, err := FindFirefox(""); err != nil {
		testenv.Skip(t, "firefox-esr", "apt-get install firefox-esr", err)
	}
	ctx := testContext(t, 90*time.Second)
	t.Setenv("TMPDIR", t.TempDir()) // the parent's profile goes here
	pidFile := filepath.Join(t.TempDir(), "pid")
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), fakeEnv+"=parent", fakePIDFile+"="+pidFile)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	var profile string
	for {
		if b, err := os.ReadFile(pidFile); err == nil {
			if _, err := fmt.Sscanf(string(b), "%d %s", &pid, &profile); err == nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatal("parent did not report a Firefox")
		case <-time.After(50 * time.Millisecond):
		}
	}
	defer os.RemoveAll(profile)
	defer syscall.Kill(-pid, syscall.SIGKILL) // in case the test fails
	if stale(profile) {
		t.Errorf("profile %s of a running Firefox taken for stale", profile)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	for alive(pid) || len(groupMembers(pid)) > 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("firefox %d still alive after its parent was killed (group %v)", pid, groupMembers(pid))
		case <-time.After(50 * time.Millisecond):
		}
	}
	// The dead parent's profile is left behind; RemoveStaleProfiles
	// removes it and nothing else.
	if _, err := os.Stat(profile); err != nil {
		t.Fatalf("profile of the killed parent: %v", err)
	}
	removed, err := RemoveStaleProfiles()
	if err != nil {
		t.Fatalf("RemoveStaleProfiles: %v", err)
	}
	if !slices.Contains(removed, profile) {
		t.Errorf("RemoveStaleProfiles removed %v, not %s", removed, profile)
	}
	if _, err := os.Stat(profile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale profile still there: %v", err)
	}
}

// TestStaleProfiles: RemoveStaleProfiles removes the directories whose
// owner process is gone (also when its pid now names another process) and
// keeps those of live processes, of processes it cannot check (another PID
// namespace) and those being made; directories of older versions are
// judged by their pid or their age.
func TestStaleProfiles(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	me := proc.Self()
	dead, reused, elsewhere := me, me, me
	dead.PID = gone.Process.Pid
	reused.Start++
	elsewhere.NS = "pid:[1]"
	dirs := map[string]struct {
		owner  string // geckohost-owner content; "" none
		legacy string // the old template owner file (a pid)
		old    bool
		remove bool
	}{
		"geckohost-profile-mine":       {owner: me.String(), old: true},
		"geckohost-template-mine":      {owner: me.String()},
		"geckohost-profile-dead":       {owner: dead.String(), remove: true},
		"geckohost-template-dead":      {owner: dead.String(), remove: true},
		"geckohost-profile-reused":     {owner: reused.String(), remove: true},
		"geckohost-profile-elsewhere":  {owner: elsewhere.String(), old: true},
		"geckohost-profile-young":      {},
		"geckohost-profile-abandoned":  {old: true, remove: true},
		"geckohost-template-oldlive":   {legacy: strconv.Itoa(os.Getpid())},
		"geckohost-template-olddead":   {legacy: "999999999", remove: true},
		"geckohost-something-mine-not": {old: true},
	}
	for name, d := range dirs {
		dir := filepath.Join(tmp, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if d.owner != "" {
			if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(d.owner), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if d.legacy != "" {
			if err := os.WriteFile(filepath.Join(dir, legacyOwnerFile), []byte(d.legacy), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if d.old {
			then := time.Now().Add(-time.Hour)
			if err := os.Chtimes(dir, then, then); err != nil {
				t.Fatal(err)
			}
		}
	}
	removed, err := RemoveStaleProfiles()
	if err != nil {
		t.Fatal(err)
	}
	for name, d := range dirs {
		dir := filepath.Join(tmp, name)
		_, err := os.Stat(dir)
		if got := errors.Is(err, os.ErrNotExist); got != d.remove {
			t.Errorf("%s: removed %v, want %v", name, got, d.remove)
		}
		if slices.Contains(removed, dir) != d.remove {
			t.Errorf("%s: reported removed %v, want %v", name, !d.remove, d.remove)
		}
	}
}

// ExampleLaunchFirefox starts a headless Firefox, runs a script in a new
// tab and closes the browser, leaving no process or profile behind.
func ExampleLaunchFirefox() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f, err := LaunchFirefox(ctx, FirefoxOptions{})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer f.Close(ctx)
	tab, err := f.Conn().CreateTab(ctx, "")
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	raw, err := f.Conn().CallFunction(ctx, bidi.CallFunctionParams{
		FunctionDeclaration: "() => 6 * 7",
		Context:             tab,
	})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	n, err := bidi.NumberValue(raw)
	fmt.Println(n, err)
	// Output: 42 <nil>
}

// TestFirefox drives real browsers from one Launcher, so that the package
// starts few of them: a fresh launch closed with Close, then, from the
// template profile built meanwhile, one killed with kill -9 and one closed
// behind its back through BiDi. Closing the Launcher leaves nothing in
// TMPDIR.
func TestFirefox(t *testing.T) {
	if _, err := FindFirefox(""); err != nil {
		testenv.Skip(t, "firefox-esr", "apt-get install firefox-esr", err)
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // profiles and the template go here
	ctx := testContext(t, 150*time.Second)
	l := NewLauncher(FirefoxOptions{
		CameraOrigins: []string{"http://127.0.0.1:1234"},
		Prefs:         map[string]any{"geckohost.test.pref": "x\"y"},
	})
	t.Cleanup(func() { _ = l.Close(context.Background()) })
	launch := func(t *testing.T) *Firefox {
		t.Helper()
		f, err := l.Launch(ctx)
		if err != nil {
			t.Fatalf("Launch: %v", err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_ = f.Close(ctx)
		})
		return f
	}

	t.Run("Close", func(t *testing.T) {
		f := launch(t)
		if !alive(f.PID()) || len(groupMembers(f.PID())) < 2 {
			t.Fatalf("firefox group %d: members %v", f.PID(), groupMembers(f.PID()))
		}
		t.Logf("firefox %d: group %v, helpers outside it %v", f.PID(), groupMembers(f.PID()), helpers(f.PID()))
		if b, err := os.ReadFile(filepath.Join(f.Profile(), ownerFile)); err != nil || !strings.Contains(string(b), proc.Self().String()) {
			t.Errorf("profile owner %q, %v", b, err)
		}
		perms, err := os.ReadFile(filepath.Join(f.Profile(), permissionsFile))
		if err != nil || string(perms) != "origin\tcamera\t1\thttp://127.0.0.1:1234\n" {
			t.Errorf("permissions file = %q, %v", perms, err)
		}
		js, err := os.ReadFile(filepath.Join(f.Profile(), "user.js"))
		if err != nil || !strings.Contains(string(js), `user_pref("geckohost.test.pref", "x\"y");`) ||
			!strings.Contains(string(js), `user_pref("media.peerconnection.ice.loopback", true);`) {
			t.Errorf("user.js lacks the prefs (%v):\n%s", err, js)
		}
		// Pages cannot reach the BiDi endpoint: Firefox refuses
		// WebSocket requests with an Origin header.
		page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/ws" { // a WebSocket a page may open
				if ws, err := websocket.Accept(w, r, nil); err == nil {
					_, _, _ = ws.Read(r.Context()) // until the page closes it
					_ = ws.CloseNow()
				}
				return
			}
			fmt.Fprint(w, "<!doctype html><title>page</title>")
		}))
		defer page.Close()
		tab, err := f.Conn().CreateTab(ctx, "")
		if err != nil {
			t.Fatalf("CreateTab: %v", err)
		}
		if err := f.Conn().Navigate(ctx, tab, page.URL); err != nil {
			t.Fatalf("Navigate: %v", err)
		}
		for u, want := range map[string]string{
			f.SessionURL():              "refused",
			"ws" + page.URL[4:] + "/ws": "open", // the probe works
		} {
			raw, err := f.Conn().CallFunction(ctx, bidi.CallFunctionParams{
				FunctionDeclaration: `(u) => new Promise((resolve) => {
					const ws = new WebSocket(u);
					ws.onopen = () => { ws.close(); resolve("open"); };
					ws.onerror = () => resolve("refused");
					ws.onclose = () => resolve("refused");
					setTimeout(() => resolve("timeout"), 10000);
				})`,
				Context:      tab,
				Args:         []any{bidi.StringArg(u)},
				AwaitPromise: true,
			})
			if s, serr := bidi.StringValue(raw); err != nil || serr != nil || s != want {
				t.Errorf("page WebSocket to %s: %q (%v, %v), want %q", u, s, err, serr, want)
			}
		}
		if err := f.Conn().CloseContext(ctx, tab); err != nil {
			t.Fatalf("CloseContext: %v", err)
		}
		if err := f.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		select {
		case <-f.Done():
		default:
			t.Fatal("Done not closed after Close")
		}
		if err := f.Err(); err != nil {
			t.Errorf("Err after Close = %v, want nil", err)
		}
		if err := f.Close(ctx); err != nil {
			t.Errorf("second Close: %v", err)
		}
		assertGone(t, f)
		if err := f.Conn().Call(ctx, "browser.getUserContexts", nil, nil); !errors.Is(err, bidi.ErrClosed) {
			t.Errorf("call after Close: %v, want ErrClosed", err)
		}
	})

	// The template is built in the background after the first launch.
	for !l.HasTemplate() {
		select {
		case <-ctx.Done():
			t.Fatal("template profile not built")
		case <-time.After(50 * time.Millisecond):
		}
	}

	t.Run("Kill9", func(t *testing.T) {
		f := launch(t)
		start := time.Now()
		if err := syscall.Kill(f.PID(), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		select {
		case <-f.Done():
			t.Logf("Done %v after kill -9", time.Since(start))
		case <-time.After(2 * time.Second):
			t.Fatal("Done not closed within 2 s of kill -9")
		}
		err := f.Err()
		if !errors.Is(err, ErrFirefoxExited) && !errors.Is(err, ErrBiDiLost) {
			t.Fatalf("Err = %v, want ErrFirefoxExited or ErrBiDiLost", err)
		}
		if err := f.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if f.Err() == nil {
			t.Error("Err cleared by Close after a crash")
		}
		assertGone(t, f)
	})

	t.Run("BiDiLost", func(t *testing.T) {
		f := launch(t)
		// A browser from the template works like a fresh one.
		tab, err := f.Conn().CreateTab(ctx, "")
		if err != nil {
			t.Fatalf("CreateTab: %v", err)
		}
		if err := f.Conn().Navigate(ctx, tab, "about:blank"); err != nil {
			t.Fatalf("Navigate: %v", err)
		}
		if err := f.Conn().CloseBrowser(ctx); err != nil {
			t.Fatalf("CloseBrowser: %v", err)
		}
		select {
		case <-f.Done():
		case <-ctx.Done():
			t.Fatal("Done not closed")
		}
		if f.Err() == nil {
			t.Fatal("Err = nil after an unrequested exit")
		}
		if err := f.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		assertGone(t, f)
	})

	t.Run("BadTemplate", func(t *testing.T) {
		// A template that cannot be used is dropped, and the launch
		// goes on from an empty profile.
		l.mu.Lock()
		tmpl := l.template
		l.mu.Unlock()
		if err := os.RemoveAll(tmpl); err != nil { // say, by a tmp cleaner
			t.Fatal(err)
		}
		f := launch(t)
		if l.HasTemplate() {
			t.Error("bad template kept")
		}
		if _, err := os.Stat(filepath.Dir(tmpl)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("bad template directory not removed: %v", err)
		}
		if err := f.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		assertGone(t, f)
	})

	if err := l.Close(ctx); err != nil {
		t.Fatalf("Launcher.Close: %v", err)
	}
	if _, err := l.Launch(ctx); !errors.Is(err, ErrLauncherClosed) {
		t.Errorf("Launch after Close: %v", err)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) > 0 {
		t.Errorf("left in TMPDIR after Close: %v", ents)
	}
}

// TestLauncherCloseDuringBuild closes a Launcher while its template
// Firefox starts: nothing is left.
func TestLauncherCloseDuringBuild(t *testing.T) {
	if _, err := FindFirefox(""); err != nil {
		testenv.Skip(t, "firefox-esr", "apt-get install firefox-esr", err)
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	ctx := testContext(t, 60*time.Second)
	l := NewLauncher(FirefoxOptions{})
	l.startBuild()
	// Wait until the template browser has its profile, then close.
	for {
		if m, _ := filepath.Glob(filepath.Join(tmp, "geckohost-template-*", "profile", "user.js")); len(m) > 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("template build did not start")
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := l.Close(ctx); err != nil {
		t.Fatalf("Launcher.Close: %v", err)
	}
	if l.HasTemplate() {
		t.Error("template kept after Close")
	}
	if ents, _ := os.ReadDir(tmp); len(ents) > 0 {
		t.Errorf("left in TMPDIR: %v", ents)
	}
}

// TestCloseStubborn closes a browser that ignores browser.close and
// SIGTERM: Close still ends it (SIGKILL after the wait delay), within its
// bounds, and leaves nothing behind.
func TestCloseStubborn(t *testing.T) {
	for _, v := range []struct {
		p   *time.Duration
		val time.Duration
	}{{&browserCloseTimeout, 300 * time.Millisecond}, {&exitAfterBrowserClose, 300 * time.Millisecond}, {&waitDelay, 500 * time.Millisecond}} {
		old := *v.p
		*v.p = v.val
		t.Cleanup(func() { *v.p = old })
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	ctx := testContext(t, 30*time.Second)
	f, err := LaunchFirefox(ctx, FirefoxOptions{Path: os.Args[0], Env: []string{fakeEnv + "=stubborn"}})
	if err != nil {
		t.Fatalf("LaunchFirefox(stubborn fake): %v", err)
	}
	start := time.Now()
	if err := f.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	t.Logf("Close took %v", time.Since(start))
	if ws, ok := f.proc.State().Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Errorf("stubborn browser ended with %v, want killed by SIGKILL", f.proc.State())
	}
	if f.Err() != nil {
		t.Errorf("Err after Close = %v", f.Err())
	}
	assertGone(t, f)
	if ents, _ := os.ReadDir(tmp); len(ents) > 0 {
		t.Errorf("left in TMPDIR: %v", ents)
	}
}
