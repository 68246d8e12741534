package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// CPUGroup is a CPU cgroup of the lowest weight that processes can be moved
// into (and back out of): a process in it gets the CPU only when the
// processes outside want little. It works where this process may create
// cgroups under its own: cgroup v1's cpu controller, or a cgroup v2
// hierarchy with the cpu controller delegated.
type CPUGroup struct {
	dir    string // the new group
	parent string // where its processes go back to
}

// NewCPUGroup creates the group name beside this process's own CPU cgroup
// (under it for cgroup v2). The error wraps errors.ErrUnsupported where
// cgroups cannot be used.
func NewCPUGroup(name string) (*CPUGroup, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("create cpu cgroup: %w: %w", errors.ErrUnsupported, err)
	}
	var v1, v2 string
	for line := range bytes.SplitSeq(bytes.TrimSpace(b), []byte("\n")) {
		f := bytes.SplitN(line, []byte(":"), 3)
		if len(f) != 3 {
			continue
		}
		switch {
		case string(f[0]) == "0" && len(f[1]) == 0:
			v2 = string(f[2])
		case bytes.Contains(append(append([]byte(","), f[1]...), ','), []byte(",cpu,")):
			v1 = string(f[2])
		}
	}
	var g CPUGroup
	var weightFile, weight string
	switch {
	case v1 != "" && isDir("/sys/fs/cgroup/cpu"):
		g.parent = filepath.Join("/sys/fs/cgroup/cpu", v1)
		weightFile, weight = "cpu.shares", "2"
	case v2 != "" && hasCPUController(filepath.Join("/sys/fs/cgroup", v2)):
		g.parent = filepath.Join("/sys/fs/cgroup", v2)
		weightFile, weight = "cpu.weight", "1"
	default:
		return nil, fmt.Errorf("create cpu cgroup: %w: no cpu controller", errors.ErrUnsupported)
	}
	g.dir = filepath.Join(g.parent, name)
	if err := os.Mkdir(g.dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("create cpu cgroup: %w", err)
	}
	if err := os.WriteFile(filepath.Join(g.dir, weightFile), []byte(weight), 0); err != nil {
		_ = os.Remove(g.dir)
		return nil, fmt.Errorf("create cpu cgroup: set its weight: %w", err)
	}
	return &g, nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// hasCPUController reports whether the cgroup v2 directory dir hands the
// cpu controller to its children.
func hasCPUController(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	return err == nil && bytes.Contains(append(append([]byte(" "), bytes.TrimSpace(b)...), ' '), []byte(" cpu "))
}

// Add moves process pid (all its threads) into the group.
func (g *CPUGroup) Add(pid int) error {
	if err := os.WriteFile(filepath.Join(g.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		return fmt.Errorf("move %d into the cpu cgroup: %w", pid, err)
	}
	return nil
}

// Remove moves process pid back to this process's own CPU cgroup.
func (g *CPUGroup) Remove(pid int) error {
	if err := os.WriteFile(filepath.Join(g.parent, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		return fmt.Errorf("move %d out of the cpu cgroup: %w", pid, err)
	}
	return nil
}

// Close moves what is left in the group back and removes it.
func (g *CPUGroup) Close() error {
	if b, err := os.ReadFile(filepath.Join(g.dir, "cgroup.procs")); err == nil {
		for f := range bytes.FieldsSeq(b) {
			if pid, err := strconv.Atoi(string(f)); err == nil {
				_ = g.Remove(pid)
			}
		}
	}
	if err := os.Remove(g.dir); err != nil {
		return fmt.Errorf("remove the cpu cgroup: %w", err)
	}
	return nil
}

// RemoveStale removes the empty sibling groups for which stale(name) is
// true (groups left by a process that was killed before its Close).
func (g *CPUGroup) RemoveStale(stale func(name string) bool) {
	ents, err := os.ReadDir(g.parent)
	if err != nil {
		return
	}
	for _, e := range ents {
		if e.IsDir() && filepath.Join(g.parent, e.Name()) != g.dir && stale(e.Name()) {
			_ = os.Remove(filepath.Join(g.parent, e.Name())) // fails while not empty
		}
	}
}
