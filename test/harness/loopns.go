//go:build linux

package harness

// A network namespace with nothing in it but its own loopback, for tests
// whose messages name hosts that exist only in the test (SIP domains such
// as alpha.test): the servers, the peers and a DNS server (StartDNS) all
// run inside it, so nothing they look up or send can leave it.
//
// `ip netns exec NAME` bind-mounts every file of /etc/netns/NAME/ over the
// same file in /etc for the program it starts; WriteEtc uses that to give
// the namespace its own resolv.conf. The namespace and /etc/netns/NAME are
// deleted when the test ends.

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Netns is a network namespace with only lo up, made by StartNetns.
type Netns struct {
	Name   string
	etcDir string // /etc/netns/NAME
}

// StartNetns makes a network namespace whose only interface is lo, up
// (127.0.0.0/8 is all of it). It needs root and ip (iproute2), and fails
// the test (never skips) without them. The namespace and its /etc/netns
// directory are removed by t.Cleanup, also on failure.
func StartNetns(t testing.TB) *Netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("this test makes a network namespace: run it as root (euid is %d)", os.Geteuid())
	}
	RequireTool(t, "ip", "iproute2")
	name := fmt.Sprintf("kp-lo-%d-%04d", os.Getpid()%100000, rand.IntN(10000))
	n := &Netns{Name: name, etcDir: filepath.Join("/etc/netns", name)}
	_, statErr := os.Stat("/etc/netns")
	madeEtcNetns := os.IsNotExist(statErr)
	t.Cleanup(func() {
		_, _ = runCmd("ip", "netns", "del", n.Name)
		if err := os.RemoveAll(n.etcDir); err != nil {
			t.Errorf("removing %s: %v", n.etcDir, err)
		}
		if madeEtcNetns {
			os.Remove("/etc/netns") // only if empty: others may use it now
		}
		if out, _ := runCmd("ip", "netns", "list"); strings.Contains(out, n.Name) {
			t.Errorf("network namespace %s still exists after cleanup", n.Name)
		}
		if _, err := os.Stat(n.etcDir); err == nil {
			t.Errorf("%s still exists after cleanup", n.etcDir)
		}
	})
	for _, args := range [][]string{
		{"ip", "netns", "add", n.Name},
		{"ip", "netns", "exec", n.Name, "ip", "link", "set", "lo", "up"},
	} {
		if out, err := runCmd(args...); err != nil {
			t.Fatalf("making network namespace %s: %s: %v\n%s", n.Name, strings.Join(args, " "), err, out)
		}
	}
	return n
}

// Command is exec.Command for a program run inside the namespace (`ip
// netns exec`, which execs it: the process's PID is the program's).
func (n *Netns) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Exec runs a command inside the namespace and returns its combined output.
func (n *Netns) Exec(args ...string) (string, error) {
	return runCmd(append([]string{"ip", "netns", "exec", n.Name}, args...)...)
}

// WriteEtc writes /etc/netns/NAME/name, which programs started in the
// namespace see as /etc/name.
func (n *Netns) WriteEtc(t testing.TB, name, content string) {
	t.Helper()
	if err := os.MkdirAll(n.etcDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.etcDir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Dial connects to addr from inside the namespace.
func (n *Netns) Dial(network, addr string, timeout time.Duration) (net.Conn, error) {
	return dialIn(n.Name, network, addr, timeout)
}

// ListenPacket opens a packet socket inside the namespace; it stays there
// whichever goroutine uses it.
func (n *Netns) ListenPacket(network, addr string) (pc net.PacketConn, err error) {
	err = inNetns(n.Name, func() error {
		pc, err = net.ListenPacket(network, addr)
		return err
	})
	return pc, err
}
