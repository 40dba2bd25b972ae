//go:build linux

package harness

// A real NAT for end-to-end tests: a phone in its own network namespace
// behind a router namespace that masquerades (iptables MASQUERADE) its
// private LAN onto a veth link whose other end is in the host namespace,
// where kaopu listens.
//
//	host (kaopu)          router                    phone
//	HostIP ──── veth ──── WANIP  |  LANIP ── veth ── PhoneIP
//	192.168.N.1           192.168.N.2  10.77.N.1      10.77.N.2
//
// The host has no route to 10.77.N.0/24: a packet from the server reaches
// the phone only through the router's connection tracking, as behind a home
// router. Only the interfaces and namespaces made here are configured, and
// all of them are deleted when the test ends.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// netnsCmdTimeout bounds one ip/iptables/sysctl command.
const netnsCmdTimeout = 10 * time.Second

// NAT is a router namespace masquerading a phone namespace's LAN, made by
// StartNAT.
type NAT struct {
	Router string // network namespace names
	Phone  string

	HostIP  string // the host end of the WAN link (kaopu listens here)
	WANIP   string // the router's WAN address: the phone's public address
	LANIP   string // the router's LAN address, the phone's default gateway
	PhoneIP string // the phone's private address

	hostIf string // the host end of the WAN veth
}

