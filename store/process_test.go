package store

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/geckohost/geckohost/domain"
	"github.com/geckohost/geckohost/internal/leaktest"
)

// helperEnv makes the test binary act as a second process that opens the
// store at the named path and adds tokens (see TestMain).
const helperEnv = "GECKOHOST_STORE_TEST_HELPER"

// runHelper is the second process: open, add 20 tokens named after the
// process id, close.
func runHelper(path string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := Open(ctx, path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = db.Close() }()
	for i := range 20 {
		if _, _, err := db.AddToken(ctx, domain.NewToken{Name: fmt.Sprintf("p%d-%d", os.Getpid(), i)}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

// TestOpenTwoProcesses runs migrations and writes from several processes
// at once on one new file.
func TestOpenTwoProcesses(t *testing.T) {
	leaktest.Check(t)
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "shared.db")
	const procs = 3
	var wg sync.WaitGroup
	errs := make([]error, procs)
	outs := make([][]byte, procs)
	for i := range procs {
		wg.Go(func() {
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"="+path)
			cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
			cmd.WaitDelay = 5 * time.Second
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			outs[i], errs[i] = cmd.CombinedOutput()
		})
	}
	wg.Wait()
	for i := range procs {
		if errs[i] != nil {
			t.Errorf("process %d: %v: %s", i, errs[i], outs[i])
		}
	}
	db := openTest(t, path)
	toks, err := db.ListTokens(ctx)
	if err != nil || len(toks) != procs*20 {
		t.Errorf("got %d tokens, %v; want %d", len(toks), err, procs*20)
	}
}

func BenchmarkLookupToken(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(b.TempDir(), "db"))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	var secret string
	for i := range 100 {
		if _, secret, err = db.AddToken(ctx, domain.NewToken{Name: fmt.Sprintf("t%d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := db.LookupToken(ctx, secret); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSaveSession(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(b.TempDir(), "db"))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	s := domain.Session{WorkerID: "w", TokenName: "t", State: domain.StateNegotiating, Created: time.Now()}
	i := 0
	for b.Loop() {
		i++
		s.WorkerID = fmt.Sprintf("w%d", i/4)
		s.State = []string{domain.StateNegotiating, domain.StateAnswered, domain.StateConnected, domain.StateEnded}[i%4]
		if err := db.SaveSession(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
}
