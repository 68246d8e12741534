package host

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/store"
)

// Store is what host needs from the token and session store; *store.DB
// satisfies it.
type Store interface {
	// LookupToken finds a token by its secret; it fails with (a wrapped)
	// store.ErrNotFound, store.ErrRevoked or store.ErrExpired.
	LookupToken(ctx context.Context, secret string) (store.Token, error)
	// SaveSession writes a session record, replacing the one with the same
	// WorkerID.
	SaveSession(ctx context.Context, s store.Session) error
}

// Options configures a Server. Store and Engine are required; every other
// field's zero value works.
type Options struct {
	// Store holds the tokens and receives the session records. Required.
	Store Store
	// Engine starts the workers. Required.
	Engine engine.Engine
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// EngineName is recorded in the session records; "" means "firefox".
	EngineName string
	// AllowSources are the --allow-source origin patterns (scheme://host,
	// scheme://host:port, scheme://host:*, scheme://*.domain, or "*") a
	// worker source URL, and each of its redirects, must match. Empty: only
	// the bundled demo workers (under /workers/ on one of the server's own
	// origins) are allowed. A source host that resolves to a loopback,
	// private, link-local, shared, multicast, unspecified or reserved
	// address is refused unless a pattern (of these or of the token's
	// --source list) names that host itself, not through "*" or
	// "*.domain": http://127.0.0.1:* allows loopback sources on any port.
	AllowSources []string
	// AllowOrigins are the --allow-origin patterns (same syntax) for browser
	// clients' Origin header. The server's own origins are always allowed,
	// and so are clients that send no Origin. Empty: only the own origins.
	AllowOrigins []string
	// PublicURLs are more of the server's own origins (--public-url, such
	// as https://geckohost.example.com behind a reverse proxy, or
	// http://workstation.lan:8765), besides the address each connection was
	// accepted on (and localhost for a loopback one). Requests whose Host
	// is none of them get 421; the bundled workers and the Origin check
	// use them too.
	PublicURLs []string
	// FetchTimeout bounds fetching a worker source, redirects included;
	// 0 means 10 s.
	FetchTimeout time.Duration
	// MaxSourceBytes bounds a worker source; 0 means 4 MiB.
	MaxSourceBytes int64
	// TokenMaxWorkers is the concurrent-worker limit of a token that has
	// none of its own (store.Token MaxWorkers 0), so that no single token
	// takes every slot; 0 means none.
	TokenMaxWorkers int
	// MaxFetchesPerToken caps a token's concurrent source fetches (more
	// wait for a free one); 0 means 8.
	MaxFetchesPerToken int
	// Web serves the plain GET requests other than /healthz and /readyz (the
	// demo page and the bundled workers). nil: a placeholder page on "/" and
	// 404 elsewhere.
	Web http.Handler
	// HelloTimeout is how long a new WebSocket may wait before its
	// client-hello; 0 means 10 s.
	HelloTimeout time.Duration
	// AnswerTimeout bounds hello → worker answer (302 after it); 0 means 30 s.
	AnswerTimeout time.Duration
	// ConnectTimeout bounds answer → connected (302 after it); 0 means 30 s.
	ConnectTimeout time.Duration
	// MaxFrame is the largest client frame accepted, in bytes; a bigger one
	// fails the session with 103. 0 means 64 KiB.
	MaxFrame int64
	// RunID names the serve run (store.Run) in every session record; ""
	// records none.
	RunID string
	// ICEServers returns the STUN/TURN servers for a token's sessions
	// (such as the embedded TURN relay's short-lived credentials): GET
	// /ice-servers answers them to a client with the token (worker false),
	// and each of the token's workers gets them in its WorkerRequest
	// (worker true). nil: none (GET /ice-servers answers an empty list).
	ICEServers func(tok store.Token, worker bool) []engine.ICEServer
	// RelayPeers, when set, is told each live worker's candidates (for
	// the embedded TURN relay's permissions). nil: nobody is.
	RelayPeers RelayPeers
	// QueueSize is the most hellos that wait for a browser when the engine
	// has no capacity (engine.ErrNoCapacity: every browser full, starting
	// or restarting); one more is refused with 301 at once. 0 means 200,
	// negative means no queue (301 at once).
	QueueSize int
	// QueueTimeout is the longest a hello waits in the queue before its
	// 301; 0 means 10 s. The wait counts toward AnswerTimeout.
	QueueTimeout time.Duration
	// Browsers, when set, reports the engine's browsers for /status and
	// /metrics (serve wires it to the gecko pool); memory asks for
	// BrowserStatus.PSSBytes (reading /proc: for /status only).
	Browsers func(memory bool) []BrowserStatus
	// Build names the running binary in /status and /metrics.
	Build BuildInfo
	// HideMetrics: ServeHTTP does not serve /metrics (it is 404 there);
	// mount MetricsHandler on another address instead.
	HideMetrics bool
	// Limiter enforces the tokens' worker and rate limits; nil means an
	// in-memory one (this server's workers only).
	Limiter Limiter
}

