package egress

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/geckohost/geckohost/internal/netguard"
)

// Options configure a Proxy. The zero value works: Public mode, nothing
// else allowed, no shell route.
type Options struct {
	// Policy is where workers may connect.
	Policy Policy
	// Shell is the worker shell server's address (on loopback). It is
	// reachable only while an identity's browser loads a shell page
	// (Identity.ExpectShell), and then a connection to it carries exactly
	// one request, passed on only when it is a page navigation
	// (Sec-Fetch-Mode: navigate, Sec-Fetch-Dest: document, which no script
	// can send). Any other request (a worker's fetch, importScripts,
	// WebSocket) is refused, or during a load cut without a response, and
	// counted. Zero: no route (the port is not denied either).
	Shell netip.AddrPort
	// Resolver looks names up; nil means net.DefaultResolver.
	Resolver netguard.Resolver
	// DialTimeout bounds connecting to a target; 0 means 10 s.
	DialTimeout time.Duration
	// Logger gets refusals at debug level; nil discards.
	Logger *slog.Logger
}

// handshakeTimeout bounds the SOCKS handshake and a shell request's head.
const handshakeTimeout = 10 * time.Second

// Proxy is the SOCKS5 proxy every network request of the workers goes
// through. Each Identity is a loopback listener of its own, handed to one
// browser user context, so that a refusal can be told to the workers of
// that context. It is safe for concurrent use.
type Proxy struct {
	opts   Options
	log    *slog.Logger
	dialer *netguard.Dialer

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	ids    map[*Identity]struct{}
	deny   map[uint16]int // ports of internal listeners on loopback (refcounted)
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// New returns a Proxy, or an error wrapping ErrBadPolicy.
func New(opts Options) (*Proxy, error) {
	pol, err := opts.Policy.Validate()
	if err != nil {
		return nil, err
	}
	opts.Policy = pol
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		opts: opts, log: log, ctx: ctx, cancel: cancel,
		ids: map[*Identity]struct{}{}, deny: map[uint16]int{}, conns: map[net.Conn]struct{}{},
	}
	p.dialer = &netguard.Dialer{Resolver: opts.Resolver, Timeout: opts.DialTimeout}
	return p, nil
}

// Identity is one listener of the proxy: the requests of one browser user
// context. Its methods are safe for concurrent use.
type Identity struct {
	p       *Proxy
	name    string
	ln      net.Listener
	refused atomic.Int64

	mu      sync.Mutex
	origins map[string]int // target keys allowed for this identity's workers (refcounted)
	loading int            // shell page loads in progress (ExpectShell)
}

// ExpectShell opens the shell route for this identity while its browser
// loads a shell page, until done is called: outside such a load, a
// connection to the shell server is refused at once (as any internal
// listener), and inside one, only the navigation passes.
func (id *Identity) ExpectShell() (done func()) {
	id.mu.Lock()
	id.loading++
	id.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			id.mu.Lock()
			id.loading--
			id.mu.Unlock()
		})
	}
}

func (id *Identity) expectingShell() bool {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.loading > 0
}

// NewIdentity starts a listener on 127.0.0.1 for one user context; name
// is used in logs.
func (p *Proxy) NewIdentity(name string) (*Identity, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for egress proxy: %w", err)
	}
	id := &Identity{p: p, name: name, ln: ln, origins: map[string]int{}}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = ln.Close()
		return nil, fmt.Errorf("new egress identity: %w", net.ErrClosed)
	}
	p.ids[id] = struct{}{}
	p.wg.Add(1)
	p.mu.Unlock()
	go id.serve()
	return id, nil
}

// Addr is the identity's listening address (127.0.0.1:PORT).
func (id *Identity) Addr() netip.AddrPort {
	return id.ln.Addr().(*net.TCPAddr).AddrPort()
}

// Refused counts the identity's refused requests so far.
func (id *Identity) Refused() int64 { return id.refused.Load() }

// AllowOrigin allows the origin of rawURL (an http(s) URL: a worker's
// source) for this identity's requests in Public mode, until the returned
// function is called. Any other URL allows nothing.
func (id *Identity) AllowOrigin(rawURL string) (remove func()) {
	key, ok := OriginKey(rawURL)
	if !ok {
		return func() {}
	}
	id.mu.Lock()
	id.origins[key]++
	id.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			id.mu.Lock()
			if id.origins[key]--; id.origins[key] <= 0 {
				delete(id.origins, key)
			}
			id.mu.Unlock()
		})
	}
}

