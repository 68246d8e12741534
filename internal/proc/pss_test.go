package proc

import (
	"os"
	"syscall"
	"testing"
)

func TestGroupPSS(t *testing.T) {
	if _, err := os.Stat("/proc/self/smaps_rollup"); err != nil {
		t.Skip("no /proc/self/smaps_rollup")
	}
	n, err := GroupPSS(syscall.Getpgrp())
	if err != nil || n <= 0 {
		t.Fatalf("GroupPSS(own group) = %d, %v", n, err)
	}
	if _, err := GroupPSS(1 << 30); err == nil {
		t.Fatal("GroupPSS of no group succeeded")
	}
}

func TestPssKiB(t *testing.T) {
	if kb, ok := pssKiB([]byte("Rss:  900 kB\nPss:   123 kB\nShared: 4 kB\n")); !ok || kb != 123 {
		t.Fatalf("pssKiB = %d, %v", kb, ok)
	}
	if _, ok := pssKiB([]byte("Rss: 1 kB\n")); ok {
		t.Fatal("pssKiB without a Pss line")
	}
}
