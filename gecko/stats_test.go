//go:build linux

package gecko

import (
	"syscall"
	"testing"
)

// TestGroupPSS reads the test's own process group.
func TestGroupPSS(t *testing.T) {
	n, err := GroupPSS(syscall.Getpgrp())
	if err != nil || n <= 0 {
		t.Fatalf("GroupPSS(own group) = %d, %v", n, err)
	}
	if _, err := GroupPSS(0); err == nil {
		t.Fatal("GroupPSS(0) succeeded")
	}
	if kb, ok := pssKiB([]byte("Rss:  900 kB\nPss:   123 kB\nShared: 4 kB\n")); !ok || kb != 123 {
		t.Fatalf("pssKiB = %d, %v", kb, ok)
	}
	if _, ok := pssKiB([]byte("Rss: 1 kB\n")); ok {
		t.Fatal("pssKiB without a Pss line")
	}
}
