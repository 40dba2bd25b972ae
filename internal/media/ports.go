package media

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

// PortPoolConfig says where RTP/RTCP sockets are bound.
type PortPoolConfig struct {
	// IP is the local address every socket binds to. Give the interface
	// address media should leave from rather than 0.0.0.0 or [::]: replies
	// from a wildcard socket may leave from another address than the one
	// the SDP advertised, which NATs and firewalls drop (one-way audio).
	IP netip.Addr
	// Low and High bound the range, both inclusive (config key rtp.ports,
	// default 10000-20000). RTP takes the even ports and RTCP the next odd
	// one (RFC 3550 §11), so 10000-20000 holds 5,000 pairs.
	Low, High int
	// Listen binds one UDP socket; nil means a socket made directly for the
	// relay engine. Tests inject it to make the OS refuse chosen ports; the
	// relay takes the socket over from the *net.UDPConn.
	Listen func(laddr netip.AddrPort) (*net.UDPConn, error)
	// Workers is how many relay workers (epoll loops) serve the pool's
	// sockets while calls are up; 0 means GOMAXPROCS.
	Workers int
}

// PortPool hands out RTP/RTCP socket pairs from a port range. It is safe for
// concurrent use. Free pairs wait in a FIFO queue, so Allocate costs O(1)
// and a pair just released is the last to be reused (late packets of the
// call that had it do not reach the next one). Pairs the OS refuses (bound
// by another program) go to the back of the queue and are tried again later.
type PortPool struct {
	ip     netip.Addr
	low    int
	pairs  int
	listen func(netip.AddrPort) (sock, error)
	gen    atomic.Uint32
	// slots[i] is pair i while it is handed out: the relay engine finds a
	// socket's pair from its epoll event.
	slots []atomic.Pointer[PortPair]
	eng   engine

	mu    sync.Mutex
	queue []uint16 // ring of free pair indexes
	head  int
	count int
}

// NewPortPool checks the range and that IP is a local address (one probe
// socket on an ephemeral port) and returns a pool with every pair free.
func NewPortPool(cfg PortPoolConfig) (*PortPool, error) {
	low := cfg.Low + cfg.Low%2 // first even port
	if !cfg.IP.IsValid() || cfg.Low < 1 || cfg.High > 65535 || low+1 > cfg.High {
		return nil, fmt.Errorf("%w: %s %d-%d", ErrPortRange, cfg.IP, cfg.Low, cfg.High)
	}
	p := &PortPool{
		ip:     cfg.IP.Unmap(),
		low:    low,
		pairs:  (cfg.High - low + 1) / 2,
		listen: listenSock,
	}
	p.eng = engine{pool: p, n: cfg.Workers}
	if cfg.Listen != nil {
		p.listen = func(laddr netip.AddrPort) (sock, error) {
			c, err := cfg.Listen(laddr)
			if err != nil {
				return sock{}, err
			}
			return sockFromConn(c)
		}
	}
	probe, err := p.listen(netip.AddrPortFrom(p.ip, 0))
	if err != nil {
		return nil, fmt.Errorf("%w: cannot bind %s: %w", ErrPortRange, p.ip, err)
	}
	probe.close()
	p.slots = make([]atomic.Pointer[PortPair], p.pairs)
	p.queue = make([]uint16, p.pairs)
	for i := range p.queue {
		p.queue[i] = uint16(i)
	}
	p.count = p.pairs
	return p, nil
}

// Size is the number of pairs in the range.
func (p *PortPool) Size() int { return p.pairs }

// Free is the number of pairs not handed out (some may be refused by the
// OS when tried).
func (p *PortPool) Free() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count
}

// Allocate binds the next free pair. It returns an error wrapping ErrNoPorts
// when every pair is handed out or refused by the OS (the caller answers
// 503). Each refused pair costs one bind attempt and moves to the back of
// the queue.
func (p *PortPool) Allocate() (*PortPair, error) {
	p.mu.Lock()
	tries := p.count
	p.mu.Unlock()
	refused := 0
	var lastErr error
	for range tries {
		idx, ok := p.pop()
		if !ok {
			break
		}
		pair, err := p.bind(idx)
		if err == nil {
			return pair, nil
		}
		p.push(idx)
		if !errors.Is(err, syscall.EADDRINUSE) && !errors.Is(err, syscall.EACCES) {
			// Not a busy port (out of file descriptors, say): trying the
			// rest of the range would fail the same way.
			return nil, fmt.Errorf("%w: %w", ErrNoPorts, err)
		}
		refused++
		lastErr = err
	}
	if refused > 0 {
		return nil, fmt.Errorf("%w (%d pairs refused by the OS, last: %w)", ErrNoPorts, refused, lastErr)
	}
	return nil, ErrNoPorts
}

