//go:build linux

package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sock is one relay socket: a non-blocking UDP file descriptor that only
// the relay engine's epoll set watches (not the Go runtime's poller), so a
// datagram costs one recvfrom and one sendto, with no goroutine to wake.
// The bridge's io lock guards fd against use after close.
type sock struct {
	fd int
	v6 bool
}

// listenSock binds a UDP socket to laddr.
func listenSock(laddr netip.AddrPort) (sock, error) {
	family, sa := unix.AF_INET, unix.Sockaddr(nil)
	if laddr.Addr().Is4() {
		sa = &unix.SockaddrInet4{Port: int(laddr.Port()), Addr: laddr.Addr().As4()}
	} else {
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(laddr.Port()), Addr: laddr.Addr().As16()}
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return sock{fd: -1}, os.NewSyscallError("socket", err)
	}
	if family == unix.AF_INET6 {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return sock{fd: -1}, &net.OpError{Op: "listen", Net: "udp", Addr: net.UDPAddrFromAddrPort(laddr), Err: os.NewSyscallError("bind", err)}
	}
	return sock{fd: fd, v6: family == unix.AF_INET6}, nil
}

// sockFromConn takes over a socket made by a PortPoolConfig.Listen hook:
// it duplicates the descriptor and closes the *net.UDPConn, which takes
// it out of the Go runtime's poller.
func sockFromConn(c *net.UDPConn) (sock, error) {
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		return sock{fd: -1}, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(f uintptr) { fd, derr = unix.Dup(int(f)) }); err != nil {
		return sock{fd: -1}, err
	}
	if derr != nil {
		return sock{fd: -1}, os.NewSyscallError("dup", derr)
	}
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return sock{fd: -1}, os.NewSyscallError("fcntl", err)
	}
	la, _ := c.LocalAddr().(*net.UDPAddr)
	return sock{fd: fd, v6: la != nil && la.IP.To4() == nil}, nil
}

func (s sock) close() error {
	if err := unix.Close(s.fd); err != nil {
		return os.NewSyscallError("close", err)
	}
	return nil
}

var errWouldBlock = errors.New("no datagram")

// recvFrom reads one datagram without blocking. It does not allocate.
func (s sock) recvFrom(b []byte) (int, netip.AddrPort, error) {
	var rsa unix.RawSockaddrAny
	salen := uint32(unsafe.Sizeof(rsa))
	n, _, e := unix.Syscall6(unix.SYS_RECVFROM, uintptr(s.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
		0, uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&salen)))
	if e != 0 {
		if e == unix.EAGAIN || e == unix.EINTR {
			return 0, netip.AddrPort{}, errWouldBlock
		}
		return 0, netip.AddrPort{}, e
	}
	var src netip.AddrPort
	switch rsa.Addr.Family {
	case unix.AF_INET:
		in := (*unix.RawSockaddrInet4)(unsafe.Pointer(&rsa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&in.Port))[:])
		src = netip.AddrPortFrom(netip.AddrFrom4(in.Addr), port)
	case unix.AF_INET6:
		in := (*unix.RawSockaddrInet6)(unsafe.Pointer(&rsa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&in.Port))[:])
		src = netip.AddrPortFrom(netip.AddrFrom16(in.Addr).Unmap(), port)
	}
	return int(n), src, nil
}

// sendTo sends one datagram without blocking. It does not allocate.
func (s sock) sendTo(b []byte, dst netip.AddrPort) error {
	var e unix.Errno
	if !s.v6 {
		a := dst.Addr().Unmap()
		if !a.Is4() {
			return unix.EAFNOSUPPORT
		}
		sa := unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.As4()}
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], dst.Port())
		_, _, e = unix.Syscall6(unix.SYS_SENDTO, uintptr(s.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
			0, uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	} else {
		sa := unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: dst.Addr().As16()}
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], dst.Port())
		_, _, e = unix.Syscall6(unix.SYS_SENDTO, uintptr(s.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
			0, uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	}
	if e != 0 {
		return e
	}
	return nil
}

// String is for errors.
func (s sock) String() string { return fmt.Sprintf("fd %d", s.fd) }

// conn returns a *net.UDPConn on a duplicate of the socket's descriptor,
// watched by the Go runtime's poller (blocking reads with deadlines).
func (s sock) conn() (*net.UDPConn, error) {
	fd, err := unix.Dup(s.fd)
	if err != nil {
		return nil, os.NewSyscallError("dup", err)
	}
	unix.CloseOnExec(fd)
	f := os.NewFile(uintptr(fd), "rtp")
	defer f.Close() // FilePacketConn took its own duplicate
	return udpConnFromFile(f)
}