// StartNAT makes the two namespaces, their veth links, addresses and routes,
// turns on forwarding in the router and adds its MASQUERADE rule. It needs
// root, ip (iproute2) and iptables, and fails the test (never skips) when
// they are missing. Everything is deleted by t.Cleanup, also on failure.
func StartNAT(t testing.TB) *NAT {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("the NAT test makes network namespaces and iptables rules: run it as root (euid is %d)", os.Geteuid())
	}
	RequireTool(t, "ip", "iproute2")
	RequireTool(t, "iptables", "iptables")
	RequireTool(t, "sysctl", "procps")

	used := usedIPv4(t)
	var n *NAT
	for range 100 {
		x := 2 + rand.IntN(250)
		host, lan := fmt.Sprintf("192.168.%d.", x), fmt.Sprintf("10.77.%d.", x)
		if strings.Contains(used, " "+host) || strings.Contains(used, " "+lan) {
			continue
		}
		// Names: at most 15 characters for interfaces, unique per test.
		id := fmt.Sprintf("%d%03d", os.Getpid()%100000, x)
		n = &NAT{
			Router: "kp-rt-" + id, Phone: "kp-ph-" + id,
			HostIP: host + "1", WANIP: host + "2", LANIP: lan + "1", PhoneIP: lan + "2",
			hostIf: "kpw" + id,
		}
		break
	}
	if n == nil {
		t.Fatalf("no free 192.168.x.0/24 and 10.77.x.0/24 pair among the host's addresses:\n%s", used)
	}
	wanR, lanR, lanP := "kpwr"+n.hostIf[3:], "kplr"+n.hostIf[3:], "kplp"+n.hostIf[3:]

	// Cleanup first, so that a failure half way still removes everything:
	// deleting a namespace deletes the veth ends inside it, and with them
	// their peers; the host end is deleted explicitly in case the router
	// namespace never got it.
	t.Cleanup(func() {
		for _, args := range [][]string{
			{"ip", "link", "del", n.hostIf},
			{"ip", "netns", "del", n.Phone},
			{"ip", "netns", "del", n.Router},
		} {
			_, _ = runCmd(args...)
		}
		out, _ := runCmd("ip", "netns", "list")
		for _, ns := range []string{n.Router, n.Phone} {
			if strings.Contains(out, ns) {
				t.Errorf("network namespace %s still exists after cleanup", ns)
			}
		}
		if _, err := net.InterfaceByName(n.hostIf); err == nil {
			t.Errorf("interface %s still exists after cleanup", n.hostIf)
		}
	})

	R, P := []string{"ip", "netns", "exec", n.Router}, []string{"ip", "netns", "exec", n.Phone}
	in := func(ns []string, args ...string) []string { return append(append([]string(nil), ns...), args...) }
	steps := [][]string{
		{"ip", "netns", "add", n.Router},
		{"ip", "netns", "add", n.Phone},
		// WAN: host <-> router.
		{"ip", "link", "add", n.hostIf, "type", "veth", "peer", "name", wanR},
		{"ip", "link", "set", wanR, "netns", n.Router},
		{"ip", "addr", "add", n.HostIP + "/24", "dev", n.hostIf},
		{"ip", "link", "set", n.hostIf, "up"},
		in(R, "ip", "addr", "add", n.WANIP+"/24", "dev", wanR),
		in(R, "ip", "link", "set", wanR, "up"),
		in(R, "ip", "link", "set", "lo", "up"),
		// LAN: router <-> phone.
		in(R, "ip", "link", "add", lanR, "type", "veth", "peer", "name", lanP),
		in(R, "ip", "link", "set", lanP, "netns", n.Phone),
		in(R, "ip", "addr", "add", n.LANIP+"/24", "dev", lanR),
		in(R, "ip", "link", "set", lanR, "up"),
		in(P, "ip", "addr", "add", n.PhoneIP+"/24", "dev", lanP),
		in(P, "ip", "link", "set", lanP, "up"),
		in(P, "ip", "link", "set", "lo", "up"),
		in(P, "ip", "route", "add", "default", "via", n.LANIP),
		// The router: forward and masquerade what leaves on the WAN.
		in(R, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"),
		in(R, "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", wanR, "-j", "MASQUERADE", "--random-fully"),
	}
	for _, args := range steps {
		if out, err := runCmd(args...); err != nil {
			t.Fatalf("making the NAT: %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	t.Logf("NAT: phone %s (netns %s) behind router %s/%s (netns %s, MASQUERADE on %s); host end %s on %s",
		n.PhoneIP, n.Phone, n.LANIP, n.WANIP, n.Router, wanR, n.HostIP, n.hostIf)
	return n
}

// usedIPv4 is `ip -o -4 addr` and `ip -4 route` of the host namespace, with
// a leading space before every address.
func usedIPv4(t testing.TB) string {
	t.Helper()
	addrs, err := runCmd("ip", "-o", "-4", "addr")
	if err != nil {
		t.Fatalf("ip -o -4 addr: %v\n%s", err, addrs)
	}
	routes, _ := runCmd("ip", "-4", "route")
	return " " + strings.Join(strings.Fields(addrs+" "+routes), " ")
}

// runCmd runs a command with a deadline and returns its combined output.
func runCmd(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), netnsCmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	return string(out), err
}

// Exec runs a command in network namespace ns (n.Router or n.Phone) and
// returns its combined output.
func (n *NAT) Exec(ns string, args ...string) (string, error) {
	return runCmd(append([]string{"ip", "netns", "exec", ns}, args...)...)
}

// Dial connects to addr from inside network namespace ns: the socket is
// made on an OS thread switched into ns (setns), and stays there.
func (n *NAT) Dial(ns, network, addr string, timeout time.Duration) (net.Conn, error) {
	return dialIn(ns, network, addr, timeout)
}

// dialIn connects to addr from inside network namespace ns.
func dialIn(ns, network, addr string, timeout time.Duration) (c net.Conn, err error) {
	err = inNetns(ns, func() error {
		c, err = net.DialTimeout(network, addr, timeout)
		return err
	})
	return c, err
}

// inNetns runs fn on an OS thread switched into network namespace ns
// (setns): sockets fn makes belong to ns for their whole life, whichever
// thread later uses them.
func inNetns(ns string, fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		// The thread is left locked (and so discarded when this goroutine
		// ends) unless it is back in its own namespace.
		runtime.LockOSThread()
		self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", syscall.Gettid()))
		if err != nil {
			ch <- err
			return
		}
		defer self.Close()
		target, err := os.Open(filepath.Join("/var/run/netns", ns))
		if err != nil {
			ch <- err
			return
		}
		defer target.Close()
		if err := setns(target); err != nil {
			ch <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		err = fn()
		if setns(self) == nil {
			runtime.UnlockOSThread()
		}
		ch <- err
	}()
	return <-ch
}

func setns(f *os.File) error {
	return unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
}

// PhoneBaresip is a baresip running in the phone namespace, on PhoneIP.
// Its Events do not tell sent from received messages (every one reads as
// received): use its output, recordings and the server's view instead.
type PhoneBaresip struct {
	*Baresip
	nat *NAT
}

// StartBaresip runs baresip as StartBaresip does, but inside the phone
// namespace (`ip netns exec`, which execs baresip: the PID stopped at
// cleanup is baresip's), listening on PhoneIP, with its ctrl_tcp port on the
// namespace's loopback, reached through Dial.
func (n *NAT) StartBaresip(t testing.TB, opts BaresipOptions) *PhoneBaresip {
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
	// A fresh namespace has every port free.
	b := &Baresip{t: t, Dir: t.TempDir(), Port: 5060, CtrlPort: 4444, eof: make(chan struct{})}
	lines := []string{
		"poll_method epoll",
		fmt.Sprintf("sip_listen %s:%d", n.PhoneIP, b.Port),
		"net_interface " + n.PhoneIP,
		"module_path /usr/lib/baresip/modules",
		"module g711.so",
		"module aufile.so",
		"module sndfile.so",
		"snd_path " + b.Dir,
		"module aubridge.so",
		"audio_player aubridge,speaker",
		"audio_alert aubridge,speaker",
	}
	if opts.AudioSource != "" {
		lines = append(lines, "audio_source aufile,"+opts.AudioSource)
	}
	lines = append(lines,
		"module_app account.so",
		"module_app menu.so",
		"module_app ctrl_tcp.so",
		fmt.Sprintf("ctrl_tcp_listen 127.0.0.1:%d", b.CtrlPort),
		"")
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
	account += "\n"
	for name, text := range map[string]string{"config": strings.Join(lines, "\n"), "accounts": account} {
		if err := os.WriteFile(filepath.Join(b.Dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b.logPath = filepath.Join(b.Dir, "baresip.log")
	logFile, err := os.Create(b.logPath)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", n.Phone, bin, "-f", b.Dir, "-s")
	cmd.Dir = b.Dir
	cmd.Stdout = pw
	cmd.Stderr = pw
	b.p, err = startProc(cmd)
	pw.Close()
	if err != nil {
		pr.Close()
		t.Fatalf("starting baresip in netns %s: %v", n.Phone, err)
	}
	t.Logf("baresip pid %d: %s@%s on %s:%d (netns %s) via %s", b.p.pid(), opts.User, opts.Domain,
		n.PhoneIP, b.Port, n.Phone, opts.Server)
	go b.readOutput(pr, logFile)
	t.Cleanup(func() {
		b.Stop()
		if t.Failed() {
			t.Logf("baresip (netns %s) output:\n%s", n.Phone, b.Output())
		}
	})
	return &PhoneBaresip{Baresip: b, nat: n}
}

// Command is Baresip.Command over a connection made inside the phone
// namespace.
func (b *PhoneBaresip) Command(command, params string) (string, error) {
	var conn net.Conn
	var err error
	deadline := time.Now().Add(commandTimeout)
	for {
		// ctrl_tcp listens a moment after baresip starts.
		conn, err = b.nat.Dial(b.nat.Phone, "tcp", fmt.Sprintf("127.0.0.1:%d", b.CtrlPort), commandTimeout)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return "", fmt.Errorf("baresip ctrl_tcp in netns %s: %w", b.nat.Phone, err)
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
			continue
		}
		if !resp.OK {
			return resp.Data, fmt.Errorf("baresip refused /%s %s: %s", command, params, resp.Data)
		}
		return resp.Data, nil
	}
}

// Dial places a call to uri.
func (b *PhoneBaresip) Dial(uri string) error {
	_, err := b.Command("dial", uri)
	return err
}

// Hangup ends the current call.
func (b *PhoneBaresip) Hangup() error {
	_, err := b.Command("hangup", "")
	return err
}
