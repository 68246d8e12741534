//go:build unix && !linux

package core

import "syscall"

// sysProcAttr puts a browser in its own process group (so that its content
// processes can be killed together). There is no Pdeathsig outside Linux:
// a browser outlives a geckohost killed with SIGKILL there.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// killGroup sends sig to every process of the group led by pid.
func killGroup(pid int, sig syscall.Signal) error {
	return syscall.Kill(-pid, sig)
}

// setNice gives the process the lowest CPU priority.
func setNice(pid int) error {
	return syscall.Setpriority(syscall.PRIO_PROCESS, pid, 19)
}

// groupAlive reports whether a process of the group led by pid is still
// there (zombies count: there is no portable way to tell them apart).
func groupAlive(pid int) bool {
	return syscall.Kill(-pid, 0) == nil
}
