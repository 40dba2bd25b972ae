package sipx

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"golang.org/x/net/ipv4"
)

// Handler answers a request outside any transaction state (REGISTER,
// OPTIONS). It must not block on the network.
type Handler func(req *sip.Request) *sip.Response

// Stats count what the edge did.
type Stats struct {
	Received, Malformed, Dropped, Banned, Oversize, Fast, Passed, Scanners, RateLimited atomic.Uint64
	// SourceLimited counts requests refused over a per-source cap
	// (pending transactions, calls being set up); the server counts them.
	SourceLimited atomic.Uint64
}

// Gate is the policy shared by every listener.
type Gate struct {
	Limits Limits
	// Banned reports a banned source; nil means nobody is banned.
	Banned func(netip.Addr) bool
	// RejectBanned answers banned sources 403 instead of dropping.
	RejectBanned bool
	// OnScanner bans a source whose request names a scanning tool (see
	// Scanner); nil lets scanners through. The request is dropped either
	// way.
	OnScanner func(src netip.Addr, tool string)
	// Allow rate-limits each source: a request it refuses is dropped
	// unanswered (RFC 3261 has no answer for "too fast"); nil allows all.
	Allow func(src netip.Addr) bool
	// Fast handles these methods statelessly on UDP (no To tag).
	Fast map[sip.RequestMethod]Handler
	// Challenge may answer an INVITE outside a dialog statelessly on UDP
	// (a digest challenge, no transaction); nil from it passes the INVITE
	// on to the transaction layer.
	Challenge func(req *sip.Request) *sip.Response
	Log       *slog.Logger
	Stats     Stats

	parser *sip.Parser
	once   sync.Once
}

func (g *Gate) p() *sip.Parser {
	g.once.Do(func() {
		g.parser = sip.NewParser()
		g.parser.MaxMessageLength = 65535
	})
	return g.parser
}

// StreamFilter is a sipgo read filter for TCP/TLS/WS: a banned source's
// connection is closed on its first read.
func (g *Gate) StreamFilter(props sip.TransportReadProps, data []byte) ([]byte, error) {
	if g.Banned != nil {
		if ap, err := netip.ParseAddrPort(props.RemoteAddr.String()); err == nil && g.Banned(ap.Addr().Unmap()) {
			g.Stats.Banned.Add(1)
			return nil, errBanned
		}
	}
	return data, nil
}

var errBanned = errors.New("source is banned")

type packet struct {
	data []byte
	addr *net.UDPAddr
}

// UDPListener reads one UDP socket with several workers. Packets the
// workers do not answer themselves go on to sipgo through lanes: each lane
// is a net.PacketConn that sipgo serves with a read loop of its own, which
// parses each packet again, one at a time. With one lane that loop is the
// whole server's bottleneck; a call's packets (by Call-ID) always take the
// same lane, so they stay in order.
type UDPListener struct {
	gate   *Gate
	conn   *net.UDPConn
	lanes  []*Lane
	done   chan struct{}
	closed atomic.Bool
	wg     sync.WaitGroup
}

