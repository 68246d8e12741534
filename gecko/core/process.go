package core

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Bounds of the clean-up after a browser process exited.
const (
	// groupExitTimeout bounds the wait for a killed process group to exit.
	groupExitTimeout = 5 * time.Second
	// outputDrainTimeout bounds waiting for the output reader after the
	// process group is dead.
	outputDrainTimeout = 2 * time.Second
)

// Command says how to start a browser process and what it is called. The
// engine fills it in; Start runs it.
type Command struct {
	// Name names the browser in log lines and errors ("firefox",
	// "chromium").
	Name string
	// Path is the binary; Args its arguments.
	Path string
	Args []string
	// Env is the whole environment; nil inherits geckohost's.
	Env []string
	// Dir is the browser's profile directory, removed after exit unless
	// Keep is set; DirName names it in log lines ("profile", "user data
	// dir").
	Dir     string
	DirName string
	// Keep, when set, keeps Dir after exit and is called on it instead
	// (Firefox's template builds clean their profile).
	Keep func(dir string)
	// Nice lowers the process's CPU priority once it runs.
	Nice bool
	// Prefix starts the output line that carries the browser's protocol
	// URL (WaitURL returns the rest of the line).
	Prefix string
	// Helpers, when set, lists the processes the browser started outside
	// its process group (killed and waited for with the group).
	Helpers func(pid int) []int
	// Exited is the sentinel ExitError and Err wrap when the process
	// ended.
	Exited error
	// WaitDelay is how long after SIGTERM the process is killed.
	WaitDelay time.Duration
	// Logger receives the output lines at debug level and the lifecycle
	// events; nil discards.
	Logger *slog.Logger
}

// Process is one running browser process: started by exec.CommandContext in
// a process group of its own (Pdeathsig: killed if geckohost dies), stopped
// with SIGTERM and, after Command.WaitDelay, SIGKILL. One goroutine owns it:
// it waits for the process, kills what is left of its group (and helpers),
// drains its output and removes its profile directory, in that order.
// Another (Watch) ties the browser's protocol connection to the process.
// Its methods are safe for concurrent use.
type Process struct {
	c    Command
	cmd  *exec.Cmd
	log  *slog.Logger
	stop context.CancelFunc // cancels the exec context: SIGTERM
	url  chan string

	done     chan struct{} // closed when the process exited or the link was lost
	doneOnce sync.Once
	exited   chan struct{} // closed after Wait, group kill, output drained, dir removed
	watchEnd chan struct{} // closed when the watch goroutine returned

	mu      sync.Mutex
	err     error
	closing bool

	closeOnce sync.Once
	closeErr  error
}

