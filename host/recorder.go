package host

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/geckohost/geckohost/domain"
)

// recorder writes session records to the Store from a single goroutine, so
// that the relay path never waits for SQLite. Records are queued in order;
// close flushes the queue and waits for the writer.
//
// A record that cannot be written (the disk is full, the database is
// read-only or broken) does not stop anything: the latest record of each
// such session is kept (a newer record of the session replaces it) and
// written again every retryEvery, and at once after any write succeeds, so
// that writes resume by themselves when the store accepts them again. The
// first failure is logged at once, later ones at most once a minute with
// their count; the end of the episode is logged too.
type recorder struct {
	store domain.Store
	log   *slog.Logger

	mu     sync.Mutex
	queue  []domain.Session
	closed bool
	stats  RecordStats
	// logEvery and retryEvery (guarded by mu: tests shorten them).
	logEvery, retryEvery time.Duration
	wake                 chan struct{} // capacity 1: "the queue changed"
	done                 chan struct{} // closed when the writer goroutine returns
	stop                 context.CancelFunc
	ctx                  context.Context

	// The writer goroutine's own.
	pending   map[string]domain.Session // latest unwritten record per worker
	order     []string                  // pending's workers, oldest failure first
	failing   bool                      // writes fail: an episode is being logged
	failSince time.Time
	lastLog   time.Time
	sinceLog  int // failures since the last log line
	lastErr   error
}

// RecordStats counts what happened to a Server's records (for metrics).
type RecordStats struct {
	// Written counts the session records written to the store.
	Written uint64
	// Failed counts the session records whose write failed. Each was kept
	// (see Pending) and is written later, unless it is Lost or replaced by
	// a newer record of its session.
	Failed uint64
	// Pending is the number of session records waiting to be written again.
	Pending int
	// Lost counts the session records given up: still unwritten at
	// shutdown, or beyond maxPendingRecords.
	Lost uint64
	// TokenUsesNotRecorded counts the hellos whose token was accepted but
	// whose use (the token's last-used time) could not be written.
	TokenUsesNotRecorded uint64
}

const (
	// writeTimeout bounds one SaveSession call.
	writeTimeout = 5 * time.Second
	// recordLogEvery is the most often a failure episode is logged.
	recordLogEvery = time.Minute
	// recordRetryEvery is how often kept records are tried again.
	recordRetryEvery = 2 * time.Second
	// maxPendingRecords bounds the records kept; beyond it the oldest is
	// lost.
	maxPendingRecords = 10000
)

func newRecorder(st domain.Store, log *slog.Logger) *recorder {
	ctx, cancel := context.WithCancel(context.Background())
	r := &recorder{
		store:      st,
		log:        log,
		logEvery:   recordLogEvery,
		retryEvery: recordRetryEvery,
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		stop:       cancel,
		ctx:        ctx,
		pending:    make(map[string]domain.Session),
	}
	go r.run()
	return r
}

// save queues one record. It never blocks on the store.
func (r *recorder) save(s domain.Session) {
	r.mu.Lock()
	if r.closed {
		r.stats.Lost++
		r.mu.Unlock()
		r.log.Warn("session record dropped after shutdown", "worker", s.WorkerID, "state", s.State)
		return
	}
	r.queue = append(r.queue, s)
	r.mu.Unlock()
	r.signal()
}

func (r *recorder) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// tokenUseNotRecorded counts a token use that could not be written and
// logs it like a failed record.
func (r *recorder) tokenUseNotRecorded(err error) {
	r.mu.Lock()
	r.stats.TokenUsesNotRecorded++
	r.mu.Unlock()
	r.log.Debug("token use not recorded", "err", err)
}

// snapshot returns the counters.
func (r *recorder) snapshot() RecordStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

func (r *recorder) run() {
	defer close(r.done)
	var retry *time.Timer
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	for {
		r.mu.Lock()
		batch := r.queue
		r.queue = nil
		closed := r.closed
		retryEvery := r.retryEvery
		r.mu.Unlock()
		wrote := false
		for _, s := range batch {
			if r.write(s) {
				delete(r.pending, s.WorkerID) // replaced by a newer record
				wrote = true
			} else {
				r.keep(s)
			}
		}
		if len(batch) > 0 {
			r.setPending()
		}
		if wrote || closed {
			r.retryPending()
		}
		r.maybeRecovered()
		if closed && len(batch) == 0 {
			r.giveUp()
			return
		}
		if len(batch) > 0 {
			continue
		}
		var retryC <-chan time.Time
		if len(r.pending) > 0 {
			if retry == nil {
				retry = time.NewTimer(retryEvery)
			} else {
				retry.Reset(retryEvery)
			}
			retryC = retry.C
		}
		select {
		case <-r.wake:
		case <-retryC:
			r.retryPending()
			r.maybeRecovered()
		}
	}
}

