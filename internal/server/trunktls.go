package server

// Verified TLS to carriers. sipgo opens TLS connections to the address a
// request is routed to and checks the certificate against that address
// (an IP: no check at all, see verifyPeer); a carrier's certificate names
// its host (RFC 5922 §4: the domain of the trunk's address, not the IP
// DNS gave). So for a trunk with tls_verify on we connect ourselves,
// verify against the trunk's name and CA bundle, and hand the connection
// to sipgo's TLS transport as if a listener had accepted it: its pool
// then finds it by the carrier's address and sends the request on it.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/trunk"
)

// tlsDialTimeout bounds connecting to a carrier and its TLS handshake.
const tlsDialTimeout = 5 * time.Second

// errUnverifiedTLS refuses a TLS connection sipgo would open on its own
// to a carrier that must be verified (the verified one was gone).
var errUnverifiedTLS = errors.New("TLS to this carrier is opened verified only")

// handoff is one connection for sipgo's TLS transport; added is closed
// once the transport has it in its pool.
type handoff struct {
	conn  net.Conn
	added chan struct{}
}

// handListener is a net.Listener whose connections are the ones we
// dialled. sipgo's Serve loop puts each accepted connection in its pool
// before it calls Accept again, which is how we know it is there.
type handListener struct {
	addr    net.Addr
	ch      chan handoff
	done    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	pending chan struct{}
}

func (l *handListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.pending != nil {
		close(l.pending)
		l.pending = nil
	}
	l.mu.Unlock()
	select {
	case h := <-l.ch:
		l.mu.Lock()
		l.pending = h.added
		l.mu.Unlock()
		return h.conn, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handListener) Addr() net.Addr { return l.addr }

// hand gives c to sipgo and waits until its pool has it.
func (l *handListener) hand(ctx context.Context, c net.Conn) error {
	h := handoff{conn: c, added: make(chan struct{})}
	select {
	case l.ch <- h:
	case <-l.done:
		return net.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-h.added:
		return nil
	case <-l.done:
		return net.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// trunkTLS connects to carriers whose certificate is verified.
type trunkTLS struct {
	s     *Server
	start sync.Once
	ln    *handListener
	mu    sync.Mutex
	dials map[string]*sync.Mutex // one connection attempt per address at a time
}

// refuse is sipgo's TLS dialer's check: an address of a carrier to be
// verified is not connected to unverified.
func (t *trunkTLS) refuse(addr string) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil
	}
	if t.s.trunkSrc.Load().VerifiesTLS(ap) {
		return fmt.Errorf("%s: %w", addr, errUnverifiedTLS)
	}
	return nil
}

// ensure makes sure sipgo has a verified TLS connection to dst: the one
// it has, else a new one checked against peer.
func (t *trunkTLS) ensure(dst netip.AddrPort, peer trunk.TLSPeer) error {
	tl := t.s.ua.TransportLayer()
	key := dst.String()
	if c, err := tl.GetConnection("TLS", key); err == nil {
		return t.check(c, key, peer)
	}
	t.start.Do(func() {
		addr := t.s.TLSAddr
		if addr == nil {
			addr = &net.TCPAddr{IP: net.IPv4zero}
		}
		t.ln = &handListener{addr: addr, ch: make(chan handoff), done: make(chan struct{})}
		go func() { _ = tl.ServeTLS(t.ln) }()
	})
	if t.ln == nil {
		return errors.New("server closing")
	}
	t.mu.Lock()
	if t.dials == nil {
		t.dials = map[string]*sync.Mutex{}
	}
	m := t.dials[key]
	if m == nil {
		m = &sync.Mutex{}
		t.dials[key] = m
	}
	t.mu.Unlock()
	m.Lock()
	defer m.Unlock()
	if c, err := tl.GetConnection("TLS", key); err == nil {
		return t.check(c, key, peer) // another request connected meanwhile
	}
	ctx, cancel := context.WithTimeout(context.Background(), tlsDialTimeout)
	defer cancel()
	d := net.Dialer{Timeout: tlsDialTimeout}
	if ap, err := netip.ParseAddrPort(t.s.cfg.SIP.Listen); err == nil && !ap.Addr().IsUnspecified() {
		d.LocalAddr = &net.TCPAddr{IP: ap.Addr().AsSlice()} // as streamSource: carriers know our address
	}
	raw, err := d.DialContext(ctx, "tcp", key)
	if err != nil {
		return fmt.Errorf("trunk %s: connecting to %s: %w", peer.Trunk, key, err)
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: tlsSuites, ServerName: peer.ServerName, RootCAs: peer.Roots}
	c := tls.Client(raw, conf)
	if err := c.HandshakeContext(ctx); err != nil {
		raw.Close()
		t.s.log.Warn("trunk TLS certificate not accepted", "trunk", peer.Trunk, "server", key,
			"expected_name", peer.ServerName, "own_ca", peer.Roots != nil, "error", err)
		return fmt.Errorf("trunk %s: TLS to %s as %s: %w", peer.Trunk, key, peer.ServerName, err)
	}
	if err := t.ln.hand(ctx, c); err != nil {
		c.Close()
		return fmt.Errorf("trunk %s: TLS to %s: %w", peer.Trunk, key, err)
	}
	t.s.log.Debug("trunk TLS verified", "trunk", peer.Trunk, "server", key, "name", peer.ServerName)
	return nil
}

// check verifies an open connection to a carrier for peer: it may have
// been verified for another trunk (another name, another CA) at the same
// address, or be one the carrier opened to us.
func (t *trunkTLS) check(c sip.Connection, key string, peer trunk.TLSPeer) error {
	var state tls.ConnectionState
	if tc, ok := c.(*sip.TCPConnection); ok {
		if conn, ok := tc.Conn.(*tls.Conn); ok {
			state = conn.ConnectionState()
		}
	}
	err := errors.New("no server certificate on the open connection")
	if len(state.PeerCertificates) > 0 {
		opts := x509.VerifyOptions{DNSName: peer.ServerName, Roots: peer.Roots, Intermediates: x509.NewCertPool()}
		for _, ic := range state.PeerCertificates[1:] {
			opts.Intermediates.AddCert(ic)
		}
		_, err = state.PeerCertificates[0].Verify(opts)
	}
	if err != nil {
		t.s.log.Warn("trunk TLS certificate not accepted", "trunk", peer.Trunk, "server", key,
			"expected_name", peer.ServerName, "own_ca", peer.Roots != nil, "error", err)
		return fmt.Errorf("trunk %s: open TLS connection to %s as %s: %w", peer.Trunk, key, peer.ServerName, err)
	}
	return nil
}

// close stops handing connections over.
func (t *trunkTLS) close() {
	t.start.Do(func() {}) // no listener after this; and ln is safe to read
	if t.ln != nil {
		t.ln.Close()
	}
}