// Lane is one of a UDPListener's ways into sipgo; see UDPListener.
type Lane struct {
	*UDPListener
	ch chan packet
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// ServeUDP starts workers on conn; give each of its Lanes to sipgo.
func (g *Gate) ServeUDP(conn *net.UDPConn, workers, lanes int) *UDPListener {
	l := &UDPListener{gate: g, conn: conn, done: make(chan struct{})}
	for range max(lanes, 1) {
		l.lanes = append(l.lanes, &Lane{UDPListener: l, ch: make(chan packet, 1024)})
	}
	for range workers {
		l.wg.Add(1)
		go l.work()
	}
	return l
}

// batch is how many datagrams one worker takes per recvmmsg and answers per
// sendmmsg: under load it divides the syscalls by up to this much.
const batch = 16

func (l *UDPListener) work() {
	defer l.wg.Done()
	g := l.gate
	pc := ipv4.NewPacketConn(l.conn)
	size := max(g.Limits.MaxMessageSize+1, 4096) // one byte more tells an oversize datagram
	in := make([]ipv4.Message, batch)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, size)}
	}
	out := make([]ipv4.Message, 0, batch)
	bufs := make([]*bytes.Buffer, 0, batch)
	for {
		n, err := pc.ReadBatch(in, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || l.closed.Load() {
				return
			}
			g.Log.Warn("udp read", "error", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		for i := range in[:n] {
			m := &in[i]
			ua, ok := m.Addr.(*net.UDPAddr)
			if !ok {
				continue
			}
			ap := ua.AddrPort()
			src := netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
			data := m.Buffers[0][:m.N]
			res, msg, pass := g.process(data, src)
			switch {
			case res != nil:
				buf := bufPool.Get().(*bytes.Buffer)
				buf.Reset()
				res.StringWrite(buf)
				bufs = append(bufs, buf)
				out = append(out, ipv4.Message{Buffers: [][]byte{buf.Bytes()}, Addr: ua})
			case pass:
				l.pass(data, src, msg)
			}
		}
		if len(out) > 0 {
			l.send(pc, out)
			for _, b := range bufs {
				bufPool.Put(b)
			}
			clear(out)
			out, bufs = out[:0], bufs[:0]
		}
	}
}

// send writes a batch of answers with as few sendmmsg calls as it takes.
func (l *UDPListener) send(pc *ipv4.PacketConn, out []ipv4.Message) {
	for len(out) > 0 {
		n, err := pc.WriteBatch(out, 0)
		if err != nil {
			if !l.closed.Load() {
				l.gate.Log.Debug("udp write", "error", err)
			}
			n = max(n, 1) // skip the datagram that failed
		}
		out = out[n:]
	}
}

// refuse answers a malformed or invalid request, but only with a response
// that itself parses: headers copied from a broken request can be broken
// too, and then silence is the better answer. This path is rare, so the
// round trip costs nothing that matters.
func refuse(req *sip.Request, code int, reason string) *sip.Response {
	res := Reply(req, code, reason)
	if _, err := sip.ParseMessage([]byte(res.String())); err != nil {
		return nil
	}
	return res
}

// Limited reports a request over its source's rate limit, counting it;
// such a request gets no answer (used on TCP/TLS, where the UDP workers'
// check does not run).
func (g *Gate) Limited(src netip.Addr) bool {
	if g.Allow == nil || g.Allow(src) {
		return false
	}
	g.Stats.RateLimited.Add(1)
	return true
}

// Scanned reports a request from a scanning tool, banning its source and
// counting it; such a request gets no answer at all.
func (g *Gate) Scanned(req *sip.Request, src netip.Addr) bool {
	tool := Scanner(req)
	if tool == "" {
		return false
	}
	g.Stats.Scanners.Add(1)
	g.Log.Warn("scanner banned", "source", src.String(), "tool", tool)
	if g.OnScanner != nil {
		g.OnScanner(src, tool)
	}
	return true
}

// Process decides what to do with one datagram from src: answer it (res),
// hand it to the transaction layer (pass), or drop it (neither).
func (g *Gate) Process(data []byte, src netip.AddrPort) (res *sip.Response, pass bool) {
	res, _, pass = g.process(data, src)
	return res, pass
}

// process is Process, also returning the message it parsed.
func (g *Gate) process(data []byte, src netip.AddrPort) (res *sip.Response, msg sip.Message, pass bool) {
	g.Stats.Received.Add(1)
	srcIP := src.Addr().Unmap()
	if g.Banned != nil && g.Banned(srcIP) && !g.RejectBanned {
		g.Stats.Banned.Add(1)
		return nil, nil, false
	}
	if len(bytes.Trim(data, "\r\n\x00")) == 0 {
		return nil, nil, false // keepalive
	}
	if g.Allow != nil && !g.Allow(srcIP) {
		g.Stats.RateLimited.Add(1)
		return nil, nil, false
	}
	srcStr := src.String()
	if len(data) > g.Limits.MaxMessageSize {
		g.Stats.Oversize.Add(1)
		msg, _, _ := g.p().ParseHeaders(data, false)
		if req, ok := msg.(*sip.Request); ok && Answerable(req) && req.CSeq() != nil {
			req.SetSource(srcStr)
			req.SetTransport("UDP")
			return refuse(req, 513, "Message Too Large"), nil, false
		}
		return nil, nil, false
	}
	msg, err := g.p().ParseSIP(data)
	if err != nil {
		g.Stats.Malformed.Add(1)
		req, ok := msg.(*sip.Request)
		if !ok || !Answerable(req) {
			// Not a request we could answer: RFC 3261 §18.3 says discard.
			g.Stats.Dropped.Add(1)
			g.Log.Debug("dropped unparseable message", "source", srcStr, "error", err)
			return nil, nil, false
		}
		req.SetSource(srcStr)
		req.SetTransport("UDP")
		pr := ParseProblem(data, err)
		g.Log.Debug("malformed request", "source", srcStr, "reason", pr.Reason, "error", err)
		return refuse(req, pr.Code, pr.Reason), nil, false
	}
	msg.SetSource(srcStr)
	msg.SetTransport("UDP")
	req, ok := msg.(*sip.Request)
	if !ok {
		return nil, msg, true
	}
	if g.Banned != nil && g.Banned(srcIP) {
		g.Stats.Banned.Add(1)
		if req.IsAck() {
			return nil, nil, false
		}
		return Reply(req, 403, "Forbidden"), nil, false
	}
	if g.Scanned(req, srcIP) {
		return nil, nil, false
	}
	if pr := Validate(req, g.Limits); pr != nil {
		g.Stats.Malformed.Add(1)
		if !Answerable(req) {
			g.Stats.Dropped.Add(1)
			return nil, nil, false
		}
		g.Log.Debug("invalid request", "source", srcStr, "method", req.Method, "reason", pr.Reason)
		return refuse(req, pr.Code, pr.Reason), nil, false
	}
	if h, ok := g.Fast[req.Method]; ok {
		if to := req.To(); to != nil && !to.Params.Has("tag") {
			g.Stats.Fast.Add(1)
			SetToTag(req)
			res := h(req)
			if res != nil {
				FixVia(res, srcStr)
			}
			return res, nil, false
		}
	}
	if req.Method == sip.INVITE && g.Challenge != nil {
		if to := req.To(); to != nil && !to.Params.Has("tag") {
			SetToTag(req) // the same tag for a retransmission
			if res := g.Challenge(req); res != nil {
				g.Stats.Fast.Add(1)
				FixVia(res, srcStr)
				return res, nil, false
			}
		}
	}
	return nil, msg, true
}

func (l *UDPListener) pass(data []byte, src netip.AddrPort, msg sip.Message) {
	l.gate.Stats.Passed.Add(1)
	lane := l.lanes[0]
	if len(l.lanes) > 1 {
		if id := msg.CallID(); id != nil {
			lane = l.lanes[fnv32(id.Value())%uint32(len(l.lanes))]
		}
	}
	p := packet{data: append([]byte(nil), data...), addr: net.UDPAddrFromAddrPort(src)}
	select {
	case lane.ch <- p:
	case <-l.done:
	default:
		// sipgo is behind: shed load like a full socket buffer would.
		l.gate.Stats.Dropped.Add(1)
	}
}

// fnv32 is FNV-1a of s.
func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

// Lanes are the PacketConns to give to sipgo, each to its own ServeUDP.
func (l *UDPListener) Lanes() []*Lane { return l.lanes }

// ReadFrom is sipgo's side: it returns packets the workers passed on.
func (ln *Lane) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case p := <-ln.ch:
		return copy(b, p.data), p.addr, nil
	case <-ln.done:
		return 0, nil, net.ErrClosed
	}
}

// WriteTo sends on the shared socket.
func (l *UDPListener) WriteTo(b []byte, addr net.Addr) (int, error) { return l.conn.WriteTo(b, addr) }

// Close stops the workers and closes the socket.
func (l *UDPListener) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	close(l.done)
	err := l.conn.Close()
	l.wg.Wait()
	return err
}

// LocalAddr is the socket's address.
func (l *UDPListener) LocalAddr() net.Addr { return l.conn.LocalAddr() }

// SetDeadline is not supported by the shared listener; it is a no-op.
func (l *UDPListener) SetDeadline(time.Time) error { return nil }

// SetReadDeadline is a no-op (see SetDeadline).
func (l *UDPListener) SetReadDeadline(time.Time) error { return nil }

// SetWriteDeadline sets the socket's write deadline.
func (l *UDPListener) SetWriteDeadline(t time.Time) error { return l.conn.SetWriteDeadline(t) }
