package proc

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// Identify returns the identity of the running process pid (its start
// time, boot and namespace), for Check to tell later whether it still runs.
func Identify(pid int) (ID, error) {
	s := Self()
	start, err := startTime(pid)
	if err != nil {
		return ID{}, err
	}
	return ID{PID: pid, Start: start, Boot: s.Boot, NS: s.NS}, nil
}

// AnonRSS returns the anonymous resident memory of process pid in bytes
// (RssAnon of /proc/pid/status: its heap, without the shared libraries and
// files it maps).
func AnonRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("read memory of %d: %w", pid, err)
	}
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		v, ok := bytes.CutPrefix(line, []byte("RssAnon:"))
		if !ok {
			continue
		}
		f := bytes.Fields(v)
		if len(f) == 0 {
			break
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			break
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("read memory of %d: no RssAnon", pid)
}

// Renice sets the nice value of every thread of process pid (Linux's
// priorities are per thread; threads started later inherit their
// creator's). Raising a priority back (a lower value) needs CAP_SYS_NICE.
func Renice(pid, nice int) error {
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return fmt.Errorf("renice %d: %w", pid, err)
	}
	var first error
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice); err != nil && first == nil {
			first = fmt.Errorf("renice %d thread %d: %w", pid, tid, err)
		}
	}
	return first
}
