package harness

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// BaresipOptions configure a baresip user agent.
type BaresipOptions struct {
	User     string
	Password string
	Domain   string // default DefaultDomain
	Server   string // host:port of kaopu's SIP listener (the outbound proxy)
	// RegInt is the registration interval asked for, in seconds (default 60).
	RegInt int
	// Transport is "udp" (default) or "tcp".
	Transport string
}

// SIPEvent is one SIP message baresip sent or received, from its -s trace.
type SIPEvent struct {
	Time time.Time
	Sent bool
	*Message
}

// Baresip is a running baresip process (baresip-core 1.0) with one account.
type Baresip struct {
	t       testing.TB
	p       *proc
	Dir     string // config dir (-f)
	Port    int    // sip_listen port, UDP and TCP
	logPath string

	mu     sync.Mutex
	events []SIPEvent
	lines  []string
	eof    chan struct{}
}

var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;]*m`)
var traceHeader = regexp.MustCompile(`^(UDP|TCP|TLS|WS|WSS) (\S+) -> (\S+)$`)

// StartBaresip writes a config dir and runs `baresip -f DIR -s` in the
// foreground with no stdin (SIP trace on, parsed into Events). It is stopped
// by PID (SIGTERM, SIGKILL after StopGrace) when the test ends; its output is
// attached to the test log when the test failed.
func StartBaresip(t testing.TB, opts BaresipOptions) *Baresip {
	t.Helper()
	bin := RequireTool(t, "baresip", "baresip-core")
	if opts.Domain == "" {
		opts.Domain = DefaultDomain
	}
	if opts.RegInt == 0 {
		opts.RegInt = 60
	}
	if opts.Transport == "" {
		opts.Transport = "udp"
	}
	b := &Baresip{t: t, Dir: t.TempDir(), Port: FreePort(t, "both"), eof: make(chan struct{})}
	config := strings.Join([]string{
		"poll_method epoll",
		fmt.Sprintf("sip_listen 127.0.0.1:%d", b.Port),
		"net_interface 127.0.0.1",
		"module_path /usr/lib/baresip/modules",
		"module g711.so",
		"module aufile.so",
		"module sndfile.so",
		"snd_path " + b.Dir,
		"module_app account.so",
		"module_app menu.so",
		"",
	}, "\n")
	uriParams, outbound := "", fmt.Sprintf("sip:%s", opts.Server)
	if opts.Transport != "udp" {
		uriParams = ";transport=" + opts.Transport
		outbound += ";transport=" + opts.Transport
	}
	account := fmt.Sprintf("<sip:%s@%s%s>;auth_pass=%s;outbound=\"%s\";regint=%d\n",
		opts.User, opts.Domain, uriParams, opts.Password, outbound, opts.RegInt)
	for name, text := range map[string]string{"config": config, "accounts": account} {
		if err := os.WriteFile(filepath.Join(b.Dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b.logPath = filepath.Join(b.Dir, "baresip.log")
	logFile, err := os.Create(b.logPath)
	if err != nil {
		t.Fatal(err)
	}
	// An os.Pipe rather than cmd.StdoutPipe: the reader sees EOF when
	// baresip exits, independently of the goroutine reaping it.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-f", b.Dir, "-s")
	cmd.Dir = b.Dir
	cmd.Stdin = nil // /dev/null: no stdio module, no console
	cmd.Stdout = pw
	cmd.Stderr = pw
	b.p, err = startProc(cmd)
	pw.Close()
	if err != nil {
		pr.Close()
		t.Fatalf("starting baresip: %v", err)
	}
	stdout := pr
	t.Logf("baresip pid %d: %s@%s on 127.0.0.1:%d via %s", b.p.pid(), opts.User, opts.Domain, b.Port, opts.Server)
	go b.readOutput(stdout, logFile)
	t.Cleanup(func() {
		b.Stop()
		if t.Failed() {
			t.Logf("baresip output:\n%s", b.Output())
		}
	})
	return b
}

func (b *Baresip) readOutput(r *os.File, logFile *os.File) {
	defer close(b.eof)
	defer r.Close()
	defer logFile.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	local := fmt.Sprintf("127.0.0.1:%d", b.Port)
	var (
		collecting bool
		sent       bool
		msg        []string
	)
	for sc.Scan() {
		line := strings.TrimRight(ansiEscape.ReplaceAllString(sc.Text(), ""), "\r")
		fmt.Fprintln(logFile, line)
		b.mu.Lock()
		b.lines = append(b.lines, line)
		b.mu.Unlock()
		if m := traceHeader.FindStringSubmatch(line); m != nil {
			collecting, sent, msg = true, m[2] == local, nil
			continue
		}
		if !collecting {
			continue
		}
		if line != "" {
			msg = append(msg, line)
			continue
		}
		collecting = false
		if parsed, err := ParseMessage([]byte(strings.Join(msg, "\r\n") + "\r\n\r\n")); err == nil {
			b.mu.Lock()
			b.events = append(b.events, SIPEvent{Time: time.Now(), Sent: sent, Message: parsed})
			b.mu.Unlock()
		}
	}
}

// Events are the SIP messages seen so far.
func (b *Baresip) Events() []SIPEvent {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]SIPEvent(nil), b.events...)
}

// Output is baresip's output so far, without colour codes.
func (b *Baresip) Output() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines, "\n")
}

// RegisterOKs counts the 2xx responses to REGISTER baresip received.
func (b *Baresip) RegisterOKs() int {
	n := 0
	for _, e := range b.Events() {
		if !e.Sent && e.IsResponse() && e.StatusCode()/100 == 2 && e.CSeqMethod() == "REGISTER" {
			n++
		}
	}
	return n
}

// RegistersSent counts the REGISTER requests baresip sent.
func (b *Baresip) RegistersSent() int {
	n := 0
	for _, e := range b.Events() {
		if e.Sent && !e.IsResponse() && strings.HasPrefix(e.StartLine, "REGISTER ") {
			n++
		}
	}
	return n
}

// Contact is the Contact of the last REGISTER baresip sent ("" if none).
func (b *Baresip) Contact() string {
	ev := b.Events()
	for i := len(ev) - 1; i >= 0; i-- {
		if ev[i].Sent && strings.HasPrefix(ev[i].StartLine, "REGISTER ") {
			return ev[i].Get("Contact")
		}
	}
	return ""
}

// WaitRegisterOKs waits up to timeout until baresip has received more than
// n 2xx responses to REGISTER (n = 0: registered once).
func (b *Baresip) WaitRegisterOKs(n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for b.RegisterOKs() <= n {
		if b.p.exited() {
			return fmt.Errorf("baresip exited (code %d) with %d REGISTER 2xx, waiting for more than %d",
				b.p.exitCode(), b.RegisterOKs(), n)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("baresip got %d REGISTER 2xx within %v, want more than %d; last SIP lines:\n%s",
				b.RegisterOKs(), timeout, n, b.lastStatusLines(6))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func (b *Baresip) lastStatusLines(n int) string {
	var out []string
	for _, e := range b.Events() {
		dir := "<-"
		if e.Sent {
			dir = "->"
		}
		out = append(out, dir+" "+e.StartLine+" (CSeq "+e.Get("CSeq")+")")
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return strings.Join(out, "\n")
}

// Stop ends baresip (SIGTERM, SIGKILL after StopGrace) and waits for its
// output to be read.
func (b *Baresip) Stop() {
	if b.p == nil || b.p.exited() {
		return
	}
	if _, err := b.p.stop(StopGrace); err != nil {
		b.t.Errorf("stopping baresip: %v", err)
	}
	select {
	case <-b.eof:
	case <-time.After(2 * time.Second):
	}
}
