package main

import (
	crand "crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"golang.org/x/sys/unix"
)

// The load generator: every call has two legs, each a UDP socket of its
// own on 127.0.0.1 (a phone), connected to where its peer's media goes
// (the relay's port for that leg, or the other leg's socket for the
// baseline). Each leg sends a 172-byte G.711 RTP packet every 20 ms and
// accounts what it receives: loss from sequence numbers, RFC 3550 jitter
// from the kernel's receive timestamps (SO_TIMESTAMPNS), so the
// generator's own reading delays do not count as jitter.
//
// A few workers share the legs; each runs an epoll loop over its sockets
// and a 20-slot wheel of 1 ms: a leg sends in its slot every 20 ms, and
// the legs are spread over the slots so that the load is even, as
// independent phones' would be.

const (
	wheelSlots  = ptime // 1 ms slots
	sampleEvery = 50    // packets between jitter samples (one a second)
)

// genLeg is one phone's socket.
type genLeg struct {
	fd    int
	local netip.AddrPort
	w     *worker
	slot  int
	ssrc  uint32
	seq   uint16
	ts    uint32
	// enc, when set, protects what the leg sends (SRTP with the leg's own
	// key, announced in its SDP); what it receives needs no decrypting:
	// the statistics read only the RTP header, which SRTP leaves in clear.
	enc *srtp.Context
	// Written by the worker under w.mu.
	sent, sendErr, recvErr uint64
	rx                     rxStream
}

type worker struct {
	g     *gen
	epfd  int
	mu    sync.Mutex
	legs  []*genLeg
	wheel [wheelSlots][]*genLeg
	// Jitter samples (ms) while recording.
	recording bool
	samples   []float64
	lastTick  int64
}

// gen is the load generator of one target.
type gen struct {
	t0      time.Time
	workers []*worker
	mu      sync.Mutex
	legs    []*genLeg // every started leg, in start order
	all     []*genLeg // every leg made, for close
	n       int
	stop    atomic.Bool
	done    sync.WaitGroup
	// While paused the legs send nothing (another target is measured).
	paused   atomic.Bool
	pausedAt time.Time
}

func newGen(workers int) (*gen, error) {
	g := &gen{t0: time.Now()}
	for range max(1, workers) {
		ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			g.close()
			return nil, fmt.Errorf("epoll_create1: %w", err)
		}
		g.workers = append(g.workers, &worker{g: g, epfd: ep})
	}
	for _, w := range g.workers {
		g.done.Add(1)
		go w.run()
	}
	return g, nil
}

// newLeg opens a phone's socket on 127.0.0.1 (an ephemeral port); it
// sends nothing until start.
func (g *gen) newLeg() (*genLeg, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("SO_TIMESTAMPNS: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind: %w", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	in4, ok := sa.(*unix.SockaddrInet4)
	if !ok {
		unix.Close(fd)
		return nil, errors.New("getsockname: not IPv4")
	}
	l := &genLeg{fd: fd, local: netip.AddrPortFrom(netip.AddrFrom4(in4.Addr), uint16(in4.Port)),
		ssrc: rand.Uint32(), seq: uint16(rand.Uint32()), ts: rand.Uint32()}
	g.mu.Lock()
	g.all = append(g.all, l)
	g.mu.Unlock()
	return l, nil
}

// useSRTP gives the leg a fresh SRTP key (AES_CM_128_HMAC_SHA1_80) for
// what it sends, and returns the a=crypto value (tag 1) announcing it.
// Call it before start.
func (l *genLeg) useSRTP() (string, error) {
	key := make([]byte, 30)
	if _, err := crand.Read(key); err != nil {
		return "", err
	}
	enc, err := srtp.CreateContext(key[:16], key[16:], srtp.ProtectionProfileAes128CmHmacSha1_80)
	if err != nil {
		return "", err
	}
	l.enc = enc
	return "1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.StdEncoding.EncodeToString(key), nil
}

// start connects the leg to dst (so it only hears from there, as a
// symmetric-RTP phone would) and starts sending to it.
func (g *gen) start(l *genLeg, dst netip.AddrPort) error {
	if !dst.Addr().Is4() {
		return fmt.Errorf("destination %v is not IPv4", dst)
	}
	if err := unix.Connect(l.fd, &unix.SockaddrInet4{Addr: dst.Addr().As4(), Port: int(dst.Port())}); err != nil {
		return fmt.Errorf("connect %v: %w", dst, err)
	}
	g.mu.Lock()
	i := g.n
	g.n++
	g.legs = append(g.legs, l)
	g.mu.Unlock()
	w := g.workers[i%len(g.workers)]
	// Spread: consecutive legs of a worker take consecutive slots; the
	// two legs of a call land in different workers or slots.
	l.slot = (i / len(g.workers)) % wheelSlots
	w.mu.Lock()
	defer w.mu.Unlock()
	l.w = w
	id := len(w.legs)
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(id)}
	if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, l.fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	w.legs = append(w.legs, l)
	w.wheel[l.slot] = append(w.wheel[l.slot], l)
	return nil
}

