package core

import (
	"syscall"

	"github.com/geckohost/geckohost/internal/proc"
)

// sysProcAttr puts a browser in its own process group (so that its content
// processes or renderers can be killed together) and kills it if geckohost
// dies.
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
func groupAlive(pid int) bool { return len(proc.GroupMembers(pid)) > 0 }
