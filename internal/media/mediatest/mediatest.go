package mediatest

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"
)

// Clock is a manual clock for media.Clock: it moves only when told.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock set to an arbitrary fixed instant.
func NewClock() *Clock {
	return &Clock{t: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// RTP builds an RTP packet (RFC 3550 §5.1) with a 12-byte header.
func RTP(pt uint8, marker bool, seq uint16, ts, ssrc uint32, payload []byte) []byte {
	b := make([]byte, 12+len(payload))
	b[0] = 0x80
	b[1] = pt & 0x7f
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], ssrc)
	copy(b[12:], payload)
	return b
}

// Endpoint is a phone's media socket: it sends RTP with its own sequence
// numbers, timestamps and SSRC, and receives with deadlines.
type Endpoint struct {
	tb   testing.TB
	Conn *net.UDPConn
	SSRC uint32
	Seq  uint16
	TS   uint32
}

// NewEndpoint binds addr (such as "127.0.0.1:0") and closes it at the end
// of the test.
func NewEndpoint(tb testing.TB, addr string) *Endpoint {
	tb.Helper()
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := net.ListenUDP("udp", ua)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return &Endpoint{tb: tb, Conn: c, SSRC: uint32(c.LocalAddr().(*net.UDPAddr).Port)<<8 | 0x5a, Seq: 1000, TS: 16000}
}

// Addr is the endpoint's local address.
func (e *Endpoint) Addr() netip.AddrPort {
	return e.Conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// SendRTP sends the next packet of the endpoint's stream (sequence number
// +1, timestamp + len(payload), as for G.711) and returns its sequence
// number.
func (e *Endpoint) SendRTP(to netip.AddrPort, pt uint8, payload []byte) uint16 {
	e.tb.Helper()
	seq := e.Seq
	e.Send(to, RTP(pt, false, seq, e.TS, e.SSRC, payload))
	e.Seq++
	e.TS += uint32(len(payload))
	return seq
}

// Send sends raw bytes.
func (e *Endpoint) Send(to netip.AddrPort, b []byte) {
	e.tb.Helper()
	if _, err := e.Conn.WriteToUDPAddrPort(b, to); err != nil {
		e.tb.Fatalf("send to %s: %v", to, err)
	}
}

// Recv waits up to timeout for a datagram.
func (e *Endpoint) Recv(timeout time.Duration) ([]byte, netip.AddrPort, error) {
	buf := make([]byte, 2048)
	if err := e.Conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, netip.AddrPort{}, err
	}
	n, src, err := e.Conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	return buf[:n], src, nil
}

// MustRecv waits up to timeout for a datagram and fails the test if none
// comes.
func (e *Endpoint) MustRecv(timeout time.Duration) ([]byte, netip.AddrPort) {
	e.tb.Helper()
	b, src, err := e.Recv(timeout)
	if err != nil {
		e.tb.Fatalf("%s: no packet within %v: %v", e.Addr(), timeout, err)
	}
	return b, src
}

// Drain reads and discards whatever is already queued, returning how many
// datagrams there were. On loopback a sendto has delivered into the
// receiver's queue by the time it returns, so after a later packet has been
// seen elsewhere, Drain sees everything sent to this endpoint before it.
func (e *Endpoint) Drain() int {
	n := 0
	for {
		_, _, err := e.Recv(5 * time.Millisecond)
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				e.tb.Fatalf("drain: %v", err)
			}
			return n
		}
		n++
	}
}

// Eventually polls cond every millisecond until it holds or timeout passes.
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(time.Millisecond)
	}
}
