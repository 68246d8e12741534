package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// sideServer is an HTTP server of serve's besides the main one: the
// metrics on --metrics-listen, pprof on --debug-listen. start listens and
// serves in a goroutine that close stops and waits for.
type sideServer struct {
	name string
	hs   *http.Server
	ln   net.Listener
	done chan error
}

// startSide listens on addr and serves h there.
func startSide(ctx context.Context, name, addr string, h http.Handler, log *slog.Logger) (*sideServer, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listen on %s: %w", name, addr, err)
	}
	s := &sideServer{
		name: name,
		ln:   ln,
		hs: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
		done: make(chan error, 1),
	}
	go func() { s.done <- s.hs.Serve(ln) }()
	return s, nil
}

// close shuts the server down (bounded by ctx) and waits for it.
func (s *sideServer) close(ctx context.Context) error {
	if s == nil {
		return nil
	}
	err := s.hs.Shutdown(ctx)
	if serr := <-s.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("stop %s server: %w", s.name, err)
	}
	return nil
}

// pprofHandler serves net/http/pprof under /debug/pprof/ on a mux of its
// own (the package also registers on http.DefaultServeMux, which geckohost
// never serves).
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/debug/pprof/", http.StatusFound)
	})
	return mux
}

// metricsMux serves h on /metrics of its own address.
func metricsMux(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	return mux
}