func (id *Identity) hasOrigin(key string) bool {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.origins[key] > 0
}

// Close stops the identity's listener (its open connections go on until
// they end or the Proxy closes).
func (id *Identity) Close() error {
	p := id.p
	p.mu.Lock()
	delete(p.ids, id)
	p.mu.Unlock()
	if err := id.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("close egress identity: %w", err)
	}
	return nil
}

// DenyPort makes port on every loopback (and unspecified) address
// unreachable through the proxy, in every mode, until undo is called:
// Firefox's BiDi port, geckohost's internal listeners. The proxy's own
// listeners are denied always.
func (p *Proxy) DenyPort(port uint16) (undo func()) {
	p.mu.Lock()
	p.deny[port]++
	p.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			if p.deny[port]--; p.deny[port] <= 0 {
				delete(p.deny, port)
			}
			p.mu.Unlock()
		})
	}
}

// internal reports whether port is that of an internal listener.
func (p *Proxy) internal(port uint16) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.deny[port] > 0 {
		return true
	}
	for id := range p.ids {
		if id.Addr().Port() == port {
			return true
		}
	}
	return false
}

// Close closes every listener and connection and waits for the proxy's
// goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	ids := make([]*Identity, 0, len(p.ids))
	for id := range p.ids {
		ids = append(ids, id)
	}
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.cancel()
	for _, id := range ids {
		_ = id.Close()
	}
	p.wg.Wait()
	return nil
}

// track registers a connection for Close; false when the proxy is closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	p.wg.Add(1)
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
	p.wg.Done()
}

func (id *Identity) serve() {
	p := id.p
	defer p.wg.Done()
	for {
		c, err := id.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.log.Debug("egress accept", "identity", id.name, "err", err)
			}
			return
		}
		if !p.track(c) {
			_ = c.Close()
			return
		}
		go func() {
			defer p.untrack(c)
			id.handle(c)
		}()
	}
}

// refuse counts and logs one refused request.
func (id *Identity) refuse(host string, port uint16, why string) {
	id.refused.Add(1)
	id.p.log.Debug("egress refused", "identity", id.name, "host", host, "port", port, "why", why)
}

// handle serves one SOCKS5 client connection.
func (id *Identity) handle(c net.Conn) {
	p := id.p
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	br := bufio.NewReaderSize(c, 512)
	ok, err := readGreeting(br)
	if err != nil {
		p.log.Debug("egress handshake", "identity", id.name, "err", err)
		return
	}
	if !ok {
		_, _ = c.Write([]byte{socksVersion, methodNoAcceptable})
		return
	}
	if _, err := c.Write([]byte{socksVersion, methodNoAuth}); err != nil {
		return
	}
	req, err := readRequest(br)
	if err != nil {
		p.log.Debug("egress handshake", "identity", id.name, "err", err)
		_, _ = c.Write(reply(replyGeneralFailure))
		return
	}
	if req.cmd != cmdConnect {
		id.refuse(req.host, req.port, fmt.Sprintf("SOCKS command %d", req.cmd))
		_, _ = c.Write(reply(replyCommandNotSupported))
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, handshakeTimeout)
	aps, shell, err := id.check(ctx, req.host, req.port)
	cancel()
	if err != nil {
		var re *netguard.RefusedError
		code := byte(replyHostUnreachable)
		if errors.As(err, &re) {
			id.refuse(req.host, req.port, re.Why)
			code = replyNotAllowed
		} else {
			p.log.Debug("egress resolve", "identity", id.name, "host", req.host, "err", err)
		}
		_, _ = c.Write(reply(code))
		return
	}
	if shell {
		id.shell(c, br)
		return
	}
	dctx, dcancel := context.WithTimeout(p.ctx, p.dialTimeout())
	up, err := p.dialer.DialChecked(dctx, "tcp", aps)
	dcancel()
	if err != nil {
		p.log.Debug("egress dial", "identity", id.name, "host", req.host, "port", req.port, "err", err)
		_, _ = c.Write(reply(replyConnectionRefused))
		return
	}
	if !p.track(up) {
		_ = up.Close()
		return
	}
	defer p.untrack(up)
	if _, err := c.Write(reply(replySucceeded)); err != nil {
		return
	}
	_ = c.SetDeadline(time.Time{})
	splice(c, br, up)
}

func (p *Proxy) dialTimeout() time.Duration {
	if p.opts.DialTimeout > 0 {
		return p.opts.DialTimeout
	}
	return 10 * time.Second
}

