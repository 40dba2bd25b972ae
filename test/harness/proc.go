package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// proc is one started child process, reaped by a goroutine so that its exit
// can be waited for with a deadline.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // from cmd.Wait, valid once done is closed
}

func startProc(cmd *exec.Cmd) (*proc, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitCode is the exit status once exited, -1 if killed by a signal.
func (p *proc) exitCode() int { return p.cmd.ProcessState.ExitCode() }

// waitExit waits up to d for the process to end.
func (p *proc) waitExit(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// stop sends SIGTERM, waits up to grace, then SIGKILLs. It reports whether the
// process ended on its own after SIGTERM.
func (p *proc) stop(grace time.Duration) (graceful bool, err error) {
	if p.exited() {
		return true, nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return false, fmt.Errorf("SIGTERM pid %d: %w", p.pid(), err)
	}
	if p.waitExit(grace) {
		return true, nil
	}
	return false, p.kill()
}

// kill sends SIGKILL and waits for the process to be reaped.
func (p *proc) kill() error {
	if p.exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("SIGKILL pid %d: %w", p.pid(), err)
	}
	if !p.waitExit(10 * time.Second) {
		return fmt.Errorf("pid %d still running 10s after SIGKILL", p.pid())
	}
	return nil
}
