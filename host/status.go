package host

import (
	"encoding/json"
	"net/http"
	"time"
)

// BuildInfo names the running binary, for /status and /metrics.
type BuildInfo struct {
	// Version is the release or `git describe` name, such as "v0.3.0" or
	// "v0.3.0-4-g1a2b3c4-dirty"; "" reads "dev".
	Version string
	// Commit is the full commit hash, "" when unknown.
	Commit string
	// Date is the build time (RFC 3339), "" when unknown.
	Date string
}

// The states of BrowserStatus.State.
const (
	// BrowserRunning: a browser taking new workers.
	BrowserRunning = "running"
	// BrowserStarting: a slot without a browser, being launched (at start
	// or after a crash).
	BrowserStarting = "starting"
	// BrowserStandby: a replacement browser loading its pages.
	BrowserStandby = "standby"
	// BrowserDraining: a replaced browser running its last workers.
	BrowserDraining = "draining"
)

// BrowserStatus is one browser of the engine as /status and /metrics show
// it; Options.Browsers reports them.
type BrowserStatus struct {
	// Index is the browser's slot (several entries share one while a
	// replacement stands by or a replaced browser drains).
	Index int `json:"index"`
	// PID is the browser's main process id; 0 while starting.
	PID int `json:"pid"`
	// State is BrowserRunning, BrowserStarting, BrowserStandby or
	// BrowserDraining.
	State string `json:"state"`
	// Workers is the number of live workers in it.
	Workers int `json:"workers"`
	// Capacity is the most workers it runs.
	Capacity int `json:"capacity"`
	// Restarts is how many times the slot's browser died and was restarted.
	Restarts int `json:"restarts"`
	// PSSBytes is the proportional set size of the browser's whole process
	// tree; 0 when unknown (or not asked for).
	PSSBytes int64 `json:"pss_bytes"`
	// Contents are the browser's watched content processes, one per
	// browser user context (a token's, or a pre-loaded page's: token 0).
	Contents []ContentStatus `json:"contents,omitempty"`
	// ContentCrashes counts its content processes that died by themselves
	// (a crash, the OOM killer, a kill from outside); LimitKills those the
	// engine killed for a limit (memory).
	ContentCrashes int64 `json:"content_crashes"`
	LimitKills     int64 `json:"limit_kills"`
}

// ContentStatus is one content process of a browser.
type ContentStatus struct {
	PID int `json:"pid"`
	// Token is the id of the token whose user context it runs (0: none).
	Token       int64  `json:"token"`
	UserContext string `json:"user_context"`
	// MemoryBytes is its anonymous resident memory; MemoryLimitBytes the
	// limit past which it is killed (0: none).
	MemoryBytes      int64 `json:"memory_bytes"`
	MemoryLimitBytes int64 `json:"memory_limit_bytes"`
	// CPUSeconds is the CPU time it used; Niced that it is busy and runs
	// at a lower priority.
	CPUSeconds float64 `json:"cpu_s"`
	Niced      bool    `json:"niced"`
}

// Status is what GET /status answers, as JSON.
type Status struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	BuildDate string `json:"build_date"`
	// Started is when the server was created; Uptime is the time since,
	// in seconds.
	Started time.Time `json:"started"`
	Uptime  float64   `json:"uptime_s"`
	// Ready is what /readyz says; NotReady the reason when it is false.
	Ready    bool   `json:"ready"`
	NotReady string `json:"not_ready,omitempty"`
	// Browsers are the engine's (empty when Options.Browsers is nil).
	Browsers []BrowserStatus `json:"browsers"`
	// Workers and Capacity sum the browsers (Capacity: those running).
	Workers  int `json:"workers"`
	Capacity int `json:"capacity"`
	// Queue is the hello queue; Sessions the sessions past their hello.
	Queue    QueueStatus    `json:"queue"`
	Sessions SessionsStatus `json:"sessions"`
}

// QueueStatus describes the hello queue in a Status.
type QueueStatus struct {
	// Depth is the number of hellos waiting.
	Depth int `json:"depth"`
	// Size is the most that may wait (0: no queue); Timeout how long one
	// waits at most, in seconds.
	Size    int     `json:"size"`
	Timeout float64 `json:"timeout_s"`
}

// SessionsStatus counts the sessions past their hello by state:
// negotiating (queued ones included) until connected, then connected
// until the worker ends.
type SessionsStatus struct {
	Negotiating int64 `json:"negotiating"`
	Connected   int64 `json:"connected"`
}

// Status describes the server now, as GET /status does. It reads the
// browsers' memory when Options.Browsers is set.
func (s *Server) Status() Status {
	b := s.opts.Build
	if b.Version == "" {
		b.Version = "dev"
	}
	st := Status{
		Version:   b.Version,
		Commit:    b.Commit,
		BuildDate: b.Date,
		Started:   s.started.UTC(),
		Uptime:    time.Since(s.started).Seconds(),
		Browsers:  []BrowserStatus{},
		Queue:     QueueStatus{Depth: s.queue.depth(), Size: s.queue.size, Timeout: s.opts.QueueTimeout.Seconds()},
		Sessions: SessionsStatus{
			Negotiating: s.metrics.negotiating.Load(),
			Connected:   s.metrics.connected.Load(),
		},
	}
	if err := s.ready(); err != nil {
		st.NotReady = err.Error()
	} else {
		st.Ready = true
	}
	if s.opts.Browsers != nil {
		st.Browsers = append(st.Browsers, s.opts.Browsers(true)...)
	}
	for _, br := range st.Browsers {
		st.Workers += br.Workers
		if br.State == BrowserRunning {
			st.Capacity += br.Capacity
		}
	}
	return st
}

// serveStatus answers GET /status.
func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	b, err := json.MarshalIndent(s.Status(), "", "  ")
	if err != nil {
		http.Error(w, "encode status: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(append(b, '\n'))
}
