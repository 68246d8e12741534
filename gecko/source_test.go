package gecko

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/geckohost/geckohost/engine"
)

func TestSourceFetcher(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok.js":
			_, _ = w.Write([]byte("self.onmessage = null;"))
		case "/redirect.js":
			http.Redirect(w, r, "/ok.js", http.StatusFound)
		case "/big.js":
			_, _ = w.Write([]byte(strings.Repeat("x", 100)))
		case "/slow.js":
			select {
			case <-block:
			case <-r.Context().Done():
			}
		case "/error.js":
			http.Error(w, "oops", http.StatusInternalServerError)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	defer close(block)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	f := &SourceFetcher{Client: &http.Client{Transport: tr}, Timeout: 200 * time.Millisecond, MaxBytes: 50}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for _, p := range []string{"/ok.js", "/redirect.js"} {
		code, err := f.Fetch(ctx, srv.URL+p)
		if err != nil || code != "self.onmessage = null;" {
			t.Errorf("%s: %q, %v", p, code, err)
		}
	}
	cases := map[string]string{
		"/missing.js": "404",
		"/error.js":   "500",
		"/big.js":     "larger than 50 bytes",
		"/slow.js":    "no response within",
	}
	for p, want := range cases {
		_, err := f.Fetch(ctx, srv.URL+p)
		var we *engine.Error
		if !errors.As(err, &we) || we.Errno != engine.UnableToFetchWorkerCode || !strings.Contains(we.Reason, want) {
			t.Errorf("%s: %v, want 201 mentioning %q", p, err, want)
		}
	}
	// A closed port: a network error, still 201.
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL
	dead.Close()
	if _, err := f.Fetch(ctx, url+"/x.js"); !errors.As(err, new(*engine.Error)) {
		t.Errorf("closed port: %v", err)
	}
}

func TestShellServer(t *testing.T) {
	s, err := startShellServer(discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Error(err)
		}
	}()
	if !strings.HasPrefix(s.URL(), s.Origin()+"/") || len(s.prefix) != 34 {
		t.Fatalf("url %s prefix %q", s.URL(), s.prefix)
	}
	get := func(u string) int {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	base := s.Origin() + s.prefix
	for _, name := range []string{"shell.html", "shell.js", "bootstrap.js"} {
		if c := get(base + name); c != 200 {
			t.Errorf("%s: %d", name, c)
		}
	}
	for _, u := range []string{s.Origin() + "/", s.Origin() + "/shell.html", base, base + "pool.go", s.Origin() + "/0123/shell.js"} {
		if c := get(u); c != 404 {
			t.Errorf("%s: %d, want 404", u, c)
		}
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestLoopbackCandidate(t *testing.T) {
	for c, want := range map[string]bool{
		"candidate:0 1 UDP 2122187007 127.0.0.1 49642 typ host":     true,
		"candidate:1 1 UDP 2122252543 ::1 37694 typ host":           true,
		"a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host":    true,
		"candidate:2 1 UDP 2122187007 10.252.27.213 41683 typ host": false,
		"candidate:3 1 UDP 2122187007 abcd.local 41683 typ host":    false,
		"garbage": false,
		"":        false,
	} {
		if got := loopbackCandidate(c); got != want {
			t.Errorf("%q: %v", c, got)
		}
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
