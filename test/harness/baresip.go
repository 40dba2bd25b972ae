package harness

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
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
	// Transport is "udp" (default), "tcp" or "tls" (Server is then the
	// TLS listener; the server's certificate is not verified, as baresip
	// 1.0 does not check it unless given sip_cafile: CAFile, if set, is
	// that sip_cafile).
	Transport string
	CAFile    string
	// MediaEnc is the account's mediaenc: "srtp" (best effort: RTP/AVP
	// with a=crypto), "srtp-mand" (RTP/SAVP) or "" (plain RTP). It loads
	// the srtp module.
	MediaEnc string
	// RTPPorts is baresip's rtp_ports range ("LOW-HIGH"); "" keeps its
	// default.
	RTPPorts string
	// AnswerMode is the account's answermode: "auto" answers every
	// incoming call at once; "" leaves baresip's default (manual).
	AnswerMode string
	// WidebandFirst loads baresip's g722 module before g711, so its
	// offers list G.722 first (then PCMU and PCMA).
	WidebandFirst bool
	// AudioSource is a WAV file (mono 16-bit PCM) that the aufile module
	// plays as the microphone during a call. baresip 1.0 hangs the call up
	// when the file ends, so make it longer than the call. "" configures no
	// microphone.
	AudioSource string
}