// write saves one record; false when it failed (the failure is counted and
// logged).
func (r *recorder) write(s domain.Session) bool {
	ctx, cancel := context.WithTimeout(r.ctx, writeTimeout)
	err := r.store.SaveSession(ctx, s)
	cancel()
	r.mu.Lock()
	if err == nil {
		r.stats.Written++
	} else {
		r.stats.Failed++
	}
	r.mu.Unlock()
	if err != nil {
		r.failed(s, err)
	}
	return err == nil
}

// keep remembers s as its session's latest unwritten record.
func (r *recorder) keep(s domain.Session) {
	if _, ok := r.pending[s.WorkerID]; !ok {
		r.order = append(r.order, s.WorkerID)
	}
	r.pending[s.WorkerID] = s
	for len(r.pending) > maxPendingRecords {
		r.compact()
		id := r.order[0]
		r.order = r.order[1:]
		delete(r.pending, id)
		r.mu.Lock()
		r.stats.Lost++
		r.mu.Unlock()
	}
}

// compact drops from order the workers no longer pending.
func (r *recorder) compact() {
	out := r.order[:0]
	for _, id := range r.order {
		if _, ok := r.pending[id]; ok {
			out = append(out, id)
		}
	}
	clear(r.order[len(out):])
	r.order = out
}

func (r *recorder) setPending() {
	r.mu.Lock()
	r.stats.Pending = len(r.pending)
	r.mu.Unlock()
}

// retryPending writes the kept records, oldest first, until one fails.
func (r *recorder) retryPending() {
	if len(r.pending) == 0 {
		return
	}
	r.compact()
	n := 0
	for _, id := range r.order {
		s := r.pending[id]
		ctx, cancel := context.WithTimeout(r.ctx, writeTimeout)
		err := r.store.SaveSession(ctx, s)
		cancel()
		if err != nil {
			r.lastErr = err
			r.failed(s, nil)
			break
		}
		delete(r.pending, id)
		n++
		r.mu.Lock()
		r.stats.Written++
		r.mu.Unlock()
	}
	r.compact()
	r.setPending()
}

// maybeRecovered ends a failure episode once no record waits to be written
// (written again, or replaced by a newer record that was written).
func (r *recorder) maybeRecovered() {
	if len(r.pending) == 0 && r.failing {
		r.failing = false
		r.log.Info("session records written again", "failing_for", time.Since(r.failSince).Round(time.Second),
			"lost", r.snapshot().Lost)
	}
}

// failed logs a failure: the first of an episode at once, then at most
// once a minute with the count. err is nil for a kept record failing
// again (not a new failure, but a chance to log).
func (r *recorder) failed(s domain.Session, err error) {
	now := time.Now()
	if err != nil {
		r.lastErr = err
		r.sinceLog++
	}
	if !r.failing {
		r.failing = true
		r.failSince, r.lastLog, r.sinceLog = now, now, 0
		r.log.Error("session record not written; sessions go on, and the records are written once the database accepts writes again",
			"worker", s.WorkerID, "state", s.State, "err", r.lastErr)
		return
	}
	r.mu.Lock()
	every := r.logEvery
	st := r.stats
	r.mu.Unlock()
	if now.Sub(r.lastLog) < every {
		return
	}
	r.log.Error("session records not written", "failed", r.sinceLog, "pending", len(r.pending), "lost", st.Lost,
		"failing_for", now.Sub(r.failSince).Round(time.Second), "err", r.lastErr)
	r.lastLog, r.sinceLog = now, 0
}

// giveUp counts the records still kept at shutdown as lost.
func (r *recorder) giveUp() {
	n := len(r.pending)
	if n == 0 {
		return
	}
	clear(r.pending)
	r.order = nil
	r.mu.Lock()
	r.stats.Lost += uint64(n)
	r.stats.Pending = 0
	r.mu.Unlock()
	r.log.Error("session records lost at shutdown", "count", n, "err", r.lastErr)
}

// close stops accepting records, writes the queued ones (and tries the
// kept ones once more) and waits for the writer. When ctx ends first the
// pending writes are abandoned (their contexts cancelled) and ctx's error
// returned after the writer stopped.
func (r *recorder) close(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.signal()
	select {
	case <-r.done:
		r.stop()
		return nil
	case <-ctx.Done():
		r.mu.Lock()
		n := len(r.queue)
		r.queue = nil
		r.stats.Lost += uint64(n)
		r.mu.Unlock()
		r.stop()
		<-r.done
		if n > 0 {
			r.log.Error("session records lost at shutdown", "count", n)
		}
		return ctx.Err()
	}
}

// RecordStats returns the counters of the server's records: written,
// failed, pending and lost session records, and token uses not recorded.
func (s *Server) RecordStats() RecordStats { return s.rec.snapshot() }
