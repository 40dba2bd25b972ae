package harness

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Phone is a running `kaopu phone` process. Its output (stdout and stderr)
// is collected line by line; Input, when the phone was started with
// StartPhoneInteractive, writes to its prompt.
type Phone struct {
	t     testing.TB
	p     *proc
	name  string
	Input io.WriteCloser

	mu    sync.Mutex
	lines []string
	eof   chan struct{}
}

// StartPhone runs `kaopu phone args...` (prefixed by prefix, e.g. `ip netns
// exec NS`, when given) with the environment plus env. It is stopped by
// PID (SIGTERM, SIGKILL after StopGrace) when the test ends; its output is
// attached to the test log when the test failed.
func StartPhone(t testing.TB, name string, prefix []string, env []string, args ...string) *Phone {
	t.Helper()
	return startPhone(t, name, prefix, env, false, args...)
}

// StartPhoneInteractive is StartPhone with a pipe to the prompt (Input).
func StartPhoneInteractive(t testing.TB, name string, args ...string) *Phone {
	t.Helper()
	return startPhone(t, name, nil, nil, true, args...)
}

func startPhone(t testing.TB, name string, prefix []string, env []string, stdin bool, args ...string) *Phone {
	t.Helper()
	argv := append(append(append([]string(nil), prefix...), Binary(t), "phone"), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), env...)
	ph := &Phone{t: t, name: name, eof: make(chan struct{})}
	if stdin {
		w, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		ph.Input = w
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	ph.p, err = startProc(cmd)
	pw.Close()
	if err != nil {
		pr.Close()
		t.Fatalf("starting kaopu phone (%s): %v", name, err)
	}
	t.Logf("%s: pid %d: %s", name, ph.p.pid(), strings.Join(argv, " "))
	go func() {
		defer close(ph.eof)
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			ph.mu.Lock()
			ph.lines = append(ph.lines, sc.Text())
			ph.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ph.Stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, ph.Output())
		}
	})
	return ph
}

// Output is everything printed so far.
func (ph *Phone) Output() string {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	return strings.Join(ph.lines, "\n")
}

// WaitOutput waits up to d for a line matching pattern and returns it.
func (ph *Phone) WaitOutput(d time.Duration, pattern string) (string, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return "", err
	}
	deadline := time.Now().Add(d)
	for {
		exited := ph.p.exited()
		ph.mu.Lock()
		for _, l := range ph.lines {
			if re.MatchString(l) {
				ph.mu.Unlock()
				return l, nil
			}
		}
		ph.mu.Unlock()
		if exited {
			<-ph.eof
			ph.mu.Lock()
			n := len(ph.lines)
			ph.mu.Unlock()
			if ph.matchAny(re) {
				continue
			}
			return "", fmt.Errorf("%s exited (code %d, %d lines) without a line matching %q",
				ph.name, ph.p.exitCode(), n, pattern)
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s printed no line matching %q within %v", ph.name, pattern, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (ph *Phone) matchAny(re *regexp.Regexp) bool {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	for _, l := range ph.lines {
		if re.MatchString(l) {
			return true
		}
	}
	return false
}

// Type writes one line to the prompt.
func (ph *Phone) Type(line string) {
	ph.t.Helper()
	if _, err := io.WriteString(ph.Input, line+"\n"); err != nil {
		ph.t.Fatalf("%s: typing %q: %v", ph.name, line, err)
	}
}

// Wait waits up to d for the phone to exit and returns its exit code; a
// phone still running at d is killed and fails the test.
func (ph *Phone) Wait(d time.Duration) int {
	ph.t.Helper()
	if !ph.p.waitExit(d) {
		ph.p.kill()
		ph.t.Fatalf("%s (pid %d) still running after %v; killed", ph.name, ph.p.pid(), d)
	}
	<-ph.eof
	return ph.p.exitCode()
}

// Stop ends the phone (SIGTERM, SIGKILL after StopGrace).
func (ph *Phone) Stop() {
	if ph.p == nil || ph.p.exited() {
		return
	}
	if _, err := ph.p.stop(StopGrace); err != nil {
		ph.t.Errorf("stopping %s: %v", ph.name, err)
	}
}