// tcpFree reports whether a TCP port on 127.0.0.1 can be bound now.
func tcpFree(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// SIPEvent is one SIP message baresip sent or received, from its -s trace.
type SIPEvent struct {
	Time time.Time
	Sent bool
	// Transport (UDP, TCP, TLS ...), Src and Dst (host:port) are from the
	// trace line before the message.
	Transport, Src, Dst string
	*Message
}

// Baresip is a running baresip process (baresip-core 1.0) with one account.
type Baresip struct {
	t    testing.TB
	p    *proc
	Dir  string // config dir (-f)
	Port int    // sip_listen port, UDP and TCP
	// CtrlPort is the ctrl_tcp command port (see Command).
	CtrlPort int
	logPath  string
	server   string // opts.Server: messages to it were sent by baresip

	mu     sync.Mutex
	events []SIPEvent
	lines  []string
	eof    chan struct{}
}

var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;]*m`)
var traceHeader = regexp.MustCompile(`^(UDP|TCP|TLS|WS|WSS) (\S+) -> (\S+)$`)
var contactHostPort = regexp.MustCompile(`@([^;>]+)`)

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
	b := &Baresip{t: t, Dir: t.TempDir(), Port: FreePort(t, "both"), CtrlPort: FreePort(t, "tcp"),
		server: opts.Server, eof: make(chan struct{})}
	// baresip listens for TLS on sip_listen's port + 1, whatever transport
	// its account uses, and gives up if that port is taken.
	for i := 0; i < 20 && !(tcpFree(b.Port+1) && claim(b.Port+1)); i++ {
		b.Port = FreePort(t, "both")
	}
	lines := []string{
		"poll_method epoll",
		fmt.Sprintf("sip_listen 127.0.0.1:%d", b.Port),
		"net_interface 127.0.0.1",
		"module_path /usr/lib/baresip/modules",
	}
	if opts.WidebandFirst {
		lines = append(lines, "module g722.so")
	}
	lines = append(lines,
		"module g711.so",
		"module aufile.so",
		// sndfile records every call into snd_path: dump-*-enc.wav is what
		// was sent, dump-*-dec.wav what was heard (see Recordings).
		"module sndfile.so",
		"snd_path "+b.Dir,
		// aubridge is a loopback sound device needing no hardware: the
		// speaker (and ringer) of a machine without a sound card. With no
		// aubridge source of the same name nothing is looped back.
		"module aubridge.so",
		"audio_player aubridge,speaker",
		"audio_alert aubridge,speaker",
	)
	if opts.AudioSource != "" {
		lines = append(lines, "audio_source aufile,"+opts.AudioSource)
	}
	if opts.MediaEnc != "" {
		lines = append(lines, "module srtp.so")
	}
	if opts.RTPPorts != "" {
		lines = append(lines, "rtp_ports "+opts.RTPPorts)
	}
	if opts.CAFile != "" {
		lines = append(lines, "sip_cafile "+opts.CAFile)
	}
	lines = append(lines,
		"module_app account.so",
		"module_app menu.so",
		// ctrl_tcp takes commands (JSON in netstrings) while baresip runs.
		"module_app ctrl_tcp.so",
		fmt.Sprintf("ctrl_tcp_listen 127.0.0.1:%d", b.CtrlPort),
		"")
	config := strings.Join(lines, "\n")
	uriParams, outbound := "", fmt.Sprintf("sip:%s", opts.Server)
	if opts.Transport != "udp" {
		uriParams = ";transport=" + opts.Transport
		outbound += ";transport=" + opts.Transport
	}
	account := fmt.Sprintf("<sip:%s@%s%s>;auth_pass=%s;outbound=\"%s\";regint=%d",
		opts.User, opts.Domain, uriParams, opts.Password, outbound, opts.RegInt)
	if opts.AnswerMode != "" {
		account += ";answermode=" + opts.AnswerMode
	}
	if opts.MediaEnc != "" {
		account += ";mediaenc=" + opts.MediaEnc
	}
	account += "\n"
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
	// baresip's own addresses: its UDP/TCP listener, every address it
	// sent from to the server (TCP and TLS connections it opened), and
	// the Contact of its REGISTERs (its TLS listener, to which the
	// server connects).
	own := map[string]bool{fmt.Sprintf("127.0.0.1:%d", b.Port): true}
	var (
		collecting bool
		sent       bool
		trace      []string // transport, src, dst of the message being read
		msg        []string
		head       []string // the header lines while the body is read
		bodyLeft   int      // bytes of body still to come
	)
	finish := func(body []string) {
		text := strings.Join(head, "\r\n") + "\r\n\r\n"
		if len(body) > 0 {
			text += strings.Join(body, "\r\n") + "\r\n"
		}
		collecting, head, msg = false, nil, nil
		if parsed, err := ParseMessage([]byte(text)); err == nil {
			if sent && parsed.CSeqMethod() == "REGISTER" && !parsed.IsResponse() {
				for _, c := range parsed.Contacts() {
					if m := contactHostPort.FindStringSubmatch(c); m != nil {
						own[m[1]] = true
					}
				}
			}
			b.mu.Lock()
			b.events = append(b.events, SIPEvent{Time: time.Now(), Sent: sent,
				Transport: trace[0], Src: trace[1], Dst: trace[2], Message: parsed})
			b.mu.Unlock()
		}
	}
	for sc.Scan() {
		line := strings.TrimRight(ansiEscape.ReplaceAllString(sc.Text(), ""), "\r")
		fmt.Fprintln(logFile, line)
		b.mu.Lock()
		b.lines = append(b.lines, line)
		b.mu.Unlock()
		if m := traceHeader.FindStringSubmatch(line); m != nil {
			// Over TCP and TLS baresip sends from an ephemeral port, or,
			// on a connection the server opened, from its TLS listener.
			if m[3] == b.server {
				own[m[2]] = true
			}
			collecting, sent, msg, head = true, own[m[2]], nil, nil
			trace = m[1:]
			continue
		}
		if !collecting {
			continue
		}
		if head != nil {
			// The body (SDP): Content-Length bytes of CRLF-ended lines;
			// the trace ends with an empty line (a colour reset).
			if line == "" {
				finish(msg)
				continue
			}
			msg = append(msg, line)
			if bodyLeft -= len(line) + 2; bodyLeft <= 0 {
				finish(msg)
			}
			continue
		}
		if line != "" {
			msg = append(msg, line)
			continue
		}
		head, msg = msg, nil
		bodyLeft = 0
		if parsed, err := ParseMessage([]byte(strings.Join(head, "\r\n") + "\r\n\r\n")); err == nil {
			bodyLeft, _ = strconv.Atoi(parsed.Get("Content-Length"))
		}
		if bodyLeft <= 0 {
			finish(nil)
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

// commandTimeout bounds one ctrl_tcp command, connection included.
const commandTimeout = 5 * time.Second

// Command runs a baresip command (as typed after "/" in its console:
// "dial", "hangup", "reginfo" ...) through the ctrl_tcp module and returns
// the text it answered. Events baresip sends on the same connection are
// skipped.
func (b *Baresip) Command(command, params string) (string, error) {
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", b.CtrlPort), commandTimeout)
	if err != nil {
		return "", fmt.Errorf("baresip ctrl_tcp: %w", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(commandTimeout))
	token := RandomToken()
	req, err := json.Marshal(map[string]string{"command": command, "params": params, "token": token})
	if err != nil {
		return "", err
	}
	if _, err := fmt.Fprintf(conn, "%d:%s,", len(req), req); err != nil {
		return "", fmt.Errorf("baresip ctrl_tcp: sending %s: %w", command, err)
	}
	r := bufio.NewReader(conn)
	for {
		msg, err := readNetstring(r)
		if err != nil {
			return "", fmt.Errorf("baresip ctrl_tcp: no answer to %s: %w", command, err)
		}
		var resp struct {
			Response bool   `json:"response"`
			OK       bool   `json:"ok"`
			Data     string `json:"data"`
			Token    string `json:"token"`
		}
		if err := json.Unmarshal(msg, &resp); err != nil {
			return "", fmt.Errorf("baresip ctrl_tcp: %w in %q", err, msg)
		}
		if !resp.Response || resp.Token != token {
			continue // an event
		}
		if !resp.OK {
			return resp.Data, fmt.Errorf("baresip refused /%s %s: %s", command, params, resp.Data)
		}
		return resp.Data, nil
	}
}

// readNetstring reads one netstring ("LEN:DATA,").
func readNetstring(r *bufio.Reader) ([]byte, error) {
	prefix, err := r.ReadString(':')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSuffix(prefix, ":"))
	if err != nil || n < 0 || n > 1<<20 {
		return nil, fmt.Errorf("bad netstring length %q", prefix)
	}
	buf := make([]byte, n+1)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	if buf[n] != ',' {
		return nil, errors.New("netstring without its trailing comma")
	}
	return buf[:n], nil
}

// Dial places a call to uri from baresip's account.
func (b *Baresip) Dial(uri string) error {
	_, err := b.Command("dial", uri)
	return err
}

// Hangup ends baresip's current call.
func (b *Baresip) Hangup() error {
	_, err := b.Command("hangup", "")
	return err
}

// WaitOutput waits up to timeout for a line of baresip's output (colour
// codes removed) matching the regular expression pattern, and returns it.
func (b *Baresip) WaitOutput(timeout time.Duration, pattern string) (string, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return "", err
	}
	deadline := time.Now().Add(timeout)
	for {
		exited := b.p.exited()
		b.mu.Lock()
		for _, line := range b.lines {
			if re.MatchString(line) {
				b.mu.Unlock()
				return line, nil
			}
		}
		b.mu.Unlock()
		if exited {
			return "", fmt.Errorf("baresip exited (code %d) without printing a line matching %q", b.p.exitCode(), pattern)
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("baresip printed no line matching %q within %v", pattern, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Recordings are the WAV files sndfile wrote with what baresip heard (the
// decoded audio, dump-*-dec.wav), one per call, oldest first. Stop baresip
// or wait for the call's end before reading them: sndfile completes a file
// when the call ends.
func (b *Baresip) Recordings() []string {
	files, _ := filepath.Glob(filepath.Join(b.Dir, "dump-*-dec.wav"))
	return files // Glob sorts; the names hold the start time
}
