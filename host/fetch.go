package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/internal/netguard"
)

// Source fetching: the host fetches a worker's code before it asks the
// engine for a worker (so a slow source holds no browser slot), following
// at most maxRedirects redirects, each hop checked like the first URL. A
// host's address is resolved once and checked: loopback, private,
// link-local, shared, multicast, unspecified and reserved addresses are
// refused (104, before any connection) unless an allow pattern names the
// host itself (not a wildcard); the connection goes to the checked address.

const (
	// maxRedirects is how many redirects a source fetch follows.
	maxRedirects = 5
	// maxSourceURL is the longest source URL accepted, in bytes.
	maxSourceURL = 2048
	// Defaults of Options.
	DefaultFetchTimeout       = 10 * time.Second
	DefaultMaxSourceBytes     = 4 << 20
	DefaultMaxFetchesPerToken = 8
)

// testResolver, when set (by tests, before New), resolves the fetches'
// host names.
var testResolver netguard.Resolver

// fetcher holds what source fetches share: two HTTP clients (one dials
// public addresses only, one any address, for hosts a pattern names) and
// the per-token fetch slots.
type fetcher struct {
	public, named *http.Client
	transports    []*http.Transport
	timeout       time.Duration
	maxBytes      int64
	slots         fetchSlots
}

