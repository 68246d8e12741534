package host

import (
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

// queueUp puts the hello in the queue (the engine had no capacity, or
// other hellos already wait): it waits for its turn for at most
// Options.QueueTimeout (and never past the answer deadline) while the
// client's candidates are kept; a full queue is a 301.
func (se *session) queueUp() {
	s, ls := se.s, &se.ls
	t, ok := s.queue.join(ls.req.TokenID)
	if !ok {
		se.end(failure(engine.Errorf(engine.NoGeckoAvailable, "no browser can take the worker and the queue is full (%s waiting, --queue-size)", plural(s.queue.size, "hello"))))
		return
	}
	ls.phase, ls.ticket = phaseQueued, t
	ls.queueT.set(s.opts.QueueTimeout)
	s.log.Debug("hello queued", "worker", se.id, "depth", s.queue.depth())
}

// turn is the queue's signal that the hello has the turn, while it waits.
func (ls *loopState) turn(se *session) <-chan struct{} {
	if ls.phase != phaseQueued || ls.ticket == nil || se.endReason != "" {
		return nil
	}
	return ls.ticket.turnCh
}

// queueTimedOut is the 301 of a hello that waited Options.QueueTimeout.
func (se *session) queueTimedOut() *engine.Error {
	why := "no browser could take it"
	var we *engine.Error
	if errors.As(se.ls.noCapacity, &we) {
		why = we.Reason
	}
	return engine.Errorf(engine.NoGeckoAvailable, "the worker waited %s in the queue (--queue-timeout) and no browser could take it: %s", se.s.opts.QueueTimeout, why)
}

// queueStarted: the hello that had the turn is done with the engine (it
// has a worker, or failed for another reason than capacity); the next
// token's hello gets the turn.
func (se *session) queueStarted() {
	if t := se.ls.ticket; t != nil {
		se.s.queue.started(t)
	}
	se.leaveQueue()
}

// leaveQueue takes the hello out of the queue, if it is in it.
func (se *session) leaveQueue() {
	ls := &se.ls
	if ls.ticket == nil {
		return
	}
	se.s.queue.leave(ls.ticket)
	se.s.metrics.queueWait.Observe(time.Since(ls.ticket.joined).Seconds())
	ls.ticket = nil
	ls.queueT.stop()
}

// plural is n and the noun, with an "s" unless n is 1: "1 worker", "2 workers".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
