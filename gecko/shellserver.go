package gecko

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
	"strings"
	"sync"
	"time"
)

//go:embed shell/shell.html shell/shell.js shell/bootstrap.js
var shellFiles embed.FS

// shellServer serves the embedded worker shell to the browsers only: it
// listens on loopback and serves the files under an unguessable prefix;
// every other path is 404.
type shellServer struct {
	ln     net.Listener
	srv    *http.Server
	prefix string // "/<hex>/"
	log    *slog.Logger
	wg     sync.WaitGroup
	err    error
}

func startShellServer(log *slog.Logger) (*shellServer, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("make shell prefix: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for shell server: %w", err)
	}
	s := &shellServer{ln: ln, prefix: "/" + hex.EncodeToString(b[:]) + "/", log: log}
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
func (s *shellServer) Origin() string { return "http://" + s.ln.Addr().String() }

// URL is the shell page's URL.
func (s *shellServer) URL() string { return s.Origin() + s.prefix + "shell.html" }

func (s *shellServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, s.prefix)
	if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		http.NotFound(w, r)
		return
	}
	var ctype string
	switch name {
	case "shell.html":
		ctype = "text/html; charset=utf-8"
	case "shell.js", "bootstrap.js":
		ctype = "text/javascript; charset=utf-8"
	default:
		http.NotFound(w, r)
		return
	}
	s.log.Debug("shell file served", "name", name)
	b, err := shellFiles.ReadFile("shell/" + name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	if name == "bootstrap.js" {
		// Every worker loads it: from the browser's memory cache, not from
		// here each time (one HTTP request less per session). The prefix
		// is new in every process, so no browser keeps an old version.
		h.Set("Cache-Control", "private, max-age=86400, immutable")
	} else {
		h.Set("Cache-Control", "no-store")
	}
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(b)
}

func (s *shellServer) Close(ctx context.Context) error {
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