func (p *PortPool) bind(idx uint16) (*PortPair, error) {
	port := uint16(p.low + 2*int(idx))
	rtp, err := p.listen(netip.AddrPortFrom(p.ip, port))
	if err != nil {
		return nil, err
	}
	rtcp, err := p.listen(netip.AddrPortFrom(p.ip, port+1))
	if err != nil {
		rtp.close()
		return nil, err
	}
	pp := &PortPair{
		pool: p, idx: idx, gen: p.gen.Add(1), rtp: rtp, rtcp: rtcp,
		rtpAddr:  netip.AddrPortFrom(p.ip, port),
		rtcpAddr: netip.AddrPortFrom(p.ip, port+1),
	}
	p.slots[idx].Store(pp)
	return pp, nil
}

func (p *PortPool) pop() (uint16, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.count == 0 {
		return 0, false
	}
	idx := p.queue[p.head]
	p.head = (p.head + 1) % len(p.queue)
	p.count--
	return idx, true
}

func (p *PortPool) push(idx uint16) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.queue[(p.head+p.count)%len(p.queue)] = idx
	p.count++
}

// PortPair is one bound RTP socket and its RTCP socket (port+1). Only the
// holder can give the ports back, through Close, and only once: a second
// Close is a no-op, so no call can free another call's ports.
type PortPair struct {
	pool     *PortPool
	idx      uint16
	gen      uint32 // tells this handing-out of slot idx from earlier ones
	rtp      sock
	rtcp     sock
	rtpAddr  netip.AddrPort
	rtcpAddr netip.AddrPort
	closed   atomic.Bool
	// bridge is set while a started bridge relays this pair's sockets.
	bridge atomic.Pointer[Bridge]
}

// RTP is the local address of the RTP socket (for SDP m= and c=).
func (pp *PortPair) RTP() netip.AddrPort { return pp.rtpAddr }

// RTCP is the local address of the RTCP socket, RTP port + 1.
func (pp *PortPair) RTCP() netip.AddrPort { return pp.rtcpAddr }

// Close closes both sockets and returns the pair to its pool. A second call
// returns ErrClosed and frees nothing.
func (pp *PortPair) Close() error {
	if !pp.closed.CompareAndSwap(false, true) {
		return ErrClosed
	}
	if br := pp.bridge.Load(); br != nil {
		// No relay worker may be using the sockets while they close.
		br.io.Lock()
		defer br.io.Unlock()
	}
	pp.pool.slots[pp.idx].CompareAndSwap(pp, nil)
	err := errors.Join(pp.rtp.close(), pp.rtcp.close())
	pp.pool.push(pp.idx) // after the sockets are closed, so the next bind succeeds
	return err
}

// Conn returns the RTP socket as a *net.UDPConn of its own (a duplicate
// descriptor, watched by the Go runtime's poller), for a media application
// that terminates the call's media on this server (a prompt player, an
// IVR, a recorder) instead of relaying it. The pair must not be joined to
// a started Bridge while the conn is in use. Close the conn when done with
// it; the ports stay the pair's until PortPair.Close, so the application
// can hand the pair on (to a Leg, when the call is then bridged) without
// the caller's media address changing.
func (pp *PortPair) Conn() (*net.UDPConn, error) {
	if pp.closed.Load() {
		return nil, ErrClosed
	}
	return pp.rtp.conn()
}

func udpConnFromFile(f *os.File) (*net.UDPConn, error) {
	pc, err := net.FilePacketConn(f)
	if err != nil {
		return nil, err
	}
	c, ok := pc.(*net.UDPConn)
	if !ok {
		pc.Close()
		return nil, fmt.Errorf("media: %T is not a UDP socket", pc)
	}
	return c, nil
}
