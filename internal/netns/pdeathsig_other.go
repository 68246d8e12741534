//go:build !linux

package netns

import "os/exec"

func setPdeathsig(cmd *exec.Cmd) {}
