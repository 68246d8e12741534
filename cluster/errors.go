package cluster

import (
	"errors"

	"github.com/geckohost/geckohost/engine"
)

// Sentinel errors, wrapped with %w; test with errors.Is.
var (
	// ErrUnreachable: Redis did not answer (down, unreachable, or too slow).
	// Errors wrapping it also wrap a 301 *engine.Error "cluster store
	// unreachable", which host sends to the client.
	ErrUnreachable = errors.New("cluster store unreachable")
	// ErrBadURL: the --redis URL is not redis://[user:pass@]host:port/db or
	// rediss://...
	ErrBadURL = errors.New("bad Redis URL")
	// ErrNodeIDInUse: another live node has the same node id.
	ErrNodeIDInUse = errors.New("node id in use")
	// ErrBadOptions: Options lack a required field.
	ErrBadOptions = errors.New("bad cluster options")
	// ErrClosed: the node is closed.
	ErrClosed = errors.New("cluster node closed")
)

// unreachableReason is the client's reason when Redis cannot be reached.
const unreachableReason = "cluster store unreachable"

// unreachableError is a Redis failure: it wraps ErrUnreachable, the 301 the
// client is sent, and the cause.
type unreachableError struct {
	op  string
	err error
}

func (e *unreachableError) Error() string {
	return e.op + ": " + unreachableReason + ": " + e.err.Error()
}

func (e *unreachableError) Unwrap() []error {
	return []error{ErrUnreachable, &engine.Error{Errno: engine.NoGeckoAvailable, Reason: unreachableReason}, e.err}
}

// unreachable wraps a Redis failure of op.
func unreachable(op string, err error) error {
	if errors.Is(err, ErrUnreachable) {
		return err
	}
	return &unreachableError{op: op, err: err}
}