func newFetcher(opts Options, res netguard.Resolver) *fetcher {
	f := &fetcher{timeout: opts.FetchTimeout, maxBytes: opts.MaxSourceBytes, slots: fetchSlots{max: opts.MaxFetchesPerToken}}
	client := func(rule netguard.Rule) *http.Client {
		d := &netguard.Dialer{Rule: rule, Resolver: res}
		tr := &http.Transport{
			Proxy:                 nil, // never an environment proxy: it would bypass the checks
			DialContext:           d.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          32,
			IdleConnTimeout:       30 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: opts.FetchTimeout,
		}
		f.transports = append(f.transports, tr)
		return &http.Client{
			Transport: tr,
			// Redirects are followed by fetchSource, hop by hop.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	f.public = client(netguard.PublicOnly)
	f.named = client(func(string, netip.AddrPort) string { return "" })
	return f
}

// close drops the idle connections.
func (f *fetcher) close() {
	for _, tr := range f.transports {
		tr.CloseIdleConnections()
	}
}

// verdict is what checkURL decides about one URL of a fetch.
type verdict int

const (
	refused verdict = iota // 104
	bundled                // a bundled demo worker: served in-process
	named                  // an allow pattern names its host: any address
	public                 // public addresses only
)

// checkURL applies the source rules to u (the first URL or a redirect's
// target): an absolute http(s) URL of at most maxSourceURL bytes, allowed
// by the server (a bundled demo worker or --allow-source) and by the
// token's --source list. what names u in the reason ("source" or "redirect
// 2 to").
func (s *Server) checkURL(r *http.Request, tok domain.Token, u *url.URL, what string) (verdict, *engine.Error) {
	raw := u.String()
	shown := raw
	if len(shown) > 200 {
		shown = shown[:200] + "..."
	}
	if len(raw) > maxSourceURL {
		return refused, engine.Errorf(engine.SourceNotAllowed, "%s %s is not allowed: longer than %d bytes", what, shown, maxSourceURL)
	}
	if !u.IsAbs() || u.Host == "" || u.User != nil || u.Opaque != "" ||
		(!strings.EqualFold(u.Scheme, "http") && !strings.EqualFold(u.Scheme, "https")) {
		return refused, engine.Errorf(engine.SourceNotAllowed, "%s %s is not allowed: it must be an absolute http:// or https:// URL", what, shown)
	}
	demo := s.isDemoWorker(r, u)
	serverOK := demo || matchAny(s.allowSources, u)
	tokenOK := len(tok.Sources) == 0 || matchAny(tok.Sources, u)
	origin := originOf(u)
	switch {
	case serverOK && tokenOK:
	case !serverOK && len(tok.Sources) == 0:
		return refused, engine.Errorf(engine.SourceNotAllowed, "%s %s is not allowed: start serve with --allow-source %s", what, shown, origin)
	case !serverOK:
		return refused, engine.Errorf(engine.SourceNotAllowed, "%s %s is not allowed: start serve with --allow-source %s (and the token's --source list must include it)", what, shown, origin)
	default:
		return refused, engine.Errorf(engine.SourceNotAllowed, "%s %s is not allowed for token %q: its --source list does not include %s", what, shown, tok.Name, origin)
	}
	switch {
	case demo:
		return bundled, nil
	case namesHost(s.allowSources, u) || namesHost(tok.Sources, u):
		return named, nil
	}
	return public, nil
}

// namesHost reports whether a pattern of ps matching u names u's host
// itself (a name or an address, not "*" or "*.domain").
func namesHost(ps []string, u *url.URL) bool {
	for _, p := range ps {
		if p == anyOrigin || !matchAny([]string{p}, u) {
			continue
		}
		_, rest, _ := strings.Cut(p, "://")
		if !strings.HasPrefix(rest, "*") {
			return true
		}
	}
	return false
}

// fetchSource fetches the worker code at u (already checked by checkURL
// as the first URL), following and checking redirects. It returns the
// code, or the client's error: 104 for a refused hop or address, 201 for a
// network error, a non-2xx status, too many redirects, or a source over
// the size limit.
func (s *Server) fetchSource(ctx context.Context, r *http.Request, tok domain.Token, u *url.URL) (string, *engine.Error) {
	f := s.fetch
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	acquired := false
	defer func() {
		if acquired {
			f.slots.release(tok.ID)
		}
	}()
	first := u.String()
	what := "source"
	for hop := 0; ; hop++ {
		v, werr := s.checkURL(r, tok, u, what)
		if werr != nil {
			return "", werr
		}
		if v == bundled {
			return s.fetchBundled(u)
		}
		if !acquired {
			if err := f.slots.acquire(ctx, tok.ID); err != nil {
				return "", fetchError(u, err, f.timeout, "waiting for one of the token's %d source fetches (--max-fetches-per-token)", f.slots.max)
			}
			acquired = true
		}
		client := f.public
		if v == named {
			client = f.named
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return "", engine.Errorf(engine.UnableToFetchWorkerCode, "fetch %s: %v", shorten(u.String()), err)
		}
		req.Header.Set("Accept", "text/javascript, application/javascript, */*;q=0.1")
		req.Header.Set("User-Agent", "geckohost")
		resp, err := client.Do(req)
		if err != nil {
			var re *netguard.RefusedError
			if errors.As(err, &re) {
				return "", engine.Errorf(engine.SourceNotAllowed, "%s %s is not allowed: %v (name the host in --allow-source, e.g. %s, to allow it)",
					what, shorten(u.String()), re, originOf(u))
			}
			return "", fetchError(u, err, f.timeout, "")
		}
		if isRedirect(resp.StatusCode) {
			loc := resp.Header.Get("Location")
			drain(resp)
			if hop == maxRedirects {
				return "", engine.Errorf(engine.UnableToFetchWorkerCode, "fetch %s: more than %d redirects", shorten(first), maxRedirects)
			}
			next, err := resolveLocation(u, loc)
			if err != nil {
				return "", engine.Errorf(engine.UnableToFetchWorkerCode, "fetch %s: HTTP status %s with %v", shorten(u.String()), resp.Status, err)
			}
			u = next
			what = fmt.Sprintf("redirect %d (from %s) to", hop+1, shorten(first))
			continue
		}
		return readSource(resp, u, f.maxBytes)
	}
}

func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// readSource reads a final response: a 2xx body of at most limit bytes.
func readSource(resp *http.Response, u *url.URL, limit int64) (string, *engine.Error) {
	defer drain(resp)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", engine.Errorf(engine.UnableToFetchWorkerCode, "fetch %s: HTTP status %s", shorten(u.String()), resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return "", engine.Errorf(engine.UnableToFetchWorkerCode, "fetch %s: read body: %v", shorten(u.String()), unwrapURLError(err))
	}
	if int64(len(b)) > limit {
		return "", engine.Errorf(engine.UnableToFetchWorkerCode, "fetch %s: source is larger than %d bytes", shorten(u.String()), limit)
	}
	return string(b), nil
}

// drain discards a little of an unread body (so the connection can be
// reused) and closes it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

// fetchError is the 201 of a failed request (or of the wait described by
// waiting, when it is set).
func fetchError(u *url.URL, err error, timeout time.Duration, waiting string, args ...any) *engine.Error {
	shown := shorten(u.String())
	if errors.Is(err, context.DeadlineExceeded) {
		if waiting != "" {
			return engine.Errorf(engine.UnableToFetchWorkerCode, "fetch %s: gave up "+waiting, append([]any{shown}, args...)...)
		}
		return engine.Errorf(engine.UnableToFetchWorkerCode, "fetch %s: no response within %v", shown, timeout)
	}
	return engine.Errorf(engine.UnableToFetchWorkerCode, "fetch %s: %v", shown, unwrapURLError(err))
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func shorten(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// resolveLocation returns the URL a redirect from base with this Location
// header value points to (relative references resolve against base). It
// fails for an empty or unparsable Location, and for one with control
// characters or spaces.
func resolveLocation(base *url.URL, loc string) (*url.URL, error) {
	if loc == "" {
		return nil, errors.New("no Location")
	}
	if len(loc) > maxSourceURL*2 {
		return nil, fmt.Errorf("a Location longer than %d bytes", maxSourceURL*2)
	}
	for _, c := range []byte(loc) {
		if c < 0x20 || c == 0x7f || c == ' ' {
			return nil, errors.New("a Location with control characters or spaces")
		}
	}
	ref, err := url.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("a bad Location: %w", err)
	}
	next := base.ResolveReference(ref)
	next.Fragment, next.RawFragment = "", ""
	// What is checked and fetched is the URL as written out: one that
	// does not parse back (such as "//::", a host of colons) is refused.
	again, err := url.Parse(next.String())
	if err != nil {
		return nil, fmt.Errorf("a bad Location: %w", err)
	}
	return again, nil
}

// fetchBundled serves a bundled demo worker from Options.Web, in process:
// its bytes are the binary's own, whatever answers at the URL's address.
func (s *Server) fetchBundled(u *url.URL) (string, *engine.Error) {
	if s.opts.Web == nil {
		return "", engine.Errorf(engine.UnableToFetchWorkerCode, "fetch %s: this server has no bundled workers", shorten(u.String()))
	}
	req, err := http.NewRequest(http.MethodGet, u.RequestURI(), nil)
	if err != nil {
		return "", engine.Errorf(engine.UnableToFetchWorkerCode, "fetch %s: %v", shorten(u.String()), err)
	}
	req.Host = u.Host
	rec := &bodyRecorder{header: http.Header{}, limit: s.fetch.maxBytes}
	s.opts.Web.ServeHTTP(rec, req)
	switch {
	case rec.status == 0:
		rec.status = http.StatusOK
	case rec.over:
		return "", engine.Errorf(engine.UnableToFetchWorkerCode, "fetch %s: source is larger than %d bytes", shorten(u.String()), s.fetch.maxBytes)
	}
	if rec.status < 200 || rec.status > 299 {
		return "", engine.Errorf(engine.UnableToFetchWorkerCode, "fetch %s: HTTP status %d %s", shorten(u.String()), rec.status, http.StatusText(rec.status))
	}
	return rec.body.String(), nil
}

// bodyRecorder is the http.ResponseWriter of an in-process fetch.
type bodyRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	limit  int64
	over   bool
}

func (b *bodyRecorder) Header() http.Header { return b.header }

func (b *bodyRecorder) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

func (b *bodyRecorder) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	if int64(b.body.Len()+len(p)) > b.limit {
		b.over = true
		return 0, errors.New("source too large")
	}
	return b.body.Write(p)
}

