package core

import (
	"fmt"
	"os/exec"
)

// FindBinary returns path when it names an executable file, or, when path
// is "", the first of candidates (names looked up on PATH, or absolute
// paths) found. name names the browser in the error, which wraps notFound.
func FindBinary(name, path string, candidates []string, notFound error) (string, error) {
	if path != "" {
		p, err := exec.LookPath(path)
		if err != nil {
			return "", fmt.Errorf("find %s %q: %w (%w)", name, path, notFound, err)
		}
		return p, nil
	}
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("find %s on PATH: %w", name, notFound)
}
