package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// files is the served tree: static/ with the prefix removed.
var files = mustSub(static, "static")

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		// fs.Sub fails only for an invalid path, which "static" is not.
		return f
	}
	return sub
}

// contentTypes maps the extensions Handler serves to their Content-Type.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
}

// DemoWorker describes one bundled demo worker.
type DemoWorker struct {
	// Name is the short name shown in the page's worker picker, e.g. "echo".
	Name string
	// Path is the worker's URL path on the serving host, e.g. "/workers/echo.js".
	Path string
	// Description says in a sentence what the worker does.
	Description string
}

// DemoWorkers returns the bundled demo workers, in the order the demo page
// shows them. Their sources live under /workers/ on the host's own origin,
// which the host always allows.
func DemoWorkers() []DemoWorker {
	return []DemoWorker{
		{Name: "echo", Path: "/workers/echo.js", Description: "Sends every message straight back."},
		{Name: "primes", Path: "/workers/primes.js", Description: "Counts the primes up to N with a sieve: CPU work done in the remote Gecko."},
		{Name: "mandelbrot", Path: "/workers/mandelbrot.js", Description: "Renders a Mandelbrot tile in the remote Gecko and sends the pixels back as binary."},
	}
}

// DemoURL returns the URL of the demo page for a server listening on
// listenAddr (host:port as given to net.Listen). An empty or unspecified host
// becomes the loopback address, so the URL can be opened on the same machine:
// DemoURL("127.0.0.1:8765") and DemoURL(":8765") are both
// "http://127.0.0.1:8765/".
func DemoURL(listenAddr string) string {
	host, port, err := net.SplitHostPort(listenAddr)
	if err != nil {
		host, port = listenAddr, ""
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	if port == "" {
		if strings.Contains(host, ":") {
			return "http://[" + host + "]/"
		}
		return "http://" + host + "/"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// Handler returns the http.Handler that serves the demo page, the
// geckohost.js client module and the bundled demo workers. GET and HEAD only;
// anything it does not have is 404. It never serves a directory listing.
func Handler() http.Handler {
	return http.HandlerFunc(serve)
}

func serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp(r.Host))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if name == "" {
		name = "index.html"
	}
	ctype, ok := contentTypes[path.Ext(name)]
	if !ok || name == "index.html" && r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	body, err := fs.ReadFile(files, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	h.Set("Content-Type", ctype)
	if name == "geckohost.js" || strings.HasPrefix(name, "workers/") {
		// The client module is imported by pages on other origins (module
		// scripts are fetched with CORS), and the demo workers are public
		// code: any origin may read them. Neither carries credentials.
		h.Set("Access-Control-Allow-Origin", "*")
	}
	h.Set("ETag", etag(body))
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
}

// etag is a strong validator for a served file's bytes, so that no-cache
// revalidations cost a 304.
func etag(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:8]) + `"`
}

// csp is the Content-Security-Policy of every response: scripts and styles
// from the serving origin only, no inline code, no plugins, no framing, and
// network connections only back to the serving host (fetch, and the
// signaling WebSocket over ws: or wss:).
func csp(host string) string {
	connect := "'self'"
	if validHost(host) {
		connect += " ws://" + host + " wss://" + host
	}
	return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src " + connect + "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// validHost reports whether a Host header is a plain host[:port] that is safe
// to echo into a header value.
func validHost(host string) bool {
	if host == "" || len(host) > 255 {
		return false
	}
	for _, c := range host {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '-', c == ':', c == '[', c == ']', c == '_':
		default:
			return false
		}
	}
	return true
}
