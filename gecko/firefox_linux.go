package gecko

import (
	"bytes"
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
// running (zombies, which a container's PID 1 may never reap, do not
// count).
func groupAlive(pid int) bool {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(b[i+1:])
		if len(f) < 3 || f[0][0] == 'Z' || f[0][0] == 'X' {
			continue
		}
		if pgrp, err := strconv.Atoi(string(f[2])); err == nil && pgrp == pid {
			return true
		}
	}
	return false
}
