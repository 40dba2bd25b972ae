package sipx

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

func TestPerSource(t *testing.T) {
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("10.1.2.3")
	p := &PerSource{Max: 2, Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	for range 2 {
		if !p.Acquire(a) {
			t.Fatal("refused under the cap")
		}
	}
	if p.Acquire(a) {
		t.Fatal("third slot granted over Max 2")
	}
	if p.Held(a) != 2 {
		t.Fatalf("Held = %d, want 2", p.Held(a))
	}
	for range 5 {
		if !p.Acquire(b) {
			t.Fatal("trusted source refused")
		}
	}
	if p.Total() != 7 {
		t.Fatalf("Total = %d, want 7", p.Total())
	}
	p.Release(a)
	if !p.Acquire(netip.MustParseAddr("::ffff:192.0.2.1")) {
		t.Fatal("slot not given back (or v4-mapped not unmapped)")
	}
	p.Release(a)
	p.Release(a)
	p.Release(a) // one too many: harmless
	for range 5 {
		p.Release(b)
	}
	if p.Total() != 0 || len(p.m) != 0 {
		t.Fatalf("table not empty after releases: %v", p.m)
	}
}

// serveStreams accepts on a limited listener and plays sipgo's part:
// reads each connection and reports every message end (a blank line) to
// OnMessage.
func serveStreams(t *testing.T, s *Streams) net.Addr {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := s.Listen(raw)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var acc []byte
				buf := make([]byte, 512)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					acc = append(acc, buf[:n]...)
					for {
						i := bytes.Index(acc, []byte("\r\n\r\n"))
						if i < 0 {
							break
						}
						acc = acc[i+4:]
						req := sip.NewRequest(sip.OPTIONS, sip.Uri{Host: "x"})
						req.SetTransport("TCP")
						req.SetSource(c.RemoteAddr().String())
						s.OnMessage(req)
					}
				}
			}()
		}
	}()
	return l.Addr()
}

// closedWithin reports whether the server closes c within d.
func closedWithin(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.ReadAll(c)
	var ne net.Error
	return !errors.As(err, &ne) || !ne.Timeout() // EOF or reset: closed by the server
}

func TestStreamsPerSourceCap(t *testing.T) {
	s := NewStreams(StreamLimits{MaxPerSource: 3, MessageTimeout: time.Minute}, nil)
	addr := serveStreams(t, s)
	var conns []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	extra, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if !closedWithin(extra, 2*time.Second) {
		t.Fatal("a fourth connection from one source was not closed")
	}
	if closedWithin(conns[0], 200*time.Millisecond) {
		t.Fatal("a connection under the cap was closed")
	}
	if got := s.Stats.Refused.Load(); got != 1 {
		t.Fatalf("Refused = %d, want 1", got)
	}
	conns[1].Close()
	deadline := time.Now().Add(2 * time.Second)
	for s.Open() != 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	again, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if closedWithin(again, 300*time.Millisecond) {
		t.Fatal("a slot given back by a closed connection was not reusable")
	}
}

func TestStreamsTimeouts(t *testing.T) {
	const msgTimeout, idle = 300 * time.Millisecond, 1500 * time.Millisecond
	s := NewStreams(StreamLimits{MessageTimeout: msgTimeout, IdleTimeout: idle}, nil)
	addr := serveStreams(t, s)
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	t.Run("silent", func(t *testing.T) {
		start := time.Now()
		if !closedWithin(dial(), 3*time.Second) {
			t.Fatal("a connection that sends nothing was not closed")
		}
		if el := time.Since(start); el < msgTimeout-50*time.Millisecond {
			t.Fatalf("closed after %v, before sip.message_timeout", el)
		}
	})
	t.Run("half a message, dripped", func(t *testing.T) {
		c := dial()
		start := time.Now()
		go func() {
			for _, b := range []byte("OPTIONS sip:x SIP/2.0\r\nVia: ") {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
		if !closedWithin(c, 3*time.Second) {
			t.Fatal("a connection dripping half a message was not closed")
		}
		if el := time.Since(start); el > 2*msgTimeout+500*time.Millisecond {
			t.Fatalf("dripping kept the connection %v, past sip.message_timeout", el)
		}
	})
	t.Run("whole messages then idle", func(t *testing.T) {
		c := dial()
		if _, err := c.Write([]byte("OPTIONS sip:x SIP/2.0\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		// Past the message timeout, but a complete message has arrived:
		// only the idle timeout applies now.
		if closedWithin(c, 2*msgTimeout) {
			t.Fatal("a connection between messages was closed by sip.message_timeout")
		}
		// Keepalives keep it open past the idle timeout.
		for range 4 {
			if _, err := c.Write([]byte("\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			time.Sleep(idle / 3)
		}
		if closedWithin(c, 10*time.Millisecond) {
			t.Fatal("keepalives did not keep the connection open")
		}
		if !closedWithin(c, idle+time.Second) {
			t.Fatal("an idle connection was not closed after sip.idle_timeout")
		}
	})
	if s.Stats.TimedOut.Load() < 3 {
		t.Fatalf("TimedOut = %d, want >= 3", s.Stats.TimedOut.Load())
	}
}

func TestStreamsBannedAtAccept(t *testing.T) {
	s := NewStreams(StreamLimits{MessageTimeout: time.Minute}, func(ip netip.Addr) bool { return ip.IsLoopback() })
	addr := serveStreams(t, s)
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !closedWithin(c, 2*time.Second) {
		t.Fatal("a banned source's connection was not closed at accept")
	}
	if s.Open() != 0 {
		t.Fatalf("Open = %d after a refused connection", s.Open())
	}
}
