//go:build !linux

package media

import (
	"net"
	"net/netip"
)

// sock is one relay socket. Off Linux it is a *net.UDPConn read by a
// goroutine of its own (see engine_other.go).
type sock struct {
	c *net.UDPConn
}

func listenSock(laddr netip.AddrPort) (sock, error) {
	network := "udp6"
	if laddr.Addr().Is4() {
		network = "udp4"
	}
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(laddr))
	if err != nil {
		return sock{}, err
	}
	return sock{c: c}, nil
}

func sockFromConn(c *net.UDPConn) (sock, error) { return sock{c: c}, nil }

func (s sock) close() error { return s.c.Close() }

// recvFrom blocks until a datagram arrives or the socket is closed.
func (s sock) recvFrom(b []byte) (int, netip.AddrPort, error) {
	n, src, err := s.c.ReadFromUDPAddrPort(b)
	return n, netip.AddrPortFrom(src.Addr().Unmap(), src.Port()), err
}

func (s sock) sendTo(b []byte, dst netip.AddrPort) error {
	_, err := s.c.WriteToUDPAddrPort(b, dst)
	return err
}

// conn returns a *net.UDPConn on a duplicate of the socket.
func (s sock) conn() (*net.UDPConn, error) {
	f, err := s.c.File()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return udpConnFromFile(f)
}