// Defaults of Options.
const (
	DefaultHelloTimeout   = 10 * time.Second
	DefaultAnswerTimeout  = 30 * time.Second
	DefaultConnectTimeout = 30 * time.Second
	DefaultMaxFrame       = 64 << 10
	DefaultQueueSize      = 200
	DefaultQueueTimeout   = 10 * time.Second
)

// shutdownGrace bounds Serve's graceful shutdown.
const shutdownGrace = 10 * time.Second

// Server is geckohost's HTTP front: the signaling WebSocket on "/",
// /healthz, /readyz and the web pages. Create it with New, serve it with
// Serve (or mount it as an http.Handler), and stop it with Shutdown, which
// also stops the goroutine New starts for the session records.
type Server struct {
	opts         Options
	log          *slog.Logger
	allowSources []string
	allowOrigins []string
	publicURLs   []origin
	rec          *recorder
	fetch        *fetcher
	hellos       *helloFailures
	queue        *queue
	metrics      *metrics
	started      time.Time

	// stopCtx is cancelled when Shutdown starts: new WebSockets get 503,
	// sessions still negotiating end with 304, connected workers are
	// closed. It is the one "shutting down" state.
	stopCtx    context.Context
	stopCancel context.CancelFunc
	// ctx is cancelled when a Shutdown runs out of time: every session
	// stops at once.
	ctx    context.Context
	cancel context.CancelFunc

	limiter Limiter
	mu      sync.Mutex
	now     func() time.Time // the clock of the in-memory limits and of hellos' failures: time.Now (tests replace it)
	// wg counts the sessions; mu orders its Add (see track) before
	// Shutdown's Wait.
	wg sync.WaitGroup

	shutdownOnce sync.Once
	shutdownErr  error
	shutdownDone chan struct{}
}

// New validates opts and returns a Server. It starts the goroutine that
// writes session records; Shutdown stops it.
func New(opts Options) (*Server, error) {
	if opts.Store == nil {
		return nil, fmt.Errorf("new host server: %w", ErrNoStore)
	}
	if opts.Engine == nil {
		return nil, fmt.Errorf("new host server: %w", ErrNoEngine)
	}
	src, err := parsePatterns(opts.AllowSources)
	if err != nil {
		return nil, fmt.Errorf("new host server: allow-source: %w", err)
	}
	org, err := parsePatterns(opts.AllowOrigins)
	if err != nil {
		return nil, fmt.Errorf("new host server: allow-origin: %w", err)
	}
	pub, err := parsePublicURLs(opts.PublicURLs)
	if err != nil {
		return nil, fmt.Errorf("new host server: public-url: %w", err)
	}
	if opts.FetchTimeout <= 0 {
		opts.FetchTimeout = DefaultFetchTimeout
	}
	if opts.MaxSourceBytes <= 0 {
		opts.MaxSourceBytes = DefaultMaxSourceBytes
	}
	if opts.MaxFetchesPerToken <= 0 {
		opts.MaxFetchesPerToken = DefaultMaxFetchesPerToken
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.EngineName == "" {
		opts.EngineName = "firefox"
	}
	if opts.HelloTimeout <= 0 {
		opts.HelloTimeout = DefaultHelloTimeout
	}
	if opts.AnswerTimeout <= 0 {
		opts.AnswerTimeout = DefaultAnswerTimeout
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	if opts.MaxFrame <= 0 {
		opts.MaxFrame = DefaultMaxFrame
	}
	switch {
	case opts.QueueSize == 0:
		opts.QueueSize = DefaultQueueSize
	case opts.QueueSize < 0:
		opts.QueueSize = 0
	}
	if opts.QueueTimeout <= 0 {
		opts.QueueTimeout = DefaultQueueTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopCtx, stopCancel := context.WithCancel(context.Background())
	s := &Server{
		opts:         opts,
		log:          opts.Logger,
		allowSources: src,
		allowOrigins: org,
		publicURLs:   pub,
		fetch:        newFetcher(opts, testResolver),
		ctx:          ctx,
		cancel:       cancel,
		stopCtx:      stopCtx,
		stopCancel:   stopCancel,
		limiter:      opts.Limiter,
		now:          time.Now,
		shutdownDone: make(chan struct{}),
		queue:        newQueue(opts.QueueSize),
		started:      time.Now(),
	}
	if s.limiter == nil {
		s.limiter = newMemLimiter(func() time.Time {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.now()
		})
	}
	s.metrics = newMetrics(s)
	s.rec = newRecorder(opts.Store, opts.Logger)
	s.hellos = newHelloFailures(s.log, func() time.Time {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.now()
	})
	return s, nil
}

// ServeHTTP refuses (421) a request whose Host header is not one of the
// server's own origins (see Options.PublicURLs); else it serves a
// WebSocket upgrade on "/" as a signaling session,
// /healthz (200 while the process serves), /readyz (200 once the engine can
// take a worker, else 503 with the reason), /status (JSON, see Status),
// /metrics (Prometheus text format, unless Options.HideMetrics),
// /ice-servers (the token's ICE servers, see Options.ICEServers), and
// passes every other request to Options.Web.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.hostAllowed(r) {
		misdirected(w, r)
		return
	}
	switch {
	case r.URL.Path == "/" && isUpgrade(r):
		s.serveWebSocket(w, r)
	case r.URL.Path == "/healthz":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = io.WriteString(w, "ok\n")
	case r.URL.Path == iceServersPath:
		s.serveICEServers(w, r)
	case r.URL.Path == "/readyz":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := s.ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, err.Error()+"\n")
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	case r.URL.Path == "/status":
		s.serveStatus(w, r)
	case r.URL.Path == "/metrics" && !s.opts.HideMetrics:
		s.metrics.handler().ServeHTTP(w, r)
	case s.opts.Web != nil:
		s.opts.Web.ServeHTTP(w, r)
	case r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, placeholderPage)
	default:
		http.NotFound(w, r)
	}
}

