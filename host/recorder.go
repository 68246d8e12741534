package host

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/geckohost/geckohost/store"
)

// recorder writes session records to the Store from a single goroutine, so
// that the relay path never waits for SQLite. Records are queued in order;
// close flushes the queue and waits for the writer.
type recorder struct {
	store Store
	log   *slog.Logger

	mu     sync.Mutex
	queue  []store.Session
	closed bool
	wake   chan struct{} // capacity 1: "the queue changed"
	done   chan struct{} // closed when the writer goroutine returns
	stop   context.CancelFunc
	ctx    context.Context
}

// writeTimeout bounds one SaveSession call.
const writeTimeout = 5 * time.Second

func newRecorder(st Store, log *slog.Logger) *recorder {
	ctx, cancel := context.WithCancel(context.Background())
	r := &recorder{
		store: st,
		log:   log,
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
		stop:  cancel,
		ctx:   ctx,
	}
	go r.run()
	return r
}

// save queues one record. It never blocks on the store.
func (r *recorder) save(s store.Session) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.log.Warn("session record dropped after shutdown", "worker", s.WorkerID, "state", s.State)
		return
	}
	r.queue = append(r.queue, s)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *recorder) run() {
	defer close(r.done)
	for {
		r.mu.Lock()
		batch := r.queue
		r.queue = nil
		closed := r.closed
		r.mu.Unlock()
		for _, s := range batch {
			ctx, cancel := context.WithTimeout(r.ctx, writeTimeout)
			err := r.store.SaveSession(ctx, s)
			cancel()
			if err != nil {
				r.log.Error("save session record", "worker", s.WorkerID, "state", s.State, "err", err)
			}
		}
		if closed && len(batch) == 0 {
			return
		}
		if len(batch) == 0 {
			<-r.wake
		}
	}
}

// close stops accepting records, writes the queued ones and waits for the
// writer. When ctx ends first the pending writes are abandoned (their
// contexts cancelled) and ctx's error returned after the writer stopped.
func (r *recorder) close(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	select {
	case <-r.done:
		r.stop()
		return nil
	case <-ctx.Done():
		r.mu.Lock()
		n := len(r.queue)
		r.queue = nil
		r.mu.Unlock()
		r.stop()
		<-r.done
		if n > 0 {
			r.log.Error("session records lost at shutdown", "count", n)
		}
		return ctx.Err()
	}
}
