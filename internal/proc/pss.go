package proc

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// GroupPSS returns the proportional set size, in bytes, of process group
// pgid: the sum of the Pss lines of /proc/<pid>/smaps_rollup over its
// running processes. A process that exits meanwhile does not count; a group
// with no readable process (or no /proc) is an error.
func GroupPSS(pgid int) (int64, error) {
	var total int64
	read := 0
	firstErr := error(os.ErrNotExist)
	for _, pid := range GroupMembers(pgid) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
		if err != nil {
			if read == 0 {
				firstErr = err
			}
			continue
		}
		if kb, ok := pssKiB(b); ok {
			total += kb * 1024
			read++
		}
	}
	if read == 0 {
		return 0, fmt.Errorf("pss of process group %d: %w", pgid, firstErr)
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