// Start starts the browser process c describes, its output (stdout and
// stderr) read by a goroutine of the Process. On error nothing is left:
// Dir is removed (unless Keep is set).
func Start(c Command) (*Process, error) {
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	removeDir := func() {
		if c.Keep == nil {
			_ = os.RemoveAll(c.Dir)
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		removeDir()
		return nil, fmt.Errorf("create %s output pipe: %w", c.Name, err)
	}
	procCtx, stop := context.WithCancel(context.Background())
	cmd := exec.CommandContext(procCtx, c.Path, c.Args...)
	cmd.Env = c.Env
	cmd.Stdout = w
	cmd.Stderr = w
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = c.WaitDelay
	if err := cmd.Start(); err != nil {
		stop()
		_ = r.Close()
		_ = w.Close()
		removeDir()
		return nil, fmt.Errorf("start %s: %w", c.Name, err)
	}
	_ = w.Close() // the children hold the write end now
	if c.Nice {
		if err := setNice(cmd.Process.Pid); err != nil {
			log.Debug("lower "+c.Name+" priority", "err", err)
		}
	}
	p := &Process{
		c:        c,
		cmd:      cmd,
		log:      log.With("pid", cmd.Process.Pid),
		stop:     stop,
		url:      make(chan string, 1),
		done:     make(chan struct{}),
		exited:   make(chan struct{}),
		watchEnd: make(chan struct{}),
	}
	outDone := make(chan struct{})
	go p.readOutput(r, outDone)
	go p.wait(r, outDone)
	return p, nil
}

// WaitURL waits for the output line that starts with Command.Prefix and
// returns the rest of it (the protocol URL). The error is ctx's, or
// ExitError's when the process exited first.
func (p *Process) WaitURL(ctx context.Context) (string, error) {
	select {
	case u := <-p.url:
		return u, nil
	case <-p.exited:
		return "", p.ExitError()
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// readOutput logs the browser's output lines at debug level and sends the
// protocol URL once. It ends at EOF, when every process holding the pipe
// is gone.
func (p *Process) readOutput(r io.Reader, outDone chan<- struct{}) {
	defer close(outDone)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	sent := false
	for sc.Scan() {
		line := sc.Text()
		p.log.Debug(p.c.Name+" output", "line", line)
		if !sent {
			if i := strings.Index(line, p.c.Prefix); i >= 0 {
				p.url <- strings.TrimSpace(line[i+len(p.c.Prefix):])
				sent = true
			}
		}
	}
}

// wait owns the process: it waits for it, kills what is left of its
// process group, closes done, drains the output, removes the profile and
// closes exited.
func (p *Process) wait(r *os.File, outDone <-chan struct{}) {
	defer close(p.exited)
	err := p.cmd.Wait()
	// Content processes and renderers may outlive the parent (a kill -9
	// of the parent leaves them): kill the whole group and the helpers
	// outside it, and wait (bounded) until all are gone, so that none
	// still writes to the profile removed below and Close returns with
	// nothing left running.
	pid := p.cmd.Process.Pid
	_ = killGroup(pid, syscall.SIGKILL)
	for deadline := time.Now().Add(groupExitTimeout); time.Now().Before(deadline); {
		var hs []int
		if p.c.Helpers != nil {
			hs = p.c.Helpers(pid)
		}
		for _, h := range hs {
			_ = syscall.Kill(h, syscall.SIGKILL)
		}
		if len(hs) == 0 && !groupAlive(pid) {
			break
		}
		time.Sleep(5 * time.Millisecond) // polling the kernel's process list: no event to wait on
	}
	p.stop()
	if p.isClosing() {
		p.log.Debug(p.c.Name+" exited", "status", err)
	} else {
		p.log.Warn(p.c.Name+" exited unexpectedly", "status", err)
	}
	p.end(p.ExitError()) // Done at once; the clean-up below may take a while
	t := time.NewTimer(outputDrainTimeout)
	select {
	case <-outDone:
	case <-t.C:
		p.log.Warn(p.c.Name + " output still open after exit; closing it")
	}
	t.Stop()
	_ = r.Close()
	<-outDone
	if p.c.Keep != nil {
		p.c.Keep(p.c.Dir)
	} else if rerr := os.RemoveAll(p.c.Dir); rerr != nil {
		p.log.Warn("remove "+p.c.Name+" "+p.c.DirName, "dir", p.c.Dir, "err", rerr)
	}
}

// Link is a browser's protocol connection (BiDi, CDP) as Watch ties it to
// the process.
type Link interface {
	// Lost is closed when the connection is lost.
	Lost() <-chan struct{}
	// LostError says why; Err returns it (it wraps the engine's sentinel).
	LostError() error
	// Release ends the connection; Watch calls it once the process is
	// gone.
	Release()
}

// Watch ties l to the process: when l is lost, Done closes and the
// browser is killed (unless Close is under way); when the process exits, l
// is released. Call it once, after the connection is up; Close waits for
// it.
func (p *Process) Watch(l Link) {
	go func() {
		defer close(p.watchEnd)
		select {
		case <-l.Lost():
			p.end(l.LostError())
			if !p.isClosing() {
				// A browser we cannot drive is useless: kill it. During
				// Close the connection may end because the browser was
				// asked to quit, and Close itself sees to the process.
				p.kill()
			}
			<-p.exited
		case <-p.exited:
		}
		l.Release()
	}()
}

// Abort kills a process whose start failed (its connection never came up)
// and waits until it and its profile are gone; Err stays nil.
func (p *Process) Abort() {
	p.mu.Lock()
	p.closing = true // our kill; the caller's error says why
	p.mu.Unlock()
	p.kill()
	<-p.exited
}

func (p *Process) isClosing() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closing
}

// end records why the browser ended (unless Close asked for it) and closes
// done.
func (p *Process) end(err error) {
	p.doneOnce.Do(func() {
		p.mu.Lock()
		if !p.closing {
			p.err = err
		}
		p.mu.Unlock()
		close(p.done)
	})
}

// kill sends SIGKILL to the whole process group.
func (p *Process) kill() { _ = killGroup(p.cmd.Process.Pid, syscall.SIGKILL) }

// ExitError describes the process's exit (it wraps Command.Exited); call
// it after Exited is closed.
func (p *Process) ExitError() error {
	if st := p.cmd.ProcessState; st != nil {
		return fmt.Errorf("%w: %s", p.c.Exited, st)
	}
	return p.c.Exited
}

// PID returns the browser's process id (also its process group id).
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Log returns the process's logger (with its pid).
func (p *Process) Log() *slog.Logger { return p.log }

// State returns the process's exit state (nil until it exited).
func (p *Process) State() *os.ProcessState {
	select {
	case <-p.exited:
		return p.cmd.ProcessState
	default:
		return nil
	}
}

// Done returns a channel closed as soon as the process exited or its link
// was lost (the process is then killed too).
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited returns a channel closed once the process and its group are gone,
// its output drained and its profile removed.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err returns why the browser ended: nil while it runs, after Abort and
// after a requested Close, else an error wrapping Command.Exited or the
// link's LostError.
func (p *Process) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Close stops the browser: quit (when not nil and the browser still runs:
// the engine's protocol request to exit, which returns when the browser
// exited or it gave up waiting), then SIGTERM, and SIGKILL after
// Command.WaitDelay. It returns once the process group is gone, the output
// reader and the watcher have ended and the profile is removed. If ctx ends
// first, the group is killed at once and Close still waits for the
// clean-up. It is idempotent; later calls return the first call's result.
func (p *Process) Close(ctx context.Context, quit func(context.Context)) error {
	p.closeOnce.Do(func() { p.closeErr = p.close(ctx, quit) })
	<-p.watchEnd
	return p.closeErr
}

func (p *Process) close(ctx context.Context, quit func(context.Context)) error {
	p.mu.Lock()
	p.closing = true
	p.mu.Unlock()
	if quit != nil {
		select {
		case <-p.done:
		default:
			quit(ctx)
		}
	}
	p.stop() // SIGTERM unless exited; exec sends SIGKILL after WaitDelay
	var err error
	select {
	case <-p.exited:
	case <-ctx.Done():
		p.kill()
		<-p.exited
		err = fmt.Errorf("close %s: %w", p.c.Name, ctx.Err())
	}
	p.end(nil)
	return err
}