// check resolves host once and applies the policy to every address. It
// returns the allowed addresses, or shell true for the shell route, or a
// *netguard.RefusedError.
func (id *Identity) check(ctx context.Context, host string, port uint16) ([]netip.AddrPort, bool, error) {
	p := id.p
	pol := p.opts.Policy
	// A worker's source origin is reached whatever its address only when
	// its host cannot be re-pointed by DNS (an address, or localhost): a
	// name that resolved to a public address when the source was fetched
	// could resolve to a local one now. Named, it is held to the mode's
	// address rule like any target.
	explicit := matchTarget(pol.Allow, host, port) ||
		pol.Mode == Public && (matchTarget(pol.ServerOrigins, host, port) ||
			fixedHost(host) && id.hasOrigin(targetKey(host, port)))
	shell := false
	rule := func(_ string, ap netip.AddrPort) string {
		a := ap.Addr()
		if netguard.Local(a) {
			if p.opts.Shell.IsValid() && ap.Port() == p.opts.Shell.Port() {
				if !id.expectingShell() {
					return "geckohost-internal (the shell server)"
				}
				shell = true
				return ""
			}
			if p.internal(ap.Port()) {
				return "geckohost-internal"
			}
		}
		switch {
		case explicit, pol.Mode == All:
			return ""
		case pol.Mode == None:
			return "not allowed by --worker-allow (--worker-egress none)"
		}
		if c := netguard.Class(a); c != netguard.ClassPublic {
			return c
		}
		return ""
	}
	aps, err := netguard.Check(ctx, p.opts.Resolver, rule, host, port)
	if err != nil {
		return nil, false, err
	}
	return aps, shell, nil
}

// fixedHost reports whether host is an IP address or localhost (no DNS).
func fixedHost(host string) bool {
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return true
	}
	return strings.EqualFold(host, "localhost")
}

// shell passes a shell page navigation on to the shell server, and cuts
// any other request. The connection carries one request (the shell server
// answers "Connection: close").
func (id *Identity) shell(c net.Conn, br *bufio.Reader) {
	p := id.p
	if _, err := c.Write(reply(replySucceeded)); err != nil {
		return
	}
	var raw bytes.Buffer
	hr := bufio.NewReaderSize(io.TeeReader(io.MultiReader(bytes.NewReader(buffered(br)), c), &raw), 4096)
	req, err := http.ReadRequest(hr)
	if err != nil {
		id.refuse(p.opts.Shell.String(), p.opts.Shell.Port(), "not an HTTP request to the shell")
		return
	}
	if !isNavigation(req) {
		id.refuse(p.opts.Shell.String(), p.opts.Shell.Port(), "shell server: not a page navigation")
		return
	}
	dctx, cancel := context.WithTimeout(p.ctx, p.dialTimeout())
	up, err := p.dialer.DialChecked(dctx, "tcp", []netip.AddrPort{p.opts.Shell})
	cancel()
	if err != nil {
		p.log.Debug("egress dial shell", "err", err)
		return
	}
	if !p.track(up) {
		_ = up.Close()
		return
	}
	defer p.untrack(up)
	_ = c.SetDeadline(time.Time{})
	if _, err := up.Write(raw.Bytes()); err != nil {
		return
	}
	_, _ = io.Copy(c, up)
}

// buffered returns (and consumes) what br has buffered.
func buffered(br *bufio.Reader) []byte {
	b, _ := br.Peek(br.Buffered())
	out := bytes.Clone(b)
	_, _ = br.Discard(len(out))
	return out
}

// isNavigation reports whether req is a browser navigating a page: a GET
// without a body, with the fetch metadata (forbidden headers no script can
// set) of a top-level document navigation.
func isNavigation(req *http.Request) bool {
	return req.Method == http.MethodGet && req.ContentLength == 0 && len(req.TransferEncoding) == 0 &&
		req.Header.Get("Sec-Fetch-Mode") == "navigate" && req.Header.Get("Sec-Fetch-Dest") == "document" &&
		req.Header.Get("Upgrade") == ""
}

// splice copies both ways between the client (whose buffered bytes are in
// br) and the target until both directions end.
func splice(c net.Conn, br *bufio.Reader, up net.Conn) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(up, br)
		closeWrite(up)
	}()
	_, _ = io.Copy(c, up)
	closeWrite(c)
	// The target is done: let the client's side end soon too.
	_ = c.SetReadDeadline(time.Now().Add(spliceLinger))
	<-done
}

// spliceLinger is how long a client may go on sending once its target
// has closed.
const spliceLinger = 5 * time.Second

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}
