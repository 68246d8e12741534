package core

import (
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/geckohost/geckohost/internal/proc"
)

// CPU pacing: a content process (Firefox) or renderer (Chromium) that keeps
// a core busy is moved into a CPU cgroup of the lowest weight (where this
// process may make one: see proc.CPUGroup; else it is reniced to BusyNice),
// so that a token's busy workers cannot starve other tokens; it is moved
// back once quiet. Each engine's guard calls Pace for each process it
// watches; Pacing holds the mechanism, PaceState one process's history.
const (
	// BusyShare is the share of one core above which a process counts as
	// busy, measured over BusyWindow.
	BusyShare  = 0.5
	BusyWindow = 2 * time.Second
	// BusyNice is the nice value a busy process gets where no cgroup can
	// be used.
	BusyNice = 19
	// QuietFor: a busy process gets its priority back after being under
	// BusyShare this long.
	QuietFor = 5 * time.Second
)

// groups numbers the cgroups of this process: two pools in one process (the
// tests run several) each have their own.
var groups atomic.Int64

// Pacing lowers the CPU priority of the busy processes of one pool. Its
// methods are safe to call from one goroutine at a time per PaceState.
type Pacing struct {
	group *proc.CPUGroup // nil: renice
	log   *slog.Logger
}

// NewPacing makes the pool's cgroup for busy processes
// (geckohost-<pid>-busy-<n> beside this process's own), removing those that
// geckohost processes no longer alive left; where no cgroup can be made it
// renices (and says so at debug level). It never fails.
func NewPacing(log *slog.Logger) *Pacing {
	pc := &Pacing{log: log}
	name := fmt.Sprintf("geckohost-%d-busy-%d", os.Getpid(), groups.Add(1))
	cg, err := proc.NewCPUGroup(name)
	if err != nil {
		log.Debug("no cpu cgroup for busy content processes: renicing them", "err", err)
		return pc
	}
	pc.group = cg
	cg.RemoveStale(func(name string) bool { // of a geckohost killed
		var pid int
		_, err := fmt.Sscanf(name, "geckohost-%d-busy", &pid)
		return err == nil && !proc.Alive(pid)
	})
	return pc
}

// Close moves what is left in the cgroup back and removes it.
func (pc *Pacing) Close() {
	if pc == nil || pc.group == nil {
		return
	}
	if err := pc.group.Close(); err != nil {
		pc.log.Debug("remove the cpu cgroup", "err", err)
	}
}

// PaceState is one process's pacing history. Its zero value is a process
// not yet looked at.
type PaceState struct {
	// at and base: the time and CPU time at the start of the busy window.
	at    time.Time
	base  time.Duration
	niced bool
	quiet time.Time // since when it is under BusyShare (while niced)
}

// Niced reports whether the process is busy and runs at a lower priority.
func (s *PaceState) Niced() bool { return s.niced }

// Pace looks at process pid, which has used cpu so far, at now: once it has
// been over BusyShare for a window it is lowered, once under it for
// QuietFor it is restored. attrs name it in the debug log lines.
func (pc *Pacing) Pace(s *PaceState, pid int, cpu time.Duration, now time.Time, attrs ...any) {
	if s.at.IsZero() {
		s.at, s.base = now, cpu
		return
	}
	span := now.Sub(s.at)
	if span < BusyWindow {
		return
	}
	share := float64(cpu-s.base) / float64(span)
	s.at, s.base = now, cpu
	switch {
	case share >= BusyShare && !s.niced:
		if err := pc.lower(pid); err != nil {
			pc.log.Debug("lower a busy process's priority", append(attrs, "pid", pid, "err", err)...)
		}
		s.niced = true
		s.quiet = time.Time{}
		pc.log.Debug("busy content process: lower priority", append(attrs, "pid", pid, "cpu_share", share)...)
	case share >= BusyShare:
		s.quiet = time.Time{}
		if pc.group == nil {
			_ = proc.Renice(pid, BusyNice) // threads started since
		}
	case s.niced && s.quiet.IsZero():
		s.quiet = now
	case s.niced && now.Sub(s.quiet) >= QuietFor:
		if err := pc.restore(pid); err != nil {
			pc.log.Debug("restore a process's priority", append(attrs, "pid", pid, "err", err)...)
		}
		s.niced = false
	}
}

// lower moves pid into the cgroup, else renices it.
func (pc *Pacing) lower(pid int) error {
	if pc.group != nil {
		if err := pc.group.Add(pid); err == nil {
			return nil
		}
	}
	return proc.Renice(pid, BusyNice)
}

// restore moves pid out of the cgroup, else renices it back to 0.
func (pc *Pacing) restore(pid int) error {
	if pc.group != nil {
		if err := pc.group.Remove(pid); err == nil {
			return nil
		}
	}
	return proc.Renice(pid, 0)
}
