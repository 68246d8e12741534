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

// helpers lists the running processes Firefox started outside its process
// group: its crash helper (/usr/lib/firefox*/crashhelper PID ..., which
// detaches into a session of its own) for the Firefox whose pid is pid.
func helpers(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := []byte(strconv.Itoa(pid))
	var pids []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err != nil || string(bytes.TrimSpace(comm)) != "crashhelper" {
			continue
		}
		args, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		argv := bytes.Split(args, []byte{0})
		if len(argv) < 2 || !bytes.Equal(argv[1], want) {
			continue
		}
		if st, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil {
			if i := bytes.LastIndexByte(st, ')'); i >= 0 && i+2 < len(st) && (st[i+2] == 'Z' || st[i+2] == 'X') {
				continue
			}
		}
		pids = append(pids, p)
	}
	return pids
}
