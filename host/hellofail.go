package host

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Failed hellos (101, 102) from one remote address: past
// helloFailBurst of them within helloFailWindow, further failures from it
// still get their error but leave no session record and no info line, so
// that unauthenticated clients cannot grow the database and the log
// without bound. Once a minute one line says how many were left out.
const (
	helloFailBurst   = 20
	helloFailWindow  = 10 * time.Second
	helloFailSummary = time.Minute
	// helloFailDelay holds back the error of a failed hello past the burst
	// (tarpit): a client that tries tokens one after another (or a few at
	// a time) gets through a handful per second instead of thousands,
	// which took the CPU from good sessions on the same machine (measured
	// on 2 cores: a 4-way flood of ~1000 bad hellos/s, 0.5 ms of serve CPU
	// each, doubled a concurrent good hello's open).
	helloFailDelay = 250 * time.Millisecond
)

// tarpit waits helloFailDelay (less when the server stops or the client
// leaves) before a quiet failure is answered.
func (se *session) tarpit() {
	t := time.NewTimer(helloFailDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-se.s.stopCtx.Done():
	case <-se.ctx.Done():
	}
}

// helloFailures tracks recent failed hellos per remote address (an IPv4
// address, or an IPv6 /64). Its goroutine writes the summary lines and
// forgets quiet addresses; close stops it.
type helloFailures struct {
	log *slog.Logger
	now func() time.Time

	mu         sync.Mutex
	recent     map[netip.Prefix][]time.Time // the last helloFailBurst failures
	suppressed int
	from       map[netip.Prefix]struct{} // addresses suppressed since the last summary

	stop chan struct{}
	done chan struct{}
}

func newHelloFailures(log *slog.Logger, now func() time.Time) *helloFailures {
	h := &helloFailures{
		log: log, now: now,
		recent: map[netip.Prefix][]time.Time{},
		from:   map[netip.Prefix]struct{}{},
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go h.run()
	return h
}

// remoteKey returns the address a failure is counted against: the IPv4
// address of remote ("ip:port"), or its IPv6 /64.
func remoteKey(remote string) netip.Prefix {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}
	}
	a = a.Unmap().WithZone("")
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// failed counts a failed hello from remote and reports whether it is to be
// left out of the records and the log (the address has failed
// helloFailBurst times within helloFailWindow already).
func (h *helloFailures) failed(remote string) bool {
	key := remoteKey(remote)
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	ts := h.recent[key]
	quiet := len(ts) >= helloFailBurst && now.Sub(ts[0]) < helloFailWindow
	if len(ts) >= helloFailBurst {
		ts = append(ts[:0], ts[1:]...)
	}
	h.recent[key] = append(ts, now)
	if quiet {
		h.suppressed++
		h.from[key] = struct{}{}
	}
	return quiet
}

func (h *helloFailures) run() {
	defer close(h.done)
	t := time.NewTicker(helloFailSummary)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			h.summarize()
		case <-h.stop:
			h.summarize()
			return
		}
	}
}

// summarize logs the count of failures left out since the last summary
// and forgets addresses without a recent failure.
func (h *helloFailures) summarize() {
	now := h.now()
	h.mu.Lock()
	n, addrs := h.suppressed, len(h.from)
	h.suppressed = 0
	clear(h.from)
	for k, ts := range h.recent {
		if now.Sub(ts[len(ts)-1]) >= helloFailWindow {
			delete(h.recent, k)
		}
	}
	h.mu.Unlock()
	if n > 0 {
		h.log.Warn("failed hellos not recorded", "count", n, "addresses", addrs,
			"why", "more than 20 failed hellos (101/102) within 10s from each address")
	}
}

// close stops the goroutine after a last summary.
func (h *helloFailures) close() {
	select {
	case <-h.stop:
	default:
		close(h.stop)
	}
	<-h.done
}
