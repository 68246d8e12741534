package core

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/geckohost/geckohost/engine"
)

// negotiate gets a page, starts the worker (its code came with the
// request: the front fetched it) and relays the page's events until the
// worker ends; it returns the EventEnded to send.
func (w *Worker) negotiate(ctx context.Context) engine.Event {
	id, err := w.d.Place(ctx)
	if err != nil {
		return w.failure("opening a worker page", err)
	}
	// The worker may reach its own source origin (egress.Public), and its
	// refused requests are those of its context from now on.
	if id != nil {
		w.ident, w.refusedBase = id, id.Refused()
		w.dropOrigin = id.AllowOrigin(w.req.Source)
	}
	select {
	case <-w.closeCh:
		return w.closedEvent()
	default:
	}
	// The call returns the answer (or the start's error); the host bounds
	// the wait for it (302), StartTimeout is only a backstop.
	cctx, cancel := context.WithTimeout(ctx, StartTimeout)
	w.startSent = time.Now()
	res, err := w.d.Start(cctx, w.offer(), w.iceServersJSON())
	cancel()
	if err != nil {
		return w.failure("starting the worker", err)
	}
	var e ShellEvent
	if json.Unmarshal([]byte(res), &e) != nil {
		return w.failure("starting the worker", fmt.Errorf("unexpected start result %s", res))
	}
	switch e.T {
	case "error":
		w.pageEnded = true
		return failedWith(&engine.Error{Errno: engine.Errno(e.Errno), Reason: w.d.StartError(engine.Errno(e.Errno), e.Reason)})
	case "answer":
		w.answered(e)
	}
	// "none": the page ended the worker during the start; its "end" event
	// (or the close that caused it) follows.
	return w.relay()
}

// relay turns the page's events into engine events until the worker ends.
// A close requested once the data channel is open ends the worker in
// order (see quiesce), within orderlyCloseTimeout.
func (w *Worker) relay() engine.Event {
	closeCh := w.closeCh
	var orderly <-chan time.Time
	opened := false
	for {
		select {
		case <-w.inSig:
		case <-closeCh:
			closeCh = nil
			if !opened || w.pageLost() || !w.quiesce() {
				return w.closedEvent()
			}
			t := time.NewTimer(orderlyCloseTimeout)
			defer t.Stop()
			orderly = t.C
		case <-orderly:
			w.log.Debug("worker did not end in order in time: closed")
			return w.closedEvent()
		case <-w.opts.Abandon:
			return w.closedEvent()
		case <-w.opts.Dead:
			return ended(engine.EndBrowserDied, "")
		}
		w.mu.Lock()
		msgs := w.inbox
		w.inbox = nil
		w.mu.Unlock()
		for _, m := range msgs {
			if end, ok := w.onPageMsg(m, &opened); ok {
				return end
			}
		}
	}
}

// onPageMsg handles one event of the page; it returns the worker's end
// and true when the event ends it. *opened is set once the worker's data
// channel is open.
func (w *Worker) onPageMsg(m pageMsg, opened *bool) (engine.Event, bool) {
	e := m.ev
	if m.destroyed {
		w.pageEnded = true
		if w.dead() {
			return engine.Event{}, false // the Dead case reports it
		}
		return ended(engine.EndTabClosed, ""), true
	}
	switch e.T {
	case "cand":
		if e.C != nil {
			w.log.Debug("worker candidate", "candidate", e.C.Candidate)
			w.emit(engine.Event{Kind: engine.EventCandidate, Candidate: *e.C})
		}
	case "open":
		*opened = true
		w.d.DoneNegotiating()
		w.emit(engine.Event{Kind: engine.EventConnected})
	case "error":
		w.pageEnded = true
		return failedWith(&engine.Error{Errno: engine.Errno(e.Errno), Reason: e.Reason}), true
	case "end":
		w.pageEnded = true
		if r := engine.EndReason(e.Reason); r == w.closeReason() && e.Detail == "" {
			return w.closedEvent(), true // the end we asked for, with its detail
		}
		return ended(engine.EndReason(e.Reason), e.Detail), true
	case "log":
		w.log.Debug("shell", "msg", e.Msg)
	}
	return engine.Event{}, false
}

// quiesce asks the page to end the connected worker in order: once its
// data channel has been quiet for 500 ms (at most 3 s), the worker is
// asked to close as an idle one is, so that what either side sent before
// is answered and delivered before the channel closes. The page then sends
// the worker's "end" with the requested reason. It reports whether the
// page took the request.
func (w *Worker) quiesce() bool {
	w.mu.Lock()
	reason := w.reason
	w.mu.Unlock()
	if w.dead() {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), CallTimeout)
	defer cancel()
	ok, err := w.d.Quiesce(ctx, reason)
	if err != nil {
		w.log.Debug("end the worker in order", "err", err)
		return false
	}
	return ok
}

// iceServersJSON is the request's ICE servers for gh.start: "" (the page's
// own configuration) when there are none or the engine gathers loopback
// candidates only.
func (w *Worker) iceServersJSON() string {
	if len(w.req.ICEServers) == 0 || w.opts.ICELoopback {
		return ""
	}
	b, err := json.Marshal(w.req.ICEServers)
	if err != nil {
		return ""
	}
	return string(b)
}

// offer is the client's offer as the worker gets it: in ICELoopback mode
// without its non-loopback a=candidate lines.
func (w *Worker) offer() string {
	if !w.opts.ICELoopback {
		return w.req.Offer
	}
	return LoopbackSDP(w.req.Offer)
}

// answer is the worker's answer as the client gets it: in ICELoopback
// mode without its non-loopback a=candidate lines (the page trickles
// only loopback candidates, and the answer carries those it gathered
// before it was sent).
func (w *Worker) answer(sdp string) string {
	if !w.opts.ICELoopback {
		return sdp
	}
	return LoopbackSDP(sdp)
}

// answered sends the worker's answer.
func (w *Worker) answered(e ShellEvent) {
	if e.TM != nil {
		now := float64(time.Now().UnixMilli())
		w.log.Debug("answer", "page_ms", e.TM,
			"start_to_page_ms", e.TM["entry"]-float64(w.startSent.UnixMilli()),
			"page_to_go_ms", now-e.TM["sent"],
			"since_startworker_ms", time.Since(w.created).Milliseconds())
	}
	w.emit(engine.Event{Kind: engine.EventAnswer, Answer: w.answer(e.SDP)})
}

// finish ends the worker in its page (the page stays), releases its place
// and sends the last event.
func (w *Worker) finish(end engine.Event) {
	if !w.pageEnded && !w.dead() && !w.pageLost() {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		err := w.d.Stop(ctx)
		if err != nil && !w.dead() {
			w.log.Debug("close worker", "err", err)
		}
		cancel()
	}
	w.d.DoneNegotiating()
	if w.ident != nil {
		end.EgressRefused = int(w.ident.Refused() - w.refusedBase)
		w.dropOrigin()
	}
	w.d.Release()
	if end.Err != nil {
		w.log.Debug("worker ended", "errno", int(end.Err.Errno), "reason", end.Err.Reason)
	} else {
		w.log.Debug("worker ended", "reason", end.Reason)
	}
	w.emit(end)
	close(w.events)
	close(w.done)
}
