// Package shell is the worker shell both engines load: one page (shell.html
// with shell.js and bootstrap.js inlined) that hosts many workers, and the
// loopback server that serves it to the browsers only. The JavaScript is
// shared; what differs between the browsers is passed to gh.init (its
// config's engine field) and handled in one place in each file (see
// shell.js and bootstrap.js: "engine differences").
package shell

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

//go:embed shell.html shell.js bootstrap.js
var shellFiles embed.FS

// shellPage is the shell page as served: shell.html with shell.js and
// bootstrap.js inlined, so that loading it takes one request.
var shellPage, shellPageErr = buildShellPage()

func buildShellPage() ([]byte, error) {
	read := func(name string) (string, error) {
		b, err := shellFiles.ReadFile(name)
		if err != nil {
			return "", fmt.Errorf("build shell page: %w", err)
		}
		if name != "shell.html" && strings.Contains(strings.ToLower(string(b)), "</script") {
			return "", fmt.Errorf("build shell page: %s contains </script", name)
		}
		return string(b), nil
	}
	html, err := read("shell.html")
	if err != nil {
		return nil, err
	}
	js, err := read("shell.js")
	if err != nil {
		return nil, err
	}
	boot, err := read("bootstrap.js")
	if err != nil {
		return nil, err
	}
	if !strings.Contains(html, "/*SHELL*/") || !strings.Contains(html, "/*BOOTSTRAP*/") {
		return nil, errors.New("build shell page: shell.html lacks its placeholders")
	}
	html = strings.Replace(html, "/*SHELL*/", js, 1)
	html = strings.Replace(html, "/*BOOTSTRAP*/", boot, 1)
	return []byte(html), nil
}

// Page returns the shell page as served (a copy).
func Page() ([]byte, error) {
	if shellPageErr != nil {
		return nil, shellPageErr
	}
	return append([]byte(nil), shellPage...), nil
}

// Server serves the embedded worker shell page to the browsers only:
// it listens on loopback and serves the page under an unguessable prefix;
// every other path is 404. The browsers reach it through the egress proxy,
// which passes on page navigations only (a worker's requests never get
// here), and each response closes its connection, so a connection carries
// one request.
type Server struct {
	ln     net.Listener
	srv    *http.Server
	prefix string // "/<hex>/"
	log    *slog.Logger
	wg     sync.WaitGroup
	err    error
}

// Start starts a Server on a loopback port of its own; log gets its
// errors. Close stops it.
func Start(log *slog.Logger) (*Server, error) {
	if shellPageErr != nil {
		return nil, shellPageErr
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("make shell prefix: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for shell server: %w", err)
	}
	s := &Server{ln: ln, prefix: "/" + hex.EncodeToString(b[:]) + "/", log: log}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.err = err
			log.Error("shell server stopped", "err", err)
		}
	}()
	return s, nil
}

// Origin is the shell's origin, http://127.0.0.1:PORT.
func (s *Server) Origin() string { return "http://" + s.ln.Addr().String() }

// URL is the shell page's URL.
func (s *Server) URL() string { return s.Origin() + s.prefix + "shell.html" }

// Addr is the server's address (127.0.0.1:PORT).
func (s *Server) Addr() netip.AddrPort {
	ap, _ := netip.ParseAddrPort(s.ln.Addr().String())
	return ap
}

// ServeHTTP serves the page under the server's prefix, and 404 for
// anything else.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, s.prefix)
	if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Connection", "close")
	if name != "shell.html" || shellPageErr != nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(shellPage)
}

// Close stops the server (bounded by ctx) and waits for it.
func (s *Server) Close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	s.wg.Wait()
	if err != nil {
		return fmt.Errorf("stop shell server: %w", err)
	}
	return nil
}
