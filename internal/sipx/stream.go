package sipx

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// StreamLimits bound the TCP and TLS connections of the SIP listeners.
type StreamLimits struct {
	// MaxPerSource is how many connections one source IP may hold open at
	// once; more are closed as they are accepted. 0: no cap.
	MaxPerSource int
	// MessageTimeout is how long a connection has to deliver a whole
	// message once it has begun one, and to deliver its first message
	// (TLS handshake included) after it is accepted: a connection that
	// sends nothing, or half a message, is closed after it.
	MessageTimeout time.Duration
	// IdleTimeout closes a connection that has sent nothing (not even a
	// CRLF keepalive) for this long between messages. 0: never.
	IdleTimeout time.Duration
	// Trusted sources are never refused for MaxPerSource.
	Trusted []netip.Prefix
}

// StreamStats count what Streams did.
type StreamStats struct {
	Accepted, Refused, TimedOut atomic.Uint64
}

// Streams enforces StreamLimits on listeners handed to sipgo (Listen)
// and learns where messages end from sipgo's transport layer (OnMessage),
// which is the only place that knows.
type Streams struct {
	lim    StreamLimits
	banned func(netip.Addr) bool
	conns  PerSource
	Stats  StreamStats

	mu     sync.Mutex
	byAddr map[string]*streamConn
}

// NewStreams makes the limiter; banned (may be nil) closes a banned
// source's connection as it is accepted.
func NewStreams(lim StreamLimits, banned func(netip.Addr) bool) *Streams {
	return &Streams{lim: lim, banned: banned, conns: PerSource{Max: lim.MaxPerSource, Trusted: lim.Trusted},
		byAddr: make(map[string]*streamConn)}
}

// Open is how many connections are open.
func (s *Streams) Open() int { return s.conns.Total() }

// Listen wraps l so that its connections obey the limits.
func (s *Streams) Listen(l net.Listener) net.Listener { return &streamListener{Listener: l, s: s} }

// OnMessage is a sipgo transport-layer message handler: a whole message
// arrived on the connection from msg's source.
func (s *Streams) OnMessage(msg sip.Message) {
	tp := msg.Transport()
	if !strings.EqualFold(tp, "TCP") && !strings.EqualFold(tp, "TLS") {
		return
	}
	s.mu.Lock()
	c := s.byAddr[msg.Source()]
	s.mu.Unlock()
	if c != nil {
		c.mu.Lock()
		c.begun = time.Time{}
		c.last = time.Now()
		c.mu.Unlock()
	}
}

type streamListener struct {
	net.Listener
	s *Streams
}

// Accept returns the next connection the limits allow; the others are
// closed here without a byte read.
func (l *streamListener) Accept() (net.Conn, error) {
	s := l.s
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ap, perr := netip.ParseAddrPort(c.RemoteAddr().String())
		ip := ap.Addr().Unmap()
		if perr != nil {
			return c, nil // not an IP connection (tests with pipes): no limits apply
		}
		if s.banned != nil && s.banned(ip) {
			s.Stats.Refused.Add(1)
			c.Close()
			continue
		}
		if !s.conns.Acquire(ip) {
			s.Stats.Refused.Add(1)
			c.Close()
			continue
		}
		s.Stats.Accepted.Add(1)
		now := time.Now()
		sc := &streamConn{Conn: c, s: s, ip: ip, key: c.RemoteAddr().String(), begun: now, last: now}
		s.mu.Lock()
		s.byAddr[sc.key] = sc
		s.mu.Unlock()
		return sc, nil
	}
}

// streamConn is one accepted connection under the limits.
type streamConn struct {
	net.Conn
	s   *Streams
	ip  netip.Addr
	key string

	mu    sync.Mutex
	begun time.Time // when the message being received began; zero between messages
	last  time.Time // last byte or message

	once sync.Once
}

// deadline is when the connection times out if nothing more comes.
func (c *streamConn) deadline() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.begun.IsZero() && c.s.lim.MessageTimeout > 0 {
		return c.begun.Add(c.s.lim.MessageTimeout)
	}
	if c.s.lim.IdleTimeout > 0 {
		return c.last.Add(c.s.lim.IdleTimeout)
	}
	return time.Time{}
}

// Read reads with the deadline the connection's state calls for; a
// connection past it is closed and reads as ended (io.EOF), which sipgo
// takes quietly.
func (c *streamConn) Read(b []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(c.deadline()); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(b)
	if n > 0 {
		now := time.Now()
		c.mu.Lock()
		c.last = now
		if c.begun.IsZero() && len(bytes.Trim(b[:n], "\r\n\x00")) > 0 {
			c.begun = now // a keepalive begins no message
		}
		c.mu.Unlock()
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		c.s.Stats.TimedOut.Add(1)
		c.Close()
		return n, io.EOF
	}
	return n, err
}

// Close closes the connection and gives back its slot, once.
func (c *streamConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.s.conns.Release(c.ip)
		c.s.mu.Lock()
		if c.s.byAddr[c.key] == c {
			delete(c.s.byAddr, c.key)
		}
		c.s.mu.Unlock()
	})
	return err
}
