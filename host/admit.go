package host

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/engine"
)

// Admission: what a hello must pass before the engine is asked for a
// worker, in this order: the authorization (101) and the token (102), the
// source URL (104), the offer (204, offer.go), the token's limits (105),
// then the source is fetched (fetch.go: 104 for a refused redirect or
// address, 201).

// authenticate checks the authorization field: 101 when it is not
// "Bearer <token>", 102 when the token is unknown, revoked or expired.
func (s *Server) authenticate(ctx context.Context, authorization string) (domain.Token, *engine.Error) {
	scheme, secret, ok := strings.Cut(authorization, " ")
	secret = strings.TrimSpace(secret)
	if authorization == "" {
		s.authFailed(authMalformed)
		return domain.Token{}, engine.Errorf(engine.InvalidAuthorization, "missing authorization; send \"Bearer <token>\"")
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" || strings.ContainsAny(secret, " \t") {
		s.authFailed(authMalformed)
		return domain.Token{}, engine.Errorf(engine.InvalidAuthorization, "authorization must be \"Bearer <token>\"")
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	tok, err := s.opts.Store.LookupToken(ctx, secret)
	switch {
	case err == nil:
		return tok, nil
	case errors.Is(err, domain.ErrUseNotRecorded):
		// The database takes no writes (disk full): serve all the same.
		s.rec.tokenUseNotRecorded(err)
		return tok, nil
	case errors.Is(err, domain.ErrNotFound):
		s.authFailed(authUnknown)
		return domain.Token{}, engine.Errorf(engine.InvalidToken, "unknown token")
	case errors.Is(err, domain.ErrRevoked):
		s.authFailed(authRevoked)
		return tok, engine.Errorf(engine.InvalidToken, "token revoked")
	case errors.Is(err, domain.ErrExpired):
		s.authFailed(authExpired)
		return tok, engine.Errorf(engine.InvalidToken, "token expired")
	}
	var we *engine.Error
	if errors.As(err, &we) { // the store chose the client's error (cluster: 301 when unreachable)
		s.log.Warn("look up token", "err", err)
		s.authFailed(authError)
		return domain.Token{}, we
	}
	s.log.Error("look up token", "err", err)
	s.authFailed(authError)
	return domain.Token{}, engine.Errorf(engine.InvalidToken, "the token could not be checked (internal error)")
}

// checkSource returns the parsed source, or a 104 unless it is an
// http(s) URL of at most 2,048 bytes allowed by the server (--allow-source
// or a bundled demo worker) and by the token. Its redirects are checked
// the same way as they are followed (fetchSource).
func (s *Server) checkSource(r *http.Request, tok domain.Token, source string) (*url.URL, *engine.Error) {
	if len(source) > maxSourceURL {
		return nil, engine.Errorf(engine.SourceNotAllowed, "source %s is not allowed: longer than %d bytes", shorten(source), maxSourceURL)
	}
	u, err := url.Parse(source)
	if err != nil {
		return nil, engine.Errorf(engine.SourceNotAllowed, "source %s is not allowed: it must be an absolute http:// or https:// URL", shorten(source))
	}
	if _, werr := s.checkURL(r, tok, u, "source"); werr != nil {
		return nil, werr
	}
	return u, nil
}

// isDemoWorker reports whether u is one of the bundled demo workers: on one
// of the server's own origins (see ownOrigins; never the request's Host as
// such), under /workers/.
func (s *Server) isDemoWorker(r *http.Request, u *url.URL) bool {
	o, ok := urlOrigin(u)
	if !ok || !s.isOwnOrigin(r, o) {
		return false
	}
	p := u.EscapedPath()
	return strings.HasPrefix(p, "/workers/") && strings.HasPrefix(path.Clean(p), "/workers/") &&
		!strings.Contains(strings.ToLower(p), "%2f") && !strings.Contains(strings.ToLower(p), "%2e")
}

// reserve counts a live worker for the session's token with the Limiter
// (see Limiter.Reserve): nil, the 105, or the error its failure is sent as.
func (s *Server) reserve(ctx context.Context, tok domain.Token, workerID string) *engine.Error {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	if tok.MaxWorkers == 0 && s.opts.TokenMaxWorkers > 0 {
		tok.MaxWorkers = s.opts.TokenMaxWorkers // the server's fair share (serve --token-max-workers)
	}
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
