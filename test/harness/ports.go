package harness

import (
	"fmt"
	"net"
	"sync"
	"testing"
)

// handedOut remembers every port given to a test in this process so that two
// helpers never receive the same one, even after its probe socket is closed.
// Ports are a process-wide resource, so this is process-wide state.
var handedOut struct {
	sync.Mutex
	ports map[int]bool
}

func claim(port int) bool {
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports == nil {
		handedOut.ports = map[int]bool{}
	}
	if handedOut.ports[port] {
		return false
	}
	handedOut.ports[port] = true
	return true
}

// FreePort returns a loopback port the kernel reports free for UDP, for TCP,
// or for both ("udp", "tcp", "both"): for "both" it binds a TCP listener and a
// UDP socket on the same port before releasing them.
func FreePort(t testing.TB, network string) int {
	t.Helper()
	for range 100 {
		p, err := probe(network)
		if err != nil {
			continue
		}
		if claim(p) {
			return p
		}
	}
	t.Fatalf("no free loopback %s port after 100 tries", network)
	return 0
}

func probe(network string) (int, error) {
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	case "tcp", "both":
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer l.Close()
		p := l.Addr().(*net.TCPAddr).Port
		if network == "both" {
			c, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				return 0, err
			}
			c.Close()
		}
		return p, nil
	}
	return 0, fmt.Errorf("unknown network %q", network)
}
