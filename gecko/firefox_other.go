//go:build unix && !linux

package gecko

import "syscall"

// groupMembers cannot list a group outside Linux (no /proc): while the
// group led by pgid has a process, it returns pgid alone.
func groupMembers(pgid int) []int {
	if syscall.Kill(-pgid, 0) == nil {
		return []int{pgid}
	}
	return nil
}

// helpers cannot list processes outside Linux.
func helpers(int) []int { return nil }