// pause stops sending (the sockets keep their queues).
func (g *gen) pause() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.paused.Load() {
		g.pausedAt = time.Now()
		g.paused.Store(true)
	}
}

// resume starts sending again. Every leg's RTP timestamp moves on by the
// time paused, as a phone's sampling clock would, so the pause does not
// show as jitter.
func (g *gen) resume() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.paused.Load() {
		return
	}
	step := uint32(time.Since(g.pausedAt) * clockRate / time.Second)
	for _, w := range g.workers {
		w.mu.Lock()
		for _, l := range w.legs {
			l.ts += step
		}
		w.mu.Unlock()
	}
	g.paused.Store(false)
}

func (g *gen) close() {
	g.stop.Store(true)
	g.done.Wait()
	for _, w := range g.workers {
		unix.Close(w.epfd)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, l := range g.all {
		unix.Close(l.fd)
	}
	g.all = nil
}

func (w *worker) run() {
	defer w.g.done.Done()
	events := make([]unix.EpollEvent, 256)
	pkt := make([]byte, packetSize)
	for i := rtpHeader; i < packetSize; i++ {
		pkt[i] = 0xff // µ-law silence
	}
	rb := make([]byte, 2048)
	ebuf := make([]byte, 0, packetSize+64) // SRTP packets, built here
	var hdr rtp.Header
	oob := make([]byte, unix.CmsgSpace(int(unsafe.Sizeof(unix.Timespec{}))))
	var iov unix.Iovec
	iov.Base = &rb[0]
	iov.SetLen(len(rb))
	var msg unix.Msghdr
	msg.Iov = &iov
	msg.Iovlen = 1
	msg.Control = &oob[0]
	w.lastTick = int64(time.Since(w.g.t0) / time.Millisecond)
	for !w.g.stop.Load() {
		now := time.Since(w.g.t0)
		tick := int64(now / time.Millisecond)
		if w.g.paused.Load() {
			w.mu.Lock()
			w.lastTick = tick // no catch-up burst on resume
			w.mu.Unlock()
			time.Sleep(2 * time.Millisecond)
			continue
		}
		w.mu.Lock()
		// Send every slot due since the last pass (at most one round: a
		// generator that fell behind by more skips, and shows it in the
		// send rate rather than as a burst).
		from := max(w.lastTick+1, tick-wheelSlots+1)
		for t := from; t <= tick; t++ {
			for _, l := range w.wheel[t%wheelSlots] {
				l.seq++
				l.ts += tsStep
				putRTPHead(pkt, 0, false, l.seq, l.ts, l.ssrc)
				out := pkt
				if l.enc != nil {
					var err error
					if out, err = l.enc.EncryptRTP(ebuf[:0], pkt, &hdr); err != nil {
						l.sendErr++
						continue
					}
				}
				if _, err := unix.Write(l.fd, out); err != nil {
					l.sendErr++
					continue
				}
				l.sent++
			}
		}
		w.lastTick = tick
		w.mu.Unlock()
		wait := time.Duration(tick+1)*time.Millisecond - time.Since(w.g.t0)
		ms := int(wait / time.Millisecond)
		if wait > 0 && ms == 0 {
			ms = 1
		}
		if wait <= 0 {
			ms = 0
		}
		n, err := unix.EpollWait(w.epfd, events, ms)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		if n == 0 {
			continue
		}
		w.mu.Lock()
		for _, ev := range events[:n] {
			l := w.legs[ev.Fd]
			msg.SetControllen(len(oob))
			r, _, e := unix.Syscall(unix.SYS_RECVMSG, uintptr(l.fd), uintptr(unsafe.Pointer(&msg)), unix.MSG_DONTWAIT)
			if e != 0 {
				if e != unix.EAGAIN {
					l.recvErr++ // e.g. ECONNREFUSED from an ICMP port unreachable
				}
				continue
			}
			h, ok := parseRTPHead(rb[:r])
			if !ok {
				continue
			}
			at, ok := cmsgTimestamp(oob[:msg.Controllen])
			if !ok {
				at = int64(time.Since(w.g.t0))
			}
			if l.rx.packet(h, at, sampleEvery) && w.recording {
				w.samples = append(w.samples, l.rx.jitterMs())
			}
		}
		w.mu.Unlock()
	}
}

// cmsgTimestamp finds SCM_TIMESTAMPNS in a control buffer: the kernel's
// receive time, in ns since the epoch.
func cmsgTimestamp(oob []byte) (int64, bool) {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		if h.Len < unix.SizeofCmsghdr || int(h.Len) > len(oob) {
			return 0, false
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS &&
			int(h.Len) >= unix.CmsgLen(int(unsafe.Sizeof(unix.Timespec{}))) {
			ts := (*unix.Timespec)(unsafe.Pointer(&oob[unix.CmsgLen(0)]))
			return ts.Sec*1e9 + ts.Nsec, true
		}
		oob = oob[unix.CmsgSpace(int(h.Len)-unix.CmsgLen(0)):]
	}
	return 0, false
}

// legMark is one leg's counters at an instant.
type legMark struct {
	rx                     rxMark
	sent, sendErr, recvErr uint64
}

// snapshot returns the marks of every started leg, in start order.
func (g *gen) snapshot() []legMark {
	g.mu.Lock()
	legs := append([]*genLeg(nil), g.legs...)
	g.mu.Unlock()
	out := make([]legMark, len(legs))
	for _, w := range g.workers {
		w.mu.Lock()
	}
	for i, l := range legs {
		out[i] = legMark{rx: l.rx.mark(), sent: l.sent, sendErr: l.sendErr, recvErr: l.recvErr}
	}
	for _, w := range g.workers {
		w.mu.Unlock()
	}
	return out
}

// record turns jitter sampling on (clearing earlier samples) or off,
// returning what was sampled.
func (g *gen) record(on bool) []float64 {
	var all []float64
	for _, w := range g.workers {
		w.mu.Lock()
		all = append(all, w.samples...)
		w.samples = w.samples[:0]
		w.recording = on
		w.mu.Unlock()
	}
	return all
}

// window is what the generator saw between two snapshots.
type window struct {
	streams            int
	expected, received uint64
	lost               int64
	dead               int // streams that were up at the start and received nothing
	sent               uint64
	sendErr, recvErr   uint64
}

func (w window) lossPct() float64 {
	if w.expected == 0 {
		return 0
	}
	return 100 * float64(max(w.lost, 0)) / float64(w.expected)
}

func diffWindow(a, b []legMark) window {
	var w window
	for i, m := range b {
		var m0 legMark
		if i < len(a) {
			m0 = a[i]
		}
		exp, rec := windowLoss(m0.rx, m.rx)
		w.streams++
		w.expected += exp
		w.received += rec
		w.lost += int64(exp) - int64(rec)
		if i < len(a) && m0.sent > 0 && rec == 0 {
			w.dead++
		}
		w.sent += m.sent - m0.sent
		w.sendErr += m.sendErr - m0.sendErr
		w.recvErr += m.recvErr - m0.recvErr
	}
	return w
}
