package host

import (
	"context"

	"github.com/geckohost/geckohost/host/wire"
)

// Engine is what host needs from a browser engine: start workers and say
// whether it can take one. gecko.Pool implements it; tests use a
// hand-written fake.
type Engine interface {
	// StartWorker starts a worker for req and returns at once, or with an
	// error that wraps a *wire.Error (301 when no browser can take it, 304
	// when the engine is closing). The answer, candidates, connected and the
	// end are reported on the Worker's Events channel.
	StartWorker(ctx context.Context, req wire.WorkerRequest) (wire.Worker, error)
	// Ready returns nil once the engine can take a worker without waiting
	// for a browser to start, else an error saying why not.
	Ready() error
}

// Worker is one running worker as host sees it; see wire.Worker.
type Worker = wire.Worker
