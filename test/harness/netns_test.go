//go:build linux

package harness

import (
	"net"
	"strings"
	"testing"
	"time"
)

// TestStartNAT: a TCP connection from the phone namespace to a listener on
// the host end of the WAN link arrives from the router's WAN address (the
// MASQUERADE rule is at work), and the namespaces and the host's interface
// are gone once the test that made them has ended.
func TestStartNAT(t *testing.T) {
	var n *NAT
	t.Run("masquerade", func(t *testing.T) {
		n = StartNAT(t)
		ln, err := net.Listen("tcp", net.JoinHostPort(n.HostIP, "0"))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		c, err := n.Dial(n.Phone, "tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatalf("dialing %s from netns %s: %v", ln.Addr(), n.Phone, err)
		}
		defer c.Close()
		if local := c.LocalAddr().(*net.TCPAddr).IP.String(); local != n.PhoneIP {
			t.Errorf("the phone's end of the connection is %s, want %s", local, n.PhoneIP)
		}
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if from := s.RemoteAddr().(*net.TCPAddr).IP.String(); from != n.WANIP {
			t.Errorf("the host saw the phone's connection from %s, want the router's %s", from, n.WANIP)
		}
		if out, err := n.Exec(n.Router, "iptables", "-t", "nat", "-S", "POSTROUTING"); err != nil ||
			!strings.Contains(out, "MASQUERADE") {
			t.Errorf("router's nat POSTROUTING (%v):\n%s", err, out)
		}
	})
	if n == nil {
		t.FailNow()
	}
	out, err := runCmd("ip", "netns", "list")
	if err != nil {
		t.Fatalf("ip netns list: %v\n%s", err, out)
	}
	for _, ns := range []string{n.Router, n.Phone} {
		if strings.Contains(out, ns) {
			t.Errorf("network namespace %s left behind", ns)
		}
	}
	if _, err := net.InterfaceByName(n.hostIf); err == nil {
		t.Errorf("interface %s left behind", n.hostIf)
	}
}
