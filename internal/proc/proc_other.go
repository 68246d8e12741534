//go:build unix && !linux

package proc

import (
	"errors"
	"syscall"
)

// Outside Linux there is no /proc: identities hold the pid alone and Check
// says Dead or Unknown.

func bootID() string { return "" }

func pidNS() string { return "" }

func startTime(int) (uint64, error) { return 0, errors.ErrUnsupported }

func zombie(int) bool { return false }

func exists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
