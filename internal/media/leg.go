package media

import (
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultLatchWindow is how long after a leg starts, or after its remote
// address changes, it may latch to a source other than the SDP address.
const DefaultLatchWindow = 5 * time.Second

// bufSize is the relay's receive buffer (one per engine worker). A
// datagram that fills it is taken as truncated and dropped, so the largest
// relayed packet is one byte less: more than any RTP over an Ethernet MTU.
const bufSize = 2048

// Remote is what the peer's SDP says about its media.
type Remote struct {
	// RTP is the c= address and m= port. It may be a private address
	// behind NAT; the leg latches to where media really comes from. Zero
	// (not known yet) or an unspecified address (0.0.0.0, old-style hold)
	// means send nothing until latched.
	RTP netip.AddrPort
	// RTCP is the a=rtcp address (RFC 3605); zero means RTP port + 1.
	RTCP netip.AddrPort
	// PayloadTypes are the formats negotiated for this leg, including
	// telephone-event (RFC 4733) when DTMF was negotiated. Only these are
	// accepted from the peer.
	PayloadTypes []PayloadType
}

// LegConfig configures a leg. The zero value of every field but Remote is a
// sensible default.
type LegConfig struct {
	Remote Remote
	// LatchWindow overrides DefaultLatchWindow.
	LatchWindow time.Duration
	// IgnoreSDPIP turns off the preference, during the latch window, for a
	// source whose IP equals the SDP address's IP (see doc.go).
	IgnoreSDPIP bool
	// Clock is nil for the system clock.
	Clock Clock
	// Logger receives latch events; nil discards them. Give it the call's
	// child logger (call_id, leg).
	Logger *slog.Logger
	// SRTP, when set, makes this an SRTP leg (SDES keys, see SRTP): what
	// the peer sends is authenticated and decrypted, what is sent to it is
	// encrypted with the server's key. Nil is plain RTP.
	SRTP *SRTP
}

// Leg is the server's side of one call leg's media: an RTP/RTCP port pair,
// the peer's expected address and payload types, the latched address and
// the receive statistics. Its methods are safe for concurrent use; the
// packets themselves are read by the Bridge the leg is joined to.
type Leg struct {
	ports       *PortPair
	clock       Clock
	log         *slog.Logger
	window      time.Duration
	ignoreSDPIP bool
	epoch       time.Time // monotonic origin for arrival times

	mu    sync.Mutex // serialises changes of state
	state atomic.Pointer[legState]

	sec atomic.Pointer[legSRTP] // nil: plain RTP

	overlay atomic.Pointer[overlay] // audio laid over what the peer hears; nil: none

	rtpLatch  atomic.Pointer[latch]
	rtcpLatch atomic.Pointer[latch]
	bridged   atomic.Bool
	closed    atomic.Bool

	// Used by the relay under the bridge's io lock.
	rx      rxStats
	rtcpP   rtcpParser
	rtcpRep RTCPReport
	hdrs    srtpScratch

	reportMu sync.Mutex
	report   RTCPReport

	c counters
}

// legState is the signalled part of a leg, replaced as a whole (copy on
// write) so that the readers load it with one atomic operation.
type legState struct {
	gen       uint64 // bumped when the remote address changes: latches reset
	remote    netip.AddrPort
	rtcp      netip.AddrPort // explicit a=rtcp, or zero
	windowEnd time.Time      // zero until the leg starts
	pt        payloadTable
}

// remoteRTCP is where RTCP goes before any RTCP latch.
func (s *legState) remoteRTCP() netip.AddrPort {
	if s.rtcp.IsValid() {
		return s.rtcp
	}
	if !s.remote.IsValid() {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(s.remote.Addr(), s.remote.Port()+1)
}

// Latch ranks: a latch only ever moves to a higher rank.
const (
	rankOther uint8 = iota // any source: NAT, or a stranger
	rankIP                 // the SDP IP, another port (port-translating NAT)
	rankExact              // exactly the SDP address: nothing outranks it
)

// latch is a learned peer address, valid for one generation of legState.
type latch struct {
	addr netip.AddrPort
	rank uint8
	gen  uint64
}

type counters struct {
	packetsIn, bytesIn   atomic.Uint64
	packetsOut, bytesOut atomic.Uint64
	rtcpIn, rtcpOut      atomic.Uint64
	strangers            atomic.Uint64
	invalid              atomic.Uint64
	codec                atomic.Uint64
	sendErrors           atomic.Uint64
	auth                 atomic.Uint64
	expected             atomic.Uint64
	lost                 atomic.Int64
	jitter               atomic.Int64 // time.Duration
	lastActivity         atomic.Int64 // since epoch, +1; 0 = never
}

// NewLeg makes a leg over ports, which it then owns: Close (the leg's or
// its bridge's) releases them. On error the caller keeps the ports.
func NewLeg(ports *PortPair, cfg LegConfig) (*Leg, error) {
	if ports == nil || ports.closed.Load() {
		return nil, ErrClosed
	}
	pt, err := newPayloadTable(cfg.Remote.PayloadTypes)
	if err != nil {
		return nil, err
	}
	l := &Leg{
		ports:       ports,
		clock:       cfg.Clock,
		log:         cfg.Logger,
		window:      cfg.LatchWindow,
		ignoreSDPIP: cfg.IgnoreSDPIP,
	}
	if l.clock == nil {
		l.clock = systemClock{}
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.window <= 0 {
		l.window = DefaultLatchWindow
	}
	l.epoch = l.clock.Now()
	sec, err := newLegSRTP(cfg.SRTP, nil)
	if err != nil {
		return nil, err
	}
	l.sec.Store(sec)
	l.state.Store(&legState{
		remote: unmapAP(cfg.Remote.RTP),
		rtcp:   unmapAP(cfg.Remote.RTCP),
		pt:     pt,
	})
	return l, nil
}

// Local returns the leg's RTP and RTCP addresses, for the SDP toward its
// peer (with --public-ip substituted by the caller where set).
func (l *Leg) Local() (rtp, rtcp netip.AddrPort) { return l.ports.RTP(), l.ports.RTCP() }

// SetRemote applies a new offer or answer from the peer (re-INVITE,
// UPDATE). If the RTP or RTCP address changed, the latches are dropped and
// the latch window reopens now; otherwise only the payload types change.
func (l *Leg) SetRemote(r Remote) error {
	pt, err := newPayloadTable(r.PayloadTypes)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.state.Load()
	st := *old
	st.pt = pt
	st.remote, st.rtcp = unmapAP(r.RTP), unmapAP(r.RTCP)
	if st.remote != old.remote || st.rtcp != old.rtcp {
		st.gen++
		if !old.windowEnd.IsZero() {
			st.windowEnd = l.clock.Now().Add(l.window)
		}
		l.log.Info("media remote changed, latch reset", "remote", st.remote)
	}
	l.state.Store(&st)
	return nil
}

// SetSRTP changes the leg's keys after a new offer/answer exchange (nil:
// plain RTP from now on). Contexts whose key did not change are kept, with
// their rollover counters and replay windows.
func (l *Leg) SetSRTP(k *SRTP) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.sec.Load()
	sec, err := newLegSRTP(k, old)
	if err != nil {
		return err
	}
	if (old == nil) != (sec == nil) || (old != nil && (old.in != sec.in || old.out != sec.out)) {
		l.log.Info("media keys changed", "srtp", k)
	}
	l.sec.Store(sec)
	return nil
}

// start opens the latch window; the bridge calls it before reading.
func (l *Leg) start() {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := *l.state.Load()
	st.windowEnd = l.clock.Now().Add(l.window)
	l.state.Store(&st)
}

// LastActivity is when the last RTP packet was accepted from the peer, or
// the zero time if none was. The call layer ends a call after a period of
// no activity on every leg.
func (l *Leg) LastActivity() time.Time {
	v := l.c.lastActivity.Load()
	if v == 0 {
		return time.Time{}
	}
	return l.epoch.Add(time.Duration(v - 1))
}

// Stats returns a snapshot of the leg's counters.
func (l *Leg) Stats() Stats {
	st := l.state.Load()
	s := Stats{
		PacketsIn:        l.c.packetsIn.Load(),
		BytesIn:          l.c.bytesIn.Load(),
		PacketsOut:       l.c.packetsOut.Load(),
		BytesOut:         l.c.bytesOut.Load(),
		RTCPIn:           l.c.rtcpIn.Load(),
		RTCPOut:          l.c.rtcpOut.Load(),
		DroppedStrangers: l.c.strangers.Load(),
		DroppedInvalid:   l.c.invalid.Load(),
		DroppedCodec:     l.c.codec.Load(),
		SendErrors:       l.c.sendErrors.Load(),
		DroppedAuth:      l.c.auth.Load(),
		Expected:         l.c.expected.Load(),
		Lost:             l.c.lost.Load(),
		Jitter:           time.Duration(l.c.jitter.Load()),
		LastActivity:     l.LastActivity(),
	}
	if sec := l.sec.Load(); sec != nil {
		s.SRTP = sec.suite
	}
	if lt := l.rtpLatched(st); lt != nil {
		s.Latched = lt.addr
	}
	if lt := l.rtcpLatched(st); lt != nil {
		s.LatchedRTCP = lt.addr
	}
	l.reportMu.Lock()
	s.RTCP = l.report
	s.RTCP.Blocks = append([]ReportBlock(nil), l.report.Blocks...)
	l.reportMu.Unlock()
	return s
}

// Close closes the leg's sockets and returns its ports to the pool. A
// second call returns ErrClosed.
func (l *Leg) Close() error {
	if !l.closed.CompareAndSwap(false, true) {
		return ErrClosed
	}
	return l.ports.Close()
}

func (l *Leg) rtpLatched(st *legState) *latch {
	if lt := l.rtpLatch.Load(); lt != nil && lt.gen == st.gen {
		return lt
	}
	return nil
}

// rtcpLatched returns the RTCP latch if it is of this generation and still
// agrees with the RTP latch's IP (the RTP latch may have moved since).
func (l *Leg) rtcpLatched(st *legState) *latch {
	lt := l.rtcpLatch.Load()
	if lt == nil || lt.gen != st.gen {
		return nil
	}
	if rl := l.rtpLatched(st); rl != nil && rl.addr.Addr() != lt.addr.Addr() {
		return nil
	}
	return lt
}

func (l *Leg) rank(src netip.AddrPort, st *legState) uint8 {
	switch {
	case src == st.remote:
		return rankExact
	case !l.ignoreSDPIP && src.Addr() == st.remote.Addr():
		return rankIP
	}
	return rankOther
}

// acceptRTP applies the latching rules of doc.go to one datagram received
// on the RTP socket and, if it is accepted, accounts it. It returns the
// state it decided with, the packet's payload type and the plain packet:
// b itself, or on an SRTP leg b authenticated and decrypted in place
// (before any latching, so that only the key holder can latch). Called
// only by the relay, under the bridge's io lock; no allocation except
// when the latch moves.
func (l *Leg) acceptRTP(b []byte, src netip.AddrPort, now time.Time) (*legState, uint8, []byte, bool) {
	st := l.state.Load()
	n := len(b)
	if sec := l.sec.Load(); sec != nil {
		// The header is in clear; the padding count is not (it sits
		// before the tag), so the full check waits for the plain packet.
		if n < 12 || b[0]>>6 != 2 || classify(b) != kindRTP {
			l.c.invalid.Add(1)
			return nil, 0, nil, false
		}
		if _, ok := st.pt.lookup(b[1] & 0x7f); !ok {
			l.c.invalid.Add(1)
			return nil, 0, nil, false
		}
		var ok bool
		if b, ok = sec.decryptRTP(b, &l.hdrs.rtp); !ok {
			l.c.auth.Add(1)
			return nil, 0, nil, false
		}
	}
	h, ok := parseRTP(b)
	if !ok {
		l.c.invalid.Add(1)
		return nil, 0, nil, false
	}
	c, ok := st.pt.lookup(h.pt)
	if !ok {
		l.c.invalid.Add(1)
		return nil, 0, nil, false
	}
	src = unmapAP(src)
	lt := l.rtpLatched(st)
	if lt == nil || lt.addr != src {
		r := l.rank(src, st)
		inWindow := now.Before(st.windowEnd)
		switch {
		case lt == nil && inWindow: // rule 2: first latch, NAT allowed
		case lt == nil && r == rankExact: // rule 3: late start, exact SDP address
		case lt != nil && inWindow && r > lt.rank: // rule 4: a better-ranked source
		default: // rule 5
			l.c.strangers.Add(1)
			return nil, 0, nil, false
		}
		l.rtpLatch.Store(&latch{addr: src, rank: r, gen: st.gen})
		l.log.Info("rtp latched", "source", src, "sdp", st.remote, "rank", r)
	}
	arrival := now.Sub(l.epoch)
	l.rx.packet(h, c, arrival)
	exp, lost := l.rx.totals()
	l.c.expected.Store(exp)
	l.c.lost.Store(lost)
	l.c.jitter.Store(int64(l.rx.jitterDuration()))
	l.c.lastActivity.Store(int64(arrival) + 1)
	l.c.packetsIn.Add(1)
	l.c.bytesIn.Add(uint64(n))
	return st, h.pt, b, true
}

// acceptRTCP applies the RTCP latching rules of doc.go to one datagram
// received on the RTCP socket and keeps its SR/RR. It returns the plain
// packet (on an SRTP leg, SRTCP authenticated and decrypted in place).
// Called only by the relay, under the bridge's io lock.
func (l *Leg) acceptRTCP(b []byte, src netip.AddrPort, now time.Time) ([]byte, bool) {
	if sec := l.sec.Load(); sec != nil {
		if len(b) < 8 || b[0]>>6 != 2 || classify(b) != kindRTCP {
			l.c.invalid.Add(1)
			return nil, false
		}
		var ok bool
		if b, ok = sec.decryptRTCP(b, &l.hdrs.rtcp); !ok {
			l.c.auth.Add(1)
			return nil, false
		}
	}
	if !validRTCP(b) {
		l.c.invalid.Add(1)
		return nil, false
	}
	st := l.state.Load()
	src = unmapAP(src)
	if lt := l.rtcpLatched(st); lt != nil {
		if lt.addr != src {
			l.c.strangers.Add(1)
			return nil, false
		}
	} else {
		rl := l.rtpLatched(st)
		if (rl == nil || rl.addr.Addr() != src.Addr()) && src != st.remoteRTCP() {
			l.c.strangers.Add(1)
			return nil, false
		}
		l.rtcpLatch.Store(&latch{addr: src, gen: st.gen})
		l.log.Info("rtcp latched", "source", src)
	}
	l.c.rtcpIn.Add(1)
	if l.rtcpP.parse(b, &l.rtcpRep) {
		l.rtcpRep.At = now
		l.reportMu.Lock()
		blocks := l.report.Blocks[:0]
		l.report = l.rtcpRep
		l.report.Blocks = append(blocks, l.rtcpRep.Blocks...)
		l.reportMu.Unlock()
	}
	return b, true
}

// rtpDest is where RTP for the peer goes: the latched source, else the SDP
// address.
func (l *Leg) rtpDest(st *legState) netip.AddrPort {
	if lt := l.rtpLatched(st); lt != nil {
		return lt.addr
	}
	return st.remote
}

// rtcpDest is where RTCP for the peer goes: the latched RTCP source; else,
// if RTP latched to an address other than the SDP one (NAT), its port + 1;
// else the SDP RTCP address.
func (l *Leg) rtcpDest(st *legState) netip.AddrPort {
	if lt := l.rtcpLatched(st); lt != nil {
		return lt.addr
	}
	if lt := l.rtpLatched(st); lt != nil && lt.addr != st.remote {
		return netip.AddrPortFrom(lt.addr.Addr(), lt.addr.Port()+1)
	}
	return st.remoteRTCP()
}

// sendRTP sends a packet that the other leg accepted (with payload type pt
// under state from) to this leg's peer, if this leg negotiated the same
// codec; on an SRTP leg it is encrypted in place first, so b's capacity
// must leave srtpOverhead bytes. Called by the relay with the other leg's
// plain packet.
func (l *Leg) sendRTP(b []byte, from *legState, pt uint8) {
	st := l.state.Load()
	in, _ := from.pt.lookup(pt)
	out, ok := st.pt.lookup(pt)
	if !ok || in != out {
		l.c.codec.Add(1)
		return
	}
	dst := l.rtpDest(st)
	if !usable(dst) {
		l.c.sendErrors.Add(1)
		return
	}
	if ov := l.overlay.Load(); ov != nil && !out.event {
		if ov.apply(b, out) {
			l.overlay.CompareAndSwap(ov, nil)
		}
	}
	if sec := l.sec.Load(); sec != nil {
		if b, ok = sec.encryptRTP(b, &l.hdrs.rtp); !ok {
			l.c.auth.Add(1)
			return
		}
	}
	if err := l.ports.rtp.sendTo(b, dst); err != nil {
		l.c.sendErrors.Add(1)
		return
	}
	l.c.packetsOut.Add(1)
	l.c.bytesOut.Add(uint64(len(b)))
}

// sendRTCP sends an accepted RTCP packet of the other leg to this leg's
// peer: untouched, or encrypted in place on an SRTP leg.
func (l *Leg) sendRTCP(b []byte) {
	dst := l.rtcpDest(l.state.Load())
	if !usable(dst) {
		l.c.sendErrors.Add(1)
		return
	}
	if sec := l.sec.Load(); sec != nil {
		var ok bool
		if b, ok = sec.encryptRTCP(b, &l.hdrs.rtcp); !ok {
			l.c.auth.Add(1)
			return
		}
	}
	if err := l.ports.rtcp.sendTo(b, dst); err != nil {
		l.c.sendErrors.Add(1)
		return
	}
	l.c.rtcpOut.Add(1)
}

func usable(a netip.AddrPort) bool {
	return a.IsValid() && a.Port() != 0 && !a.Addr().IsUnspecified()
}

func unmapAP(a netip.AddrPort) netip.AddrPort {
	if !a.IsValid() {
		return a
	}
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}
