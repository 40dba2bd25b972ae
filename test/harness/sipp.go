package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// SippDefaultTimeout is sipp's global -timeout unless the caller passes one.
const SippDefaultTimeout = 20 * time.Second

// SippResult is what one sipp run left behind.
type SippResult struct {
	ExitCode int // 0: every call succeeded; 1: at least one failed; others: sipp error
	Args     []string
	Output   string // stdout and stderr (the final screen)
	Errors   string // -trace_err file: unexpected messages and failures
	Messages string // -trace_msg file: every message sent and received
	Logs     string // -trace_logs file: <log> actions of the scenario
	Stats    string // -trace_stat file (CSV)
	Port     int    // local SIP port sipp used (-p)
}

// Scenario is the absolute path of test/testdata/sipp/name.
func Scenario(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(ModuleRoot(t), "test", "testdata", "sipp", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("sipp scenario: %v", err)
	}
	return p
}

// Sipp runs sipp with args and waits for it with a deadline. Unless args set
// them, it adds -m 1, -timeout 20s -timeout_error, -nostdin, trace files in a
// temp dir (-trace_err, -trace_stat, -trace_msg, -trace_logs), control socket
// on loopback (-ci 127.0.0.1 -cp FREE), -buff_size 4194304, -i 127.0.0.1 and
// -p FREE. The remote address and -sf scenario come from args. sipp's output
// is attached to the test log when the test fails.
func Sipp(t testing.TB, args ...string) *SippResult {
	t.Helper()
	return runSipp(t, nil, args)
}

// SippIn is Sipp run inside network namespace ns (`ip netns exec`, which
// execs sipp: the process killed at the deadline is sipp).
func SippIn(t testing.TB, ns Namespace, args ...string) *SippResult {
	t.Helper()
	return runSipp(t, ns, args)
}

func runSipp(t testing.TB, ns Namespace, args []string) *SippResult {
	t.Helper()
	bin := RequireTool(t, "sipp", "sip-tester")
	dir := t.TempDir()
	has := func(flag string) bool { return slices.Contains(args, flag) }
	all := append([]string(nil), args...)
	add := func(flag string, vals ...string) {
		if !has(flag) {
			all = append(all, flag)
			all = append(all, vals...)
		}
	}
	timeout := SippDefaultTimeout
	for i := range args[:max(len(args)-1, 0)] {
		if args[i] != "-timeout" {
			continue
		}
		// The last one counts, as for sipp.
		d, err := time.ParseDuration(args[i+1])
		if err != nil {
			t.Fatalf("sipp -timeout %q: give it with a unit, like 20s", args[i+1])
		}
		timeout = d
	}
	res := &SippResult{}
	add("-m", "1")
	add("-timeout", fmt.Sprintf("%ds", int(timeout.Seconds())))
	add("-timeout_error")
	add("-nostdin")
	add("-trace_err")
	add("-error_file", filepath.Join(dir, "errors.log"))
	add("-trace_stat")
	add("-stf", filepath.Join(dir, "stat.csv"))
	add("-trace_msg")
	add("-message_file", filepath.Join(dir, "messages.log"))
	add("-trace_logs")
	add("-log_file", filepath.Join(dir, "logs.log"))
	add("-ci", "127.0.0.1")
	add("-cp", fmt.Sprint(FreePort(t, "udp")))
	add("-buff_size", "4194304")
	add("-i", "127.0.0.1")
	if i := slices.Index(args, "-p"); i >= 0 && i+1 < len(args) {
		fmt.Sscan(args[i+1], &res.Port)
	} else {
		res.Port = FreePort(t, "both")
		all = append(all, "-p", fmt.Sprint(res.Port))
	}
	res.Args = all

	deadline := timeout + 10*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, all...) // killed by PID at the deadline
	if ns != nil {
		in := ns.Command(bin, all...)
		cmd = exec.CommandContext(ctx, in.Path, in.Args[1:]...)
	}
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	res.Output = string(out)
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		return string(b)
	}
	res.Errors = read("errors.log")
	res.Messages = read("messages.log")
	res.Logs = read("logs.log")
	res.Stats = read("stat.csv")
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		screen := ""
		if res.ExitCode != 0 {
			screen = "\n--- screen (tail):\n" + tail(res.Output, 3000)
		}
		t.Logf("sipp %s\nexit code %d\n--- errors:\n%s\n--- messages:\n%s%s",
			strings.Join(all, " "), res.ExitCode, res.Errors, res.Messages, screen)
	})
	if ctx.Err() != nil {
		t.Fatalf("sipp did not end within %v (its -timeout is %v); killed", deadline, timeout)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running sipp: %v", err)
	}
	res.ExitCode = cmd.ProcessState.ExitCode()
	return res
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// SippMessage is one entry of sipp's message trace.
type SippMessage struct {
	Sent bool // false: received
	*Message
}

// Trace parses the -trace_msg file into the messages sipp sent and received.
func (r *SippResult) Trace() []SippMessage {
	var out []SippMessage
	const sep = "----------------------------------------------- "
	for _, block := range strings.Split(r.Messages, "\n"+sep) {
		block = strings.TrimPrefix(block, sep)
		// timestamp line, then "UDP message sent (N bytes):" or
		// "UDP message received [N] bytes :", blank line, message.
		lines := strings.SplitN(block, "\n", 3)
		if len(lines) < 3 {
			continue
		}
		kind := lines[1]
		if !strings.Contains(kind, " message ") {
			continue
		}
		m, err := ParseMessage([]byte(strings.TrimLeft(lines[2], "\r\n")))
		if err != nil {
			continue
		}
		out = append(out, SippMessage{Sent: strings.Contains(kind, " sent"), Message: m})
	}
	return out
}

// Responses are the responses sipp received, in order.
func (r *SippResult) Responses() []*Message {
	var out []*Message
	for _, m := range r.Trace() {
		if !m.Sent && m.IsResponse() {
			out = append(out, m.Message)
		}
	}
	return out
}

// LastResponse is the last response sipp received, nil if none.
func (r *SippResult) LastResponse() *Message {
	rs := r.Responses()
	if len(rs) == 0 {
		return nil
	}
	return rs[len(rs)-1]
}
