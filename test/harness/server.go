package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Deadlines shared by the helpers.
const (
	// HealthTimeout bounds the wait for GET /healthz == 200 after a start.
	HealthTimeout = 15 * time.Second
	// StopGrace is how long a process gets after SIGTERM before SIGKILL.
	StopGrace = 5 * time.Second
	// cliTimeout bounds one admin subcommand such as `kaopu user add`.
	cliTimeout = 30 * time.Second
	// buildTimeout bounds `go build ./cmd/kaopu` when KAOPU_BIN is unset.
	buildTimeout = 5 * time.Minute
)

// DefaultDomain is the SIP domain (and digest realm) the test servers use.
const DefaultDomain = "kaopu.test"

// build caches the binary built when KAOPU_BIN is unset: one build per test
// process, removed by Main.
var build struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Main runs the tests of a package that uses the harness and removes what the
// harness built. Use it from TestMain: os.Exit(harness.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	return code
}

// ModuleRoot is the directory holding kaopu's go.mod, found from this source
// file's location.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("harness: cannot locate its own source file")
	}
	dir := filepath.Dir(file)
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			strings.Contains(string(b), "module github.com/kaopu/kaopu") {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("harness: no go.mod of github.com/kaopu/kaopu above %s", filepath.Dir(file))
		}
		dir = parent
	}
}

// Binary returns the kaopu binary under test: $KAOPU_BIN when set (the
// Makefile exports the absolute path of bin/kaopu), otherwise one built with
// `go build ./cmd/kaopu` once per test process.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("KAOPU_BIN"); p != "" {
		if !filepath.IsAbs(p) {
			t.Fatalf("KAOPU_BIN=%q must be an absolute path", p)
		}
		if fi, err := os.Stat(p); err != nil || fi.IsDir() {
			t.Fatalf("KAOPU_BIN=%q: not a file (run `make build`): %v", p, err)
		}
		return p
	}
	root := ModuleRoot(t)
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "kaopu-e2e-bin-")
		if build.err != nil {
			return
		}
		build.path = filepath.Join(build.dir, "kaopu")
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", build.path, "./cmd/kaopu")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build ./cmd/kaopu: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatalf("building kaopu: %v", build.err)
	}
	return build.path
}

// ServerOptions configure StartServer. The zero value is a fresh server with
// default settings.
type ServerOptions struct {
	// DataDir is reused when set (restart tests); otherwise a t.TempDir().
	DataDir string
	// Config is the YAML text of a config file passed with --config; none
	// when empty.
	Config string
	// Domain defaults to DefaultDomain.
	Domain string
	// Args are appended to the serve command line.
	Args []string
	// Netns runs the server inside this network namespace (`ip netns
	// exec`); the harness reaches its HTTP listener from inside it.
	Netns Namespace
	// IP is the address every listener binds; default 127.0.0.1.
	IP string
	// SIPPort is the SIP port (UDP and TCP); default a free one.
	SIPPort int
}

// Namespace is a network namespace to run a server in (a *Netns).
type Namespace interface {
	Command(name string, args ...string) *exec.Cmd
	Dial(network, addr string, timeout time.Duration) (net.Conn, error)
}

// Server is a running (or stopped) `kaopu serve` process on loopback.
type Server struct {
	t    testing.TB
	bin  string
	args []string

	DataDir    string
	Domain     string
	IP         string // the listeners' address
	ConfigFile string // "" when no config file was given
	SIPPort    int    // UDP and TCP
	SIPSPort   int    // TLS
	HTTPPort   int

	logDir string
	netns  Namespace // nil: the host's network namespace
	runs   int
	p      *proc
	logs   []string // one log file per run, in order
}

// SIPAddr is host:port of the UDP and TCP SIP listener.
func (s *Server) SIPAddr() string { return fmt.Sprintf("%s:%d", s.IP, s.SIPPort) }

// SIPSAddr is host:port of the TLS SIP listener.
func (s *Server) SIPSAddr() string { return fmt.Sprintf("%s:%d", s.IP, s.SIPSPort) }

