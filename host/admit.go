package host

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/geckohost/geckohost/engine"
	"github.com/geckohost/geckohost/store"
)

// Admission: what a hello must pass before the engine is asked for a
// worker, in this order: the authorization (101) and the token (102), the
// source (104), then the token's limits (105).

// authenticate checks the authorization field: 101 when it is not
// "Bearer <token>", 102 when the token is unknown, revoked or expired.
func (s *Server) authenticate(ctx context.Context, authorization string) (store.Token, *engine.Error) {
	scheme, secret, ok := strings.Cut(authorization, " ")
	secret = strings.TrimSpace(secret)
	if authorization == "" {
		return store.Token{}, engine.Errorf(engine.InvalidAuthorization, "missing authorization; send \"Bearer <token>\"")
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" || strings.ContainsAny(secret, " \t") {
		return store.Token{}, engine.Errorf(engine.InvalidAuthorization, "authorization must be \"Bearer <token>\"")
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	tok, err := s.opts.Store.LookupToken(ctx, secret)
	switch {
	case err == nil:
		return tok, nil
	case errors.Is(err, store.ErrNotFound):
		return store.Token{}, engine.Errorf(engine.InvalidToken, "unknown token")
	case errors.Is(err, store.ErrRevoked):
		return tok, engine.Errorf(engine.InvalidToken, "token revoked")
	case errors.Is(err, store.ErrExpired):
		return tok, engine.Errorf(engine.InvalidToken, "token expired")
	}
	var we *engine.Error
	if errors.As(err, &we) { // the store chose the client's error (cluster: 301 when unreachable)
		return store.Token{}, we
	}
	s.log.Error("look up token", "err", err)
	return store.Token{}, engine.Errorf(engine.InvalidToken, "the token could not be checked (internal error)")
}

// checkSource returns a 104 unless the source is an http(s) URL allowed by
// the server (--allow-source or a bundled demo worker) and by the token.
func (s *Server) checkSource(r *http.Request, tok store.Token, source string) *engine.Error {
	shown := source
	if len(shown) > 200 {
		shown = shown[:200] + "..."
	}
	u, err := url.Parse(source)
	if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil ||
		(!strings.EqualFold(u.Scheme, "http") && !strings.EqualFold(u.Scheme, "https")) {
		return engine.Errorf(engine.SourceNotAllowed, "source %s is not allowed: it must be an absolute http:// or https:// URL", shown)
	}
	serverOK := s.isDemoWorker(r, u) || matchAny(s.allowSources, u)
	tokenOK := len(tok.Sources) == 0 || matchAny(tok.Sources, u)
	origin := originOf(u)
	switch {
	case serverOK && tokenOK:
		return nil
	case !serverOK && len(tok.Sources) == 0:
		return engine.Errorf(engine.SourceNotAllowed, "source %s is not allowed: start serve with --allow-source %s", shown, origin)
	case !serverOK:
		return engine.Errorf(engine.SourceNotAllowed, "source %s is not allowed: start serve with --allow-source %s (and the token's --source list must include it)", shown, origin)
	default:
		return engine.Errorf(engine.SourceNotAllowed, "source %s is not allowed for token %q: its --source list does not include %s", shown, tok.Name, origin)
	}
}

// isDemoWorker reports whether u is one of the bundled demo workers: on the
// server's own origin, under /workers/.
func (s *Server) isDemoWorker(r *http.Request, u *url.URL) bool {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if !strings.EqualFold(u.Scheme, scheme) || !strings.EqualFold(u.Host, r.Host) {
		return false
	}
	p := u.EscapedPath()
	return strings.HasPrefix(p, "/workers/") && strings.HasPrefix(path.Clean(p), "/workers/") &&
		!strings.Contains(strings.ToLower(p), "%2f") && !strings.Contains(strings.ToLower(p), "%2e")
}

// reserve counts a live worker for the session's token with the Limiter
// (see Limiter.Reserve): nil, the 105, or the error its failure is sent as.
func (s *Server) reserve(ctx context.Context, tok store.Token, workerID string) *engine.Error {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	err := s.limiter.Reserve(ctx, tok, workerID)
	if err == nil {
		return nil
	}
	var we *engine.Error
	if errors.As(err, &we) {
		return we
	}
	s.log.Error("reserve a worker", "token", tok.Name, "err", err)
	return engine.Errorf(engine.NoGeckoAvailable, "the token's limits could not be checked (internal error)")
}
