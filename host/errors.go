package host

import "errors"

// Sentinel errors returned by New and the Server's methods, wrapped with %w.
var (
	// ErrNoStore is returned by New when Options.Store is nil.
	ErrNoStore = errors.New("no store")
	// ErrNoEngine is returned by New when Options.Engine is nil.
	ErrNoEngine = errors.New("no engine")
	// ErrBadPattern is returned by New for an --allow-source or
	// --allow-origin pattern that is not of the form scheme://host[:port|:*].
	ErrBadPattern = errors.New("bad origin pattern")
	// ErrBadPublicURL is returned by New for a public URL that is not an
	// http(s) origin.
	ErrBadPublicURL = errors.New("bad public URL")
	// ErrServerClosed is returned by Serve when the Server was already shut
	// down.
	ErrServerClosed = errors.New("server closed")
)

// errShuttingDown is what /readyz says once Shutdown has begun.
var errShuttingDown = errors.New("shutting down")
