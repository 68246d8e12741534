package gecko

import (
	"bytes"
	"os"
	"strconv"

	"github.com/geckohost/geckohost/internal/proc"
)

// groupMembers lists the running processes of process group pgid.
func groupMembers(pgid int) []int { return proc.GroupMembers(pgid) }

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
		if argv := bytes.Split(args, []byte{0}); len(argv) < 2 || !bytes.Equal(argv[1], want) {
			continue
		}
		if proc.Alive(p) {
			pids = append(pids, p)
		}
	}
	return pids
}
