// Package proc reads what geckohost needs to know about processes from
// Linux's /proc: the members of a process group, whether a process is
// alive, and the CPU time it used. Elsewhere it reports nothing (no
// members, alive unknown: true, no CPU time).
//
// It also identifies processes across time (ID): a pid together with the
// process's start time, the boot and the PID namespace it was seen in,
// since a pid alone is reused. geckohost records the identity of each
// serve run in the database (to tell whether the sessions of an earlier run
// can still be live) and the owner of each Firefox profile directory it
// makes (to remove those of processes killed without a chance to clean up).
package proc

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"syscall"
	"time"
)

// stat returns the fields of /proc/pid/stat after the command name (state
// first), or nil when it cannot be read.
func stat(pid string) [][]byte {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return nil
	}
	// pid (comm) state ppid pgrp ...; comm may contain spaces and ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return bytes.Fields(b[i+1:])
}

// dead reports whether a stat state is a zombie or a dead process: a
// zombie, which a container's PID 1 may never reap, counts as gone.
func dead(state []byte) bool { return state[0] == 'Z' || state[0] == 'X' }

// GroupMembers lists the running processes of process group pgid, from
// /proc. Zombies do not count.
func GroupMembers(pgid int) []int {
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
		f := stat(e.Name())
		if len(f) < 3 || dead(f[0]) {
			continue
		}
		if g, err := strconv.Atoi(string(f[2])); err == nil && g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Alive reports whether a live (not zombie) process has pid.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	f := stat(strconv.Itoa(pid))
	return len(f) == 0 || !dead(f[0])
}

// clockTicks is Linux's USER_HZ, the unit of /proc/pid/stat's CPU times
// (100 on every architecture Go supports).
const clockTicks = 100

// CPU returns the CPU time (user + system) process pid has used so far,
// from /proc (0 when it cannot be read).
func CPU(pid int) time.Duration {
	f := stat(strconv.Itoa(pid))
	// state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
	// cmajflt utime stime: utime and stime are fields 11 and 12 here.
	if len(f) < 13 {
		return 0
	}
	u, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	s, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(u+s) * time.Second / clockTicks
}