// fetchSlots caps the concurrent source fetches of each token; a fetch
// beyond the cap waits for a slot (first come, first served).
type fetchSlots struct {
	max     int
	mu      sync.Mutex
	busy    map[int64]int
	waiters map[int64][]chan struct{}
}

// acquire takes one of token id's slots, waiting until one is free or ctx
// ends.
func (fs *fetchSlots) acquire(ctx context.Context, id int64) error {
	fs.mu.Lock()
	if fs.busy == nil {
		fs.busy, fs.waiters = map[int64]int{}, map[int64][]chan struct{}{}
	}
	if fs.busy[id] < fs.max {
		fs.busy[id]++
		fs.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	fs.waiters[id] = append(fs.waiters[id], ch)
	fs.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		fs.mu.Lock()
		ws := fs.waiters[id]
		for i, w := range ws {
			if w == ch {
				fs.waiters[id] = append(ws[:i:i], ws[i+1:]...)
				if len(fs.waiters[id]) == 0 {
					delete(fs.waiters, id)
				}
				fs.mu.Unlock()
				return ctx.Err()
			}
		}
		fs.mu.Unlock()
		// The slot was handed over meanwhile: give it back.
		fs.release(id)
		return ctx.Err()
	}
}

// release frees one of token id's slots, handing it to the first waiter.
func (fs *fetchSlots) release(id int64) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if ws := fs.waiters[id]; len(ws) > 0 {
		close(ws[0])
		if fs.waiters[id] = ws[1:]; len(fs.waiters[id]) == 0 {
			delete(fs.waiters, id)
		}
		return
	}
	if fs.busy[id]--; fs.busy[id] <= 0 {
		delete(fs.busy, id)
	}
}
