package web_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/internal/leaktest"
	"github.com/geckohost/geckohost/web"
)

// leakOpts are the options of the package's leak checks: idle keep-alive
// connections of http.DefaultClient may outlive a test, and a check waits up
// to 10 s for the other goroutines to end.
var leakOpts = []leaktest.Option{
	leaktest.Ignore("net/http.(*persistConn)"),
	leaktest.Timeout(10 * time.Second),
}

func TestHandlerServesFiles(t *testing.T) {
	leaktest.Check(t, leakOpts...)
	srv := httptest.NewServer(web.Handler())
	defer srv.Close()

	cases := []struct {
		path, ctype, contains string
	}{
		{"/", "text/html; charset=utf-8", `<script type="module" src="/app.js">`},
		{"/geckohost.js", "text/javascript; charset=utf-8", "export async function connect("},
		{"/app.js", "text/javascript; charset=utf-8", `from "/geckohost.js"`},
		{"/style.css", "text/css; charset=utf-8", ":root"},
		{"/workers/echo.js", "text/javascript; charset=utf-8", "self.postMessage(e.data)"},
		{"/workers/primes.js", "text/javascript; charset=utf-8", "self.onmessage"},
		{"/workers/mandelbrot.js", "text/javascript; charset=utf-8", "self.onmessage"},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			res, err := http.Get(srv.URL + c.path)
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200", res.StatusCode)
			}
			if got := res.Header.Get("Content-Type"); got != c.ctype {
				t.Errorf("Content-Type %q, want %q", got, c.ctype)
			}
			if got := res.Header.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control %q, want no-cache", got)
			}
			if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q, want nosniff", got)
			}
			wantACAO := ""
			if c.path == "/geckohost.js" || strings.HasPrefix(c.path, "/workers/") {
				wantACAO = "*" // importable / readable from any origin
			}
			if got := res.Header.Get("Access-Control-Allow-Origin"); got != wantACAO {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", got, wantACAO)
			}
			if !strings.Contains(string(body), c.contains) {
				t.Errorf("body does not contain %q", c.contains)
			}
			// A revalidation with the ETag costs a 304.
			req, _ := http.NewRequest(http.MethodGet, srv.URL+c.path, nil)
			req.Header.Set("If-None-Match", res.Header.Get("ETag"))
			res2, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("revalidate: %v", err)
			}
			res2.Body.Close()
			if res2.StatusCode != http.StatusNotModified {
				t.Errorf("revalidation status %d, want 304", res2.StatusCode)
			}
		})
	}
}

func TestHandlerNotFound(t *testing.T) {
	leaktest.Check(t, leakOpts...)
	srv := httptest.NewServer(web.Handler())
	defer srv.Close()
	for _, p := range []string{"/nope", "/index.html", "/workers/", "/workers/nope.js", "/static/app.js", "/../web.go", "/workers", "/favicon.ico", "/app.js.map"} {
		res, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatalf("get %s: %v", p, err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, res.StatusCode)
		}
	}
	res, err := http.Post(srv.URL+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: status %d, want 405", res.StatusCode)
	}
}

func TestHandlerCSP(t *testing.T) {
	leaktest.Check(t, leakOpts...)
	srv := httptest.NewServer(web.Handler())
	defer srv.Close()
	res, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	res.Body.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	csp := res.Header.Get("Content-Security-Policy")
	directives := map[string]string{}
	for _, d := range strings.Split(csp, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		directives[name] = value
	}
	want := map[string]string{
		"default-src":     "'none'",
		"script-src":      "'self'",
		"style-src":       "'self'",
		"connect-src":     "'self' ws://" + host + " wss://" + host,
		"frame-ancestors": "'none'",
		"base-uri":        "'none'",
	}
	for k, v := range want {
		if directives[k] != v {
			t.Errorf("CSP %s = %q, want %q (whole policy: %s)", k, directives[k], v, csp)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP allows unsafe code: %s", csp)
	}

	// A Host header that is not a plain host[:port] is never echoed.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Host = "evil.example; script-src *"
	web.Handler().ServeHTTP(rec, req)
	if got := rec.Header().Get("Content-Security-Policy"); strings.Contains(got, "evil") || strings.Contains(got, "*") {
		t.Errorf("CSP echoes a bad Host: %s", got)
	}
}

func TestDemoWorkersAreServed(t *testing.T) {
	leaktest.Check(t, leakOpts...)
	h := web.Handler()
	app := get(t, h, "/app.js")
	for _, w := range web.DemoWorkers() {
		if !strings.HasPrefix(w.Path, "/workers/") {
			t.Errorf("%s: path %q is not under /workers/ (the host only allows those)", w.Name, w.Path)
		}
		if get(t, h, w.Path) == "" {
			t.Errorf("%s: %s is empty", w.Name, w.Path)
		}
		if !strings.Contains(app, `"`+w.Path+`"`) {
			t.Errorf("the demo page does not offer %s (%s)", w.Name, w.Path)
		}
		if w.Description == "" {
			t.Errorf("%s has no description", w.Name)
		}
	}
}

func TestDemoURL(t *testing.T) {
	leaktest.Check(t, leakOpts...)
	for in, want := range map[string]string{
		"127.0.0.1:8765": "http://127.0.0.1:8765/",
		":8765":          "http://127.0.0.1:8765/",
		"0.0.0.0:80":     "http://127.0.0.1:80/",
		"[::]:8765":      "http://[::1]:8765/",
		"[::1]:9000":     "http://[::1]:9000/",
		"localhost:8765": "http://localhost:8765/",
		"example.com":    "http://example.com/",
	} {
		if got := web.DemoURL(in); got != want {
			t.Errorf("web.DemoURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func get(t *testing.T, h http.Handler, path string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: status %d", path, rec.Code)
	}
	return rec.Body.String()
}

// TestClientKnowsEveryErrno: geckohost.js names every public errno and has
// advice for it.
func TestClientKnowsEveryErrno(t *testing.T) {
	js, err := os.ReadFile(filepath.Join("static", "geckohost.js"))
	if err != nil {
		t.Fatal(err)
	}
	src := string(js)
	names := src[strings.Index(src, "ERRNO_NAMES"):strings.Index(src, "const ADVICE")]
	advice := src[strings.Index(src, "const ADVICE"):strings.Index(src, "export function errnoName")]
	for _, e := range engine.Errnos() {
		if !strings.Contains(names, fmt.Sprintf("%d: %q", int(e), e.String())) {
			t.Errorf("geckohost.js ERRNO_NAMES lacks %d: %q", int(e), e.String())
		}
		if !strings.Contains(advice, fmt.Sprintf("  %d: ", int(e))) {
			t.Errorf("geckohost.js ADVICE lacks %d", int(e))
		}
	}
}
