package store

import (
	"os"
	"testing"

	"github.com/geckohost/geckohost/internal/leaktest"
)

// TestMain fails the run when goroutines outlive the tests.
func TestMain(m *testing.M) {
	if path := os.Getenv(helperEnv); path != "" {
		os.Exit(runHelper(path))
	}
	snap := leaktest.Take()
	os.Exit(snap.Code(m.Run()))
}
