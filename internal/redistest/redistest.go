package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/geckohost/geckohost/internal/syncbuf"
	"github.com/geckohost/geckohost/internal/testenv"
)

// startTimeout bounds how long Start and Restart wait for the server to
// answer PING; stopTimeout bounds Stop's wait for the process to exit
// before it is killed.
const (
	startTimeout = 20 * time.Second
	stopTimeout  = 10 * time.Second
)

// Server is one redis-server process (or none, between Stop and Restart).
type Server struct {
	// Addr is 127.0.0.1:PORT; it stays the same across Restart.
	Addr string

	bin string
	dir string

	mu     sync.Mutex
	cmd    *exec.Cmd
	cancel context.CancelFunc
	done   chan struct{} // closed when cmd has been waited for
	out    *syncbuf.Buffer
}

// Binary returns the redis-server to run: /usr/bin/redis-server, else the
// one on PATH, or an error saying how to install it.
func Binary() (string, error) {
	if p, err := exec.LookPath("/usr/bin/redis-server"); err == nil {
		return p, nil
	}
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("redis-server not found (Debian: apt-get install redis-server)")
}

// Start starts a redis-server on a free loopback port with its data in a
// temporary directory of t, and stops it when t ends. It skips t when
// redis-server is not installed.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		testenv.Skip(t, "redis-server", "apt-get install redis-server")
	}
	s := &Server{bin: bin, dir: t.TempDir()}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("stop redis-server: %v", err)
		}
	})
	var lastErr error
	for range 5 { // another process may take the free port before redis does
		port, err := freePort()
		if err != nil {
			t.Fatalf("find a free port: %v", err)
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if lastErr = s.start(); lastErr == nil {
			return s
		}
	}
	t.Fatalf("start redis-server: %v", lastErr)
	return nil
}

// URL returns the server's redis:// URL (database 0).
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Stop stops the server (SIGTERM, so it writes its data) and waits for it.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Fatalf("stop redis-server: %v", err)
	}
}

// Restart starts the server again on the same address with the same data.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		err := s.start()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("restart redis-server: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // the port may still be in TIME_WAIT or taken
	}
}

// Output returns what the server wrote so far (its log).
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out == nil {
		return ""
	}
	return s.out.String()
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("redis-server already running")
	}
	_, port, _ := net.SplitHostPort(s.Addr)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, s.bin,
		"--bind", "127.0.0.1", "--port", port, "--dir", s.dir,
		"--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
		"--daemonize", "no", "--protected-mode", "no", "--logfile", "",
		"--loglevel", "notice")
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = stopTimeout
	setPdeathsig(cmd)
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		return fmt.Errorf("run %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	if err := waitPing(s.Addr, done); err != nil {
		cancel()
		<-done
		return fmt.Errorf("%w; its output: %s", err, strings.TrimSpace(out.String()))
	}
	s.cmd, s.cancel, s.done, s.out = cmd, cancel, done, out
	return nil
}

func (s *Server) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	s.cancel() // SIGTERM; WaitDelay kills it after stopTimeout
	select {
	case <-s.done:
	case <-time.After(stopTimeout + 5*time.Second):
		return fmt.Errorf("redis-server (pid %d) did not exit", s.cmd.Process.Pid)
	}
	s.cmd, s.cancel, s.done = nil, nil, nil
	return nil
}

// waitPing waits until the server at addr answers PING, or the process
// exits (done closed), or startTimeout passes.
func waitPing(addr string, done <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	for {
		if err := ping(addr); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("redis-server at %s does not answer: %w", addr, err)
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server exited at start")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
