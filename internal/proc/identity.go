package proc

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// ID identifies one process. Start, Boot and NS are empty where the
// platform does not tell them (outside Linux).
type ID struct {
	// PID is the process id (in the PID namespace NS).
	PID int
	// Start is when the process started, in clock ticks since boot (the
	// 22nd field of /proc/PID/stat); 0 when unknown.
	Start uint64
	// Boot is the kernel's boot id (/proc/sys/kernel/random/boot_id): it
	// changes at every boot and differs between machines.
	Boot string
	// NS names the PID namespace, such as "pid:[4026531836]".
	NS string
}

// Liveness is what Check can tell about a process.
type Liveness int

const (
	// Unknown: the process belongs to another machine, boot or PID
	// namespace (or the platform cannot tell); it may run.
	Unknown Liveness = iota
	// Running: the process runs (and is not a zombie).
	Running
	// Gone: the process exited (or its pid now names another process).
	Gone
)

func (l Liveness) String() string {
	switch l {
	case Running:
		return "running"
	case Gone:
		return "gone"
	}
	return "unknown"
}

var (
	selfOnce sync.Once
	self     ID
)

// Self returns the identity of the calling process.
func Self() ID {
	selfOnce.Do(func() {
		self = ID{PID: os.Getpid(), Boot: bootID(), NS: pidNS()}
		self.Start, _ = startTime(self.PID)
	})
	return self
}

// SameHost reports whether id was taken on this machine, in this boot and
// in the caller's PID namespace, where Check can tell for sure.
func (id ID) SameHost() bool {
	s := Self()
	return s.Boot != "" && id.Boot == s.Boot && id.NS == s.NS
}

// Check tells whether the process id names still runs. It is sure (Running
// or Gone) only for a process of this machine, boot and PID namespace whose
// start time is known; a process of an earlier boot of this machine (same
// namespace name, another boot id) is Gone. Everything else is Unknown,
// except a pid that names no process at all (Gone).
func Check(id ID) Liveness {
	s := Self()
	switch {
	case id.PID <= 0:
		return Gone
	case s.Boot == "" || id.Boot == "":
		// No boot id (another platform, or an identity written by an
		// older geckohost): only the pid can be asked about.
		if !Alive(id.PID) {
			return Gone
		}
		return Unknown
	case id.Boot != s.Boot:
		if id.NS == s.NS {
			return Gone // this machine's namespace, before a reboot
		}
		return Unknown
	case id.NS != s.NS:
		return Unknown
	}
	start, err := startTime(id.PID)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return Gone
	case err != nil:
		return Unknown
	case start != id.Start:
		return Gone // the pid was reused
	}
	if !Alive(id.PID) { // a zombie
		return Gone
	}
	return Running
}

// String formats id as "pid=1 start=2 boot=... ns=..." (the form Parse
// reads and the files geckohost writes hold).
func (id ID) String() string {
	return fmt.Sprintf("pid=%d start=%d boot=%s ns=%s", id.PID, id.Start, id.Boot, id.NS)
}

// Parse reads the form String writes. A bare number is read as a pid alone
// (what older geckohost versions wrote).
func Parse(s string) (ID, error) {
	s = strings.TrimSpace(s)
	if pid, err := strconv.Atoi(s); err == nil {
		return ID{PID: pid}, nil
	}
	var id ID
	seen := false
	for _, f := range strings.Fields(s) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return ID{}, fmt.Errorf("parse process id %q: field %q is not key=value", s, f)
		}
		var err error
		switch k {
		case "pid":
			id.PID, err = strconv.Atoi(v)
			seen = err == nil
		case "start":
			id.Start, err = strconv.ParseUint(v, 10, 64)
		case "boot":
			id.Boot = v
		case "ns":
			id.NS = v
		}
		if err != nil {
			return ID{}, fmt.Errorf("parse process id %q: %s: %w", s, k, err)
		}
	}
	if !seen || id.PID <= 0 {
		return ID{}, fmt.Errorf("parse process id %q: no pid", s)
	}
	return id, nil
}

func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func pidNS() string {
	s, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	return s
}

// startTime returns the process's start time in clock ticks since boot (the
// 22nd field of /proc/PID/stat); the error wraps os.ErrNotExist when there
// is no such process.
func startTime(pid int) (uint64, error) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		return 0, fmt.Errorf("read process start time: no /proc: %w", errors.ErrUnsupported)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
		return 0, fmt.Errorf("read process start time: %w", err)
	}
	f := stat(strconv.Itoa(pid))
	if len(f) < 20 {
		return 0, fmt.Errorf("read process start time of %d: %d fields: %w", pid, len(f), os.ErrNotExist)
	}
	return strconv.ParseUint(string(f[19]), 10, 64)
}
