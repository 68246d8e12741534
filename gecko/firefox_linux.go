package gecko

import (
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
