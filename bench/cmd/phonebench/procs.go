package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one `kaopu phone` process. Its stdout is kept (and copied to
// its log file with stderr) so that the driver can wait for a line.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}

	mu    sync.Mutex
	out   strings.Builder
	added chan struct{} // closed and replaced at each new line
}

// startProc starts argv with stdout and stderr in logPath and notes its
// pid in pidFile (bench/run.sh stops what is listed there if this driver
// is killed).
func startProc(name, logPath, pidFile string, argv ...string) (*proc, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		lf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), added: make(chan struct{})}
	if pidFile != "" {
		if f, err := os.OpenFile(pidFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintf(f, "%d %s\n", cmd.Process.Pid, name)
			f.Close()
		}
	}
	go func() {
		sc := bufio.NewScanner(io.TeeReader(pipe, lf))
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			close(p.added)
			p.added = make(chan struct{})
			p.mu.Unlock()
		}
		cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stdout is what the process printed so far.
func (p *proc) stdout() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitLine waits until a line starting with prefix is printed, and returns
// when it was seen.
func (p *proc) waitLine(prefix string, limit time.Duration) (time.Time, error) {
	deadline := time.After(limit)
	for {
		p.mu.Lock()
		text, added := p.out.String(), p.added
		p.mu.Unlock()
		for _, l := range strings.Split(text, "\n") {
			if strings.HasPrefix(l, prefix) {
				return time.Now(), nil
			}
		}
		select {
		case <-added:
		case <-p.done:
			return time.Time{}, fmt.Errorf("%s exited (%v) before printing %q", p.name, p.cmd.ProcessState, prefix)
		case <-deadline:
			return time.Time{}, fmt.Errorf("%s: no %q within %v", p.name, prefix, limit)
		}
	}
}

// wait waits for the process to exit, at most limit, then stops it.
func (p *proc) wait(limit time.Duration) error {
	select {
	case <-p.done:
		if c := p.cmd.ProcessState.ExitCode(); c != 0 {
			return fmt.Errorf("%s exited with %d", p.name, c)
		}
		return nil
	case <-time.After(limit):
		p.stop()
		return fmt.Errorf("%s still running after %v; stopped", p.name, limit)
	}
}

// stop sends SIGTERM to the process (by its id), then SIGKILL after 3 s.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		_ = syscall.Kill(p.pid(), syscall.SIGKILL)
		<-p.done
	}
}

// cpuTicks is the process's utime+stime so far, in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseProcStat(b)
}

// machineTicks is the busy and total jiffies of all CPUs.
func machineTicks() (busy, total int64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	return parseMachineStat(b)
}