// HTTPAddr is host:port of the HTTP listener.
func (s *Server) HTTPAddr() string { return fmt.Sprintf("%s:%d", s.IP, s.HTTPPort) }

// HTTPURL is the base URL of the HTTP listener.
func (s *Server) HTTPURL() string { return "http://" + s.HTTPAddr() }

// StartServer starts `kaopu serve` on free loopback ports and waits until
// GET /healthz answers 200. The server is stopped (SIGTERM, SIGKILL after
// StopGrace) when the test ends, and its output is attached to the test log
// when the test failed.
func StartServer(t testing.TB, opts ServerOptions) *Server {
	t.Helper()
	s := &Server{
		t:        t,
		bin:      Binary(t),
		DataDir:  opts.DataDir,
		Domain:   opts.Domain,
		IP:       opts.IP,
		netns:    opts.Netns,
		SIPPort:  opts.SIPPort,
		SIPSPort: FreePort(t, "tcp"),
		HTTPPort: FreePort(t, "tcp"),
		logDir:   t.TempDir(),
	}
	if s.DataDir == "" {
		s.DataDir = t.TempDir()
	}
	if s.IP == "" {
		s.IP = "127.0.0.1"
	}
	if s.SIPPort == 0 {
		s.SIPPort = FreePort(t, "both")
	}
	if s.Domain == "" {
		s.Domain = DefaultDomain
	}
	if opts.Config != "" {
		s.ConfigFile = filepath.Join(s.logDir, "kaopu.yaml")
		if err := os.WriteFile(s.ConfigFile, []byte(opts.Config), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s.args = []string{"serve",
		"--data", s.DataDir,
		"--sip", s.SIPAddr(),
		"--sips", s.SIPSAddr(),
		"--http", s.HTTPAddr(),
		"--domain", s.Domain,
	}
	if s.ConfigFile != "" {
		s.args = append(s.args, "--config", s.ConfigFile)
	}
	s.args = append(s.args, opts.Args...)
	t.Cleanup(func() {
		if s.p != nil && !s.p.exited() {
			if graceful, err := s.p.stop(StopGrace); err != nil {
				t.Errorf("stopping kaopu: %v", err)
			} else if !graceful {
				t.Errorf("kaopu (pid %d) did not exit within %v of SIGTERM; killed it", s.p.pid(), StopGrace)
			}
		}
		if t.Failed() {
			s.dumpLogs()
		}
	})
	s.start()
	return s
}

func (s *Server) start() {
	s.t.Helper()
	s.runs++
	logPath := filepath.Join(s.logDir, fmt.Sprintf("kaopu-run%d.log", s.runs))
	f, err := os.Create(logPath)
	if err != nil {
		s.t.Fatal(err)
	}
	defer f.Close() // the child holds its own descriptor
	s.logs = append(s.logs, logPath)
	cmd := exec.Command(s.bin, s.args...)
	if s.netns != nil {
		cmd = s.netns.Command(s.bin, s.args...)
	}
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.Dir = s.logDir
	p, err := startProc(cmd)
	if err != nil {
		s.t.Fatalf("starting %s: %v", s.bin, err)
	}
	s.p = p
	s.t.Logf("kaopu run %d: pid %d: %s", s.runs, p.pid(), strings.Join(cmd.Args, " "))
	s.waitHealthy()
}

func (s *Server) waitHealthy() {
	s.t.Helper()
	client := &http.Client{Timeout: time.Second}
	if s.netns != nil {
		ns := s.netns
		client.Transport = &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return ns.Dial(network, addr, time.Second)
		}}
	}
	deadline := time.Now().Add(HealthTimeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		if s.p.exited() {
			s.t.Fatalf("kaopu exited with code %d before /healthz answered 200:\n%s",
				s.p.exitCode(), s.Log())
		}
		resp, err := client.Get(s.HTTPURL() + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("GET /healthz did not answer 200 within %v (last: %s); log:\n%s",
		HealthTimeout, last, s.Log())
}

// PID is the process id of the current run.
func (s *Server) PID() int { return s.p.pid() }

// Alive reports whether the current run is still running.
func (s *Server) Alive() bool { return s.p != nil && !s.p.exited() }

// Stop sends SIGTERM and waits for the exit, killing after StopGrace. A server
// that needs SIGKILL fails the test. It returns the exit code.
func (s *Server) Stop() int {
	s.t.Helper()
	graceful, err := s.p.stop(StopGrace)
	if err != nil {
		s.t.Fatalf("stopping kaopu: %v", err)
	}
	if !graceful {
		s.t.Errorf("kaopu (pid %d) did not exit within %v of SIGTERM; killed it", s.p.pid(), StopGrace)
	}
	s.t.Logf("kaopu run %d stopped with exit code %d", s.runs, s.p.exitCode())
	return s.p.exitCode()
}

// Kill sends SIGKILL (a crash) and waits for the process to end.
func (s *Server) Kill() {
	s.t.Helper()
	if err := s.p.kill(); err != nil {
		s.t.Fatal(err)
	}
}

// Restart stops the server (SIGTERM) when it runs and starts it again with the
// same data dir, ports and arguments, then waits for /healthz.
func (s *Server) Restart() {
	s.t.Helper()
	if s.Alive() {
		s.Stop()
	}
	s.start()
}

// Log is the output (stdout and stderr) of the current run so far.
func (s *Server) Log() string {
	if len(s.logs) == 0 {
		return ""
	}
	b, _ := os.ReadFile(s.logs[len(s.logs)-1])
	return string(b)
}

// AllLogs is the output of every run so far, in order.
func (s *Server) AllLogs() string {
	var sb strings.Builder
	for i, p := range s.logs {
		b, _ := os.ReadFile(p)
		fmt.Fprintf(&sb, "===== kaopu run %d (%s) =====\n%s", i+1, p, b)
	}
	return sb.String()
}

// WaitLog waits up to d for a log line of the current run matching every
// one of the regular expressions patterns, and returns it.
func (s *Server) WaitLog(d time.Duration, patterns ...string) (string, error) {
	var res []*regexp.Regexp
	for _, p := range patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return "", err
		}
		res = append(res, re)
	}
	deadline := time.Now().Add(d)
	for {
		for _, line := range strings.Split(s.Log(), "\n") {
			if matchAll(line, res) {
				return line, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no kaopu log line matching all of %q within %v", patterns, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func matchAll(s string, res []*regexp.Regexp) bool {
	for _, re := range res {
		if !re.MatchString(s) {
			return false
		}
	}
	return true
}

func (s *Server) dumpLogs() {
	s.t.Logf("kaopu output:\n%s", s.AllLogs())
}

// RunCLI runs `kaopu args...` with a 30 s deadline and returns its combined
// output and exit code.
func RunCLI(t testing.TB, args ...string) (string, int) {
	t.Helper()
	return RunCLIWithin(t, cliTimeout, args...)
}

// RunCLIWithin is RunCLI with deadline d; a process still running at the
// deadline is killed and fails the test.
func RunCLIWithin(t testing.TB, d time.Duration, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, Binary(t), args...)
	cmd.Dir = t.TempDir()
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("kaopu %s: no exit within %v; killed:\n%s", strings.Join(args, " "), d, out)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("kaopu %s: %v", strings.Join(args, " "), err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// AddUser runs `kaopu user add NAME --password PW [--ext NUM] --data DIR` and
// fails the test unless it exits 0. ext may be "".
func AddUser(t testing.TB, dataDir, name, password, ext string) {
	t.Helper()
	args := []string{"user", "add", name, "--password", password}
	if ext != "" {
		args = append(args, "--ext", ext)
	}
	args = append(args, "--data", dataDir)
	if out, code := RunCLI(t, args...); code != 0 {
		t.Fatalf("kaopu user add %s exited %d:\n%s", name, code, out)
	}
}

// Metric reads one sample from the server's /metrics.
func (s *Server) Metric(t testing.TB, name string) float64 {
	t.Helper()
	resp, err := http.Get(s.HTTPURL() + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				t.Fatalf("metric %s: %q", name, line)
			}
			return f
		}
	}
	t.Fatalf("no metric %s in /metrics", name)
	return 0
}
