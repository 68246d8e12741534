package host

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/geckohost/geckohost/engine"
)

// queueRetry is how often the queue's first hello tries again while no
// session ends (a browser starting or restarting frees no slot by ending a
// session).
const queueRetry = 100 * time.Millisecond

// queue holds the hellos waiting for a browser, fair across tokens: the
// turns go round robin between the tokens with waiting hellos, and to each
// token's hellos in arrival order. One hello at a time has the turn: it
// tries the engine; when that succeeds (or fails for another reason than
// capacity) it leaves and the next one gets the turn at once, when it fails
// for capacity it keeps the turn for the next wake: a session's end, or
// queueRetry later.
type queue struct {
	size int // most waiting; 0: no queue

	mu     sync.Mutex
	lines  map[int64][]*ticket // by token, oldest first
	ring   []int64             // tokens with waiting hellos, in turn order
	next   int                 // ring index of the token whose turn is next
	n      int                 // waiting hellos
	turn   *ticket             // the hello that has the turn, if any
	timer  *time.Timer         // the pending retry
	closed bool
}

// ticket is one waiting hello.
type ticket struct {
	token  int64
	joined time.Time
	// turnCh gets a value when the hello has the turn.
	turnCh chan struct{}
	queued bool // guarded by queue.mu
}

func newQueue(size int) *queue {
	return &queue{size: size, lines: map[int64][]*ticket{}}
}

// enabled reports whether hellos may wait at all.
func (q *queue) enabled() bool { return q.size > 0 }

// depth is the number of waiting hellos.
func (q *queue) depth() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// busy reports whether hellos are waiting (a new one then goes behind
// them rather than taking a freed place first).
func (q *queue) busy() bool { return q.depth() > 0 }

// join queues a hello of token; false when the queue is full (or closed).
// The hello may get the turn at once.
func (q *queue) join(token int64) (*ticket, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.n >= q.size {
		return nil, false
	}
	t := &ticket{token: token, joined: time.Now(), turnCh: make(chan struct{}, 1), queued: true}
	if len(q.lines[token]) == 0 {
		q.ring = append(q.ring, token)
	}
	q.lines[token] = append(q.lines[token], t)
	q.n++
	q.grant()
	return t, true
}

// grant gives the turn to the next hello when nobody has it. Caller holds
// q.mu.
func (q *queue) grant() {
	if q.turn != nil || q.n == 0 || q.closed {
		return
	}
	if q.next >= len(q.ring) {
		q.next = 0
	}
	t := q.lines[q.ring[q.next]][0]
	q.turn = t
	t.turnCh <- struct{}{} // capacity 1, and only the holder of the turn gets one
}

// started: t had the turn and is done with the engine (it has a worker, or
// failed for another reason than capacity); it leaves, and the next
// token's hello gets the turn.
func (q *queue) started(t *ticket) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if i := slices.Index(q.ring, t.token); i >= 0 && q.next == i {
		q.next = i + 1 // the token had its turn
	}
	q.remove(t)
	q.grant()
}

// full: t had the turn and the engine had no capacity; t keeps its place
// and the turn is given again at the next wake (or queueRetry from now).
func (q *queue) full(t *ticket) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.turn == t {
		q.turn = nil
	}
	if q.closed || q.n == 0 {
		return
	}
	if q.timer == nil {
		q.timer = time.AfterFunc(queueRetry, q.retry)
	}
}

// retry is the timer's wake.
func (q *queue) retry() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.timer = nil
	q.grant()
}

// leave removes a hello that stops waiting (timed out, its client left,
// shutdown); if it had the turn, the next one gets it. Safe after started.
func (q *queue) leave(t *ticket) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.remove(t)
	q.grant()
}

// remove takes t out of the queue. Caller holds q.mu.
func (q *queue) remove(t *ticket) {
	if q.turn == t {
		q.turn = nil
	}
	if !t.queued {
		return
	}
	t.queued = false
	q.n--
	line := slices.DeleteFunc(q.lines[t.token], func(x *ticket) bool { return x == t })
	if len(line) > 0 {
		q.lines[t.token] = line
	} else {
		delete(q.lines, t.token)
		i := slices.Index(q.ring, t.token)
		q.ring = slices.Delete(q.ring, i, i+1)
		if i < q.next {
			q.next--
		}
	}
	if q.n == 0 && q.timer != nil {
		q.timer.Stop()
		q.timer = nil
	}
}

// wake gives the turn to the next hello: a worker ended, so a browser may
// have room.
func (q *queue) wake() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.grant()
}

// close stops the retries; hellos still waiting are ended by the
// shutdown.
func (q *queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	if q.timer != nil {
		q.timer.Stop()
		q.timer = nil
	}
}

// startWorker asks the engine for the session's worker. When the engine
// has no capacity (engine.ErrNoCapacity), or other hellos already wait,
// the hello waits in the queue for its turn, for at most
// Options.QueueTimeout (and never past ctx's deadline, the answer
// deadline), while the client's candidates are kept for the worker. ok is
// false when the session is over: an error was sent (301 when the queue is
// full or the wait timed out) or the client left.
func (se *session) startWorker(ctx context.Context, req engine.WorkerRequest) (engine.Worker, bool) {
	s := se.s
	q := s.queue
	var last error
	if !q.enabled() || !q.busy() {
		w, err := s.opts.Engine.StartWorker(ctx, req)
		switch {
		case err == nil:
			return w, true
		case !q.enabled() || !errors.Is(err, engine.ErrNoCapacity):
			se.fail(s.engineError(err))
			return nil, false
		}
		last = err
	}
	t, ok := q.join(req.TokenID)
	if !ok {
		se.fail(engine.Errorf(engine.NoGeckoAvailable, "no browser can take the worker and the queue is full (%s waiting, --queue-size)", plural(q.size, "hello")))
		return nil, false
	}
	defer func() {
		q.leave(t)
		s.metrics.queueWait.Observe(time.Since(t.joined).Seconds())
	}()
	s.log.Debug("hello queued", "worker", se.id, "depth", q.depth())
	timeout := time.NewTimer(s.opts.QueueTimeout)
	defer timeout.Stop()
	for {
		select {
		case <-t.turnCh:
			w, err := s.opts.Engine.StartWorker(ctx, req)
			switch {
			case err == nil:
				q.started(t)
				return w, true
			case errors.Is(err, engine.ErrNoCapacity) && ctx.Err() == nil:
				last = err
				q.full(t)
			default:
				q.started(t)
				se.fail(s.engineError(err))
				return nil, false
			}
		case res := <-se.frames:
			if !se.clientFrame(res, &se.early, &se.candidates) {
				return nil, false
			}
		case <-timeout.C:
			why := "no browser could take it"
			var we *engine.Error
			if errors.As(last, &we) {
				why = we.Reason
			}
			se.fail(engine.Errorf(engine.NoGeckoAvailable, "the worker waited %s in the queue (--queue-timeout) and no browser could take it: %s", s.opts.QueueTimeout, why))
			return nil, false
		case <-ctx.Done():
			// The answer deadline (302), or Shutdown (304).
			if se.ctx.Err() != nil {
				se.hardStop()
			} else if s.stopCtx.Err() != nil {
				se.fail(shuttingDown())
			} else {
				se.fail(s.engineError(ctx.Err()))
			}
			return nil, false
		case <-se.ctx.Done():
			se.hardStop()
			return nil, false
		}
	}
}

// plural is n and the noun, with an "s" unless n is 1: "1 worker", "2 workers".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
