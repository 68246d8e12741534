package gecko

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// sysProcAttr puts Firefox in its own process group (so that its content
// processes can be killed together) and kills it if geckohost dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup sends sig to every process of the group led by pid.
func killGroup(pid int, sig syscall.Signal) error {
	return syscall.Kill(-pid, sig)
}

// setNice gives the process (and the children it starts later) the lowest
// CPU priority.
func setNice(pid int) error {
	return syscall.Setpriority(syscall.PRIO_PROCESS, pid, 19)
}

// groupAlive reports whether a process of the group led by pid is still
// running.
func groupAlive(pid int) bool { return len(groupMembers(pid)) > 0 }

// groupMembers lists the running processes of process group pgid, from
// /proc. Zombies, which a container's PID 1 may never reap, do not count.
func groupMembers(pgid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may contain spaces.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(b[i+1:])
		if len(f) < 3 || f[0][0] == 'Z' || f[0][0] == 'X' {
			continue
		}
		if g, err := strconv.Atoi(string(f[2])); err == nil && g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// groupPSS sums the Pss lines of /proc/<pid>/smaps_rollup over the
// processes of group pgid, in bytes. A process that exits meanwhile does
// not count; a group without any readable process is an error.
func groupPSS(pgid int) (int64, error) {
	var total int64
	read := 0
	var firstErr error
	for _, pid := range groupMembers(pgid) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		kb, ok := pssKiB(b)
		if !ok {
			continue
		}
		total += kb * 1024
		read++
	}
	if read == 0 {
		if firstErr == nil {
			firstErr = os.ErrNotExist
		}
		return 0, fmt.Errorf("group pss of %d: %w", pgid, firstErr)
	}
	return total, nil
}

// pssKiB finds the "Pss:  1234 kB" line of an smaps_rollup file.
func pssKiB(b []byte) (int64, bool) {
	for _, line := range bytes.Split(b, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte("Pss:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			return 0, false
		}
		n, err := strconv.ParseInt(string(f[0]), 10, 64)
		return n, err == nil
	}
	return 0, false
}
