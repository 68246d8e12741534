package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

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

// statFields returns the fields of /proc/PID/stat after the command name
// (which may hold spaces): fields[0] is the state (field 3).
func statFields(pid int) ([][]byte, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("read /proc/%d/stat: no command name", pid)
	}
	return bytes.Fields(b[i+1:]), nil
}

// startTime returns the process's start time in clock ticks since boot; the
// error wraps os.ErrNotExist when there is no such process.
func startTime(pid int) (uint64, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	if len(f) < 20 {
		return 0, fmt.Errorf("read /proc/%d/stat: %d fields", pid, len(f))
	}
	return strconv.ParseUint(string(f[19]), 10, 64) // field 22
}

// zombie reports whether the process has exited but not been reaped.
func zombie(pid int) bool {
	f, err := statFields(pid)
	return err == nil && len(f) > 0 && len(f[0]) > 0 && (f[0][0] == 'Z' || f[0][0] == 'X')
}

// exists reports whether a live (not zombie) process has pid.
func exists(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	return !zombie(pid)
}