// ready is nil when the server takes hellos and the engine can take a
// worker, else the reason (what /readyz says).
func (s *Server) ready() error {
	if s.stopCtx.Err() != nil {
		return errShuttingDown
	}
	if err := s.opts.Engine.Ready(); err != nil {
		return fmt.Errorf("not ready: %w", err)
	}
	return nil
}

const placeholderPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>geckohost</title></head>
<body><h1>geckohost</h1><p>The signaling WebSocket is on this URL (ws://).</p></body></html>
`

func isUpgrade(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "websocket")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// Serve serves on ln until ctx is done, then shuts down gracefully (at most
// 10 s) and returns nil on a clean stop. It closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.stopCtx.Err() != nil {
		_ = ln.Close()
		return fmt.Errorf("serve: %w", ErrServerClosed)
	}
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("serve http: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	s.beginShutdown()
	if herr := hs.Shutdown(sctx); herr != nil && err == nil {
		err = fmt.Errorf("shut down http server: %w", herr)
	}
	if serr := s.Shutdown(sctx); serr != nil && err == nil {
		err = serr
	}
	if e := <-serveErr; e != nil && !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = fmt.Errorf("serve http: %w", e)
	}
	return err
}

// Shutdown stops the server: new WebSockets are refused (503), clients
// still negotiating get worker-error 304, every worker is closed (connected
// ones too), the session records are flushed (EndReason "shutdown"), and it
// waits for all of the server's goroutines. When ctx ends first, every
// session is cancelled at once, Shutdown still waits for them and flushes
// their records (within 5 s of its own), and returns ctx's error. Later
// calls return the first call's result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		defer close(s.shutdownDone)
		s.shutdownErr = s.shutdown(ctx)
	})
	<-s.shutdownDone
	return s.shutdownErr
}

// beginShutdown enters the shutting-down state (once).
func (s *Server) beginShutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopCancel()
}

// track counts a new session unless the server is shutting down; the
// caller calls s.wg.Done when it ends.
func (s *Server) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopCtx.Err() != nil {
		return false
	}
	s.wg.Add(1)
	return true
}

// shutdown waits for the sessions (each ends itself: 304 while
// negotiating, its worker closed once connected), then flushes the records.
func (s *Server) shutdown(ctx context.Context) error {
	s.beginShutdown()
	defer s.queue.close()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("shut down host: %w", ctx.Err())
		s.cancel()
		<-done
	}
	s.cancel()
	s.fetch.close()
	s.hellos.close()
	// The session records are flushed even past ctx's deadline (that
	// bounds the sessions, not a few small writes), within a bound of
	// their own in case the database is stuck.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordFlushTimeout)
	defer cancel()
	if rerr := s.rec.close(fctx); rerr != nil && err == nil {
		err = fmt.Errorf("flush session records: %w", rerr)
	}
	return err
}

// recordFlushTimeout bounds flushing the session records at shutdown.
const recordFlushTimeout = 5 * time.Second

// newWorkerID returns 16 random bytes in hex.
func newWorkerID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}
