package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one external process started by the bench (a server or sipp),
// in its own process group so that it and its children (Kamailio forks
// workers) are stopped together, by group id, and nothing else is.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error // valid after done is closed
}

// procs tracks every process the bench started, so that all of them are
// stopped at the end, also on failure. The pid file lets bench/run.sh stop
// them too if this driver itself is killed.
type procs struct {
	mu      sync.Mutex
	list    []*proc
	pidFile string
}

func (ps *procs) start(name, logPath string, dir string, argv ...string) (*proc, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout = lf
	cmd.Stderr = lf
	cmd.Stdin = nil
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: lf, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	ps.mu.Lock()
	ps.list = append(ps.list, p)
	ps.mu.Unlock()
	if ps.pidFile != "" {
		if f, err := os.OpenFile(ps.pidFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintf(f, "%d %s\n", cmd.Process.Pid, name)
			f.Close()
		}
	}
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// wait waits for the process to exit or ctx to end; on ctx end it stops it.
func (p *proc) wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		p.stop(2 * time.Second)
		return ctx.Err()
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	if !p.alive() {
		return
	}
	pgid := p.pid()
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
	}
	// Kamailio children may outlive the main process by a moment.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

func (ps *procs) stopAll() {
	ps.mu.Lock()
	list := append([]*proc(nil), ps.list...)
	ps.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i].stop(3 * time.Second)
	}
}

// exitCode returns the exit status, or -1 when killed or unknown.
func (p *proc) exitCode() int {
	if p.cmd.ProcessState == nil {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// cpuTime returns user+system CPU of an exited process.
func (p *proc) cpuTime() time.Duration {
	if p.cmd.ProcessState == nil {
		return 0
	}
	return p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime()
}

// groupCPU sums utime+stime (in clock ticks) of every live process whose
// process group is pgid (the server and, for Kamailio, its workers).
func groupCPU(pgid int) (ticks int64, n int) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after "comm)": state ppid pgrp session tty tpgid flags
		// minflt cminflt majflt cmajflt utime stime ...
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			continue
		}
		if pg, _ := strconv.Atoi(f[2]); pg != pgid {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += ut + st
		n++
	}
	return ticks, n
}

// memInfo is the resident memory of a process from /proc/PID/status, KiB.
type memInfo struct {
	rss, hwm, anon, file, shmem int64
}

func (m memInfo) String() string {
	return fmt.Sprintf("RSS %.0f MB (anon %.0f, file %.0f, shmem %.0f; peak %.0f)",
		float64(m.rss)/1024, float64(m.anon)/1024, float64(m.file)/1024, float64(m.shmem)/1024, float64(m.hwm)/1024)
}

// readMem reads VmRSS, VmHWM and the RSS split of pid.
func readMem(pid int) (memInfo, error) {
	var m memInfo
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			m.rss = v
		case "VmHWM:":
			m.hwm = v
		case "RssAnon:":
			m.anon = v
		case "RssFile:":
			m.file = v
		case "RssShmem:":
			m.shmem = v
		}
	}
	if m.rss == 0 {
		return m, errors.New("no VmRSS in /proc status")
	}
	return m, nil
}

// vmRSS returns VmRSS and VmHWM of pid in KiB.
func vmRSS(pid int) (rss, hwm int64, err error) {
	m, err := readMem(pid)
	return m.rss, m.hwm, err
}

// ports hands out loopback ports the kernel says are free, never the same
// one twice in a run.
type ports struct {
	mu   sync.Mutex
	used map[int]bool
}

// get returns a port free for both UDP and TCP on 127.0.0.1.
func (pp *ports) get() (int, error) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if pp.used == nil {
		pp.used = map[int]bool{}
	}
	for range 200 {
		u, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		t, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		u.Close()
		if err != nil {
			continue
		}
		t.Close()
		if pp.used[port] {
			continue
		}
		pp.used[port] = true
		return port, nil
	}
	return 0, errors.New("no free loopback port")
}

// dirSizes lists the files of dir with their sizes in MB, for the log.
func dirSizes(dir string) string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err.Error()
	}
	var parts []string
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && !e.IsDir() {
			parts = append(parts, fmt.Sprintf("%s %.1f MB", e.Name(), float64(fi.Size())/(1<<20)))
		}
	}
	return strings.Join(parts, ", ")
}
