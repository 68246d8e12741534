package e2e_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/geckohost/geckohost/gecko"
	"github.com/geckohost/geckohost/gecko/netns"
)

var workerSources = map[string]string{
	"/echo.js":   "self.onmessage = (e) => self.postMessage(e.data);",
	"/syntax.js": "self.onmessage = (e) => {;\n",
	"/throw.js":  "const x = 1;\nthrow new Error('boom');",
	"/close.js":  "self.onmessage = (e) => { self.postMessage(e.data); self.close(); };",
}

type env struct {
	pool *gecko.Pool
	src  *httptest.Server
}

var (
	shared    *env
	sharedErr error
	once      sync.Once
)

func TestMain(m *testing.M) {
	code := netns.Run(m)
	if shared != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := shared.pool.Close(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "close pool:", err)
			code = 1
		}
		cancel()
		shared.src.Close()
	}
	os.Exit(code)
}

func setup(t testing.TB) *env {
	netns.Skip(t)
	once.Do(func() {
		src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, ok := workerSources[r.URL.Path]
			if !ok {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "text/javascript")
			_, _ = w.Write([]byte(body))
		}))
		level := slog.LevelInfo
		if os.Getenv("E2E_DEBUG") != "" {
			level = slog.LevelDebug
		}
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
		prefs := map[string]any{}
		for _, kv := range strings.Split(os.Getenv("E2E_PREFS"), ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				prefs[k] = v == "true"
			}
		}
		p := gecko.NewPool(gecko.PoolOptions{ICELoopback: true, Warm: 2, Logger: log, Firefox: gecko.FirefoxOptions{Prefs: prefs}})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		t0 := time.Now()
		if err := p.Start(ctx); err != nil {
			sharedErr = err
			_ = p.Close(ctx)
			src.Close()
			return
		}
		fmt.Fprintln(os.Stderr, "pool started in", time.Since(t0))
		shared = &env{pool: p, src: src}
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}
