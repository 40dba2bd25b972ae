package media

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/media/mediatest"
)

const wait = 2 * time.Second // deadline of every wait for a packet

var pcmuDTMF = []PayloadType{{Number: 0}, {Number: 8}, {Number: 101, Name: "telephone-event"}}

var g711 = make([]byte, 160) // one 20 ms G.711 frame

// rig is two legs bridged on a fresh pool, with a fake clock.
type rig struct {
	clock *mediatest.Clock
	pool  *PortPool
	a, b  *Leg
	br    *Bridge
}

// newRig bridges two legs whose peers' SDP say ra and rb. poolIP keeps
// tests' ports apart.
func newRig(t *testing.T, poolIP string, ra, rb Remote, mod ...func(*LegConfig)) *rig {
	t.Helper()
	r := &rig{clock: mediatest.NewClock(), pool: testPool(t, poolIP, 43000, 43009)}
	leg := func(rem Remote) *Leg {
		pp, err := r.pool.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		cfg := LegConfig{Remote: rem, Clock: r.clock}
		for _, m := range mod {
			m(&cfg)
		}
		l, err := NewLeg(pp, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	r.a, r.b = leg(ra), leg(rb)
	var err error
	if r.br, err = NewBridge(r.a, r.b); err != nil {
		t.Fatal(err)
	}
	if err := r.br.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.br.Close() })
	return r
}

func rtpAddr(l *Leg) netip.AddrPort  { a, _ := l.Local(); return a }
func rtcpAddr(l *Leg) netip.AddrPort { _, a := l.Local(); return a }

func remote(ep *mediatest.Endpoint, pts ...PayloadType) Remote {
	if len(pts) == 0 {
		pts = pcmuDTMF
	}
	return Remote{RTP: ep.Addr(), PayloadTypes: pts}
}

// expectRTP waits for a packet at ep and checks it is want, sent by from.
func expectRTP(t *testing.T, ep *mediatest.Endpoint, want []byte, from netip.AddrPort) {
	t.Helper()
	got, src := ep.MustRecv(wait)
	if string(got) != string(want) {
		h, _ := parseRTP(got)
		w, _ := parseRTP(want)
		t.Fatalf("%s received %+v (%d bytes), want %+v (%d bytes)", ep.Addr(), h, len(got), w, len(want))
	}
	if src != from {
		t.Fatalf("%s received from %v, want %v", ep.Addr(), src, from)
	}
}

// sendAndSee makes ep's leg latch by sending one packet and waiting for it on
// the other side.
func sendAndSee(t *testing.T, ep *mediatest.Endpoint, l *Leg, other *mediatest.Endpoint, otherLeg *Leg) {
	t.Helper()
	b := mediatest.RTP(0, false, ep.Seq, ep.TS, ep.SSRC, g711)
	ep.Send(rtpAddr(l), b)
	ep.Seq++
	expectRTP(t, other, b, rtpAddr(otherLeg))
}

func TestBridgeTwoWay(t *testing.T) {
	epA := mediatest.NewEndpoint(t, "127.0.0.1:0")
	epB := mediatest.NewEndpoint(t, "127.0.0.1:0")
	r := newRig(t, "127.77.10.1", remote(epA), remote(epB))
	t0 := r.clock.Now()
	for i := range 10 {
		pa := mediatest.RTP(0, i == 0, uint16(100+i), uint32(i*160), 0xaaaa, g711)
		epA.Send(rtpAddr(r.a), pa)
		expectRTP(t, epB, pa, rtpAddr(r.b))
		pb := mediatest.RTP(8, i == 0, uint16(5000+i), uint32(i*160), 0xbbbb, g711)
		epB.Send(rtpAddr(r.b), pb)
		expectRTP(t, epA, pb, rtpAddr(r.a))
	}
	// A packet is counted out after its send returns, which may be after
	// the endpoint has read it.
	sa, sb := r.a.Stats(), r.b.Stats()
	for deadline := time.Now().Add(time.Second); (sa.PacketsOut < 10 || sb.PacketsOut < 10) && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
		sa, sb = r.a.Stats(), r.b.Stats()
	}
	size := uint64(12 + len(g711))
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"A packets in", sa.PacketsIn, 10}, {"A bytes in", sa.BytesIn, 10 * size},
		{"A packets out", sa.PacketsOut, 10}, {"A bytes out", sa.BytesOut, 10 * size},
		{"B packets in", sb.PacketsIn, 10}, {"B packets out", sb.PacketsOut, 10},
		{"A expected (first packet on probation)", sa.Expected, 9},
		{"strangers", sa.DroppedStrangers + sb.DroppedStrangers, 0},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if sa.Lost != 0 || sa.Latched != epA.Addr() || sb.Latched != epB.Addr() {
		t.Errorf("lost %d, latched %v / %v", sa.Lost, sa.Latched, sb.Latched)
	}
	if !sa.LastActivity.Equal(t0) || !r.a.LastActivity().Equal(t0) {
		t.Errorf("LastActivity = %v, want %v", sa.LastActivity, t0)
	}
}

func TestBridgeForwardsNegotiatedPayloads(t *testing.T) {
	dtmf := func(end bool, dur uint16) []byte { // RFC 4733 §2.3: event 1, volume 10
		e := byte(0x0a)
		if end {
			e |= 0x80
		}
		return []byte{1, e, byte(dur >> 8), byte(dur)}
	}
	opus := PayloadType{Number: 96, Name: "opus", ClockRate: 48000}
	for _, tc := range []struct {
		name       string
		ptsA, ptsB []PayloadType
		send       [][]byte // from A, in order
		want       []int    // indexes of send that B must get, in order
		codecDrops uint64
	}{
		{"PCMU", pcmuDTMF, pcmuDTMF, [][]byte{
			mediatest.RTP(0, true, 1, 0, 7, g711), mediatest.RTP(0, false, 2, 160, 7, g711),
		}, []int{0, 1}, 0},
		{"DTMF telephone-event between audio", pcmuDTMF, pcmuDTMF, [][]byte{
			mediatest.RTP(0, false, 1, 0, 7, g711),
			mediatest.RTP(101, true, 2, 160, 7, dtmf(false, 160)),
			mediatest.RTP(101, false, 3, 160, 7, dtmf(false, 320)),
			mediatest.RTP(101, false, 4, 160, 7, dtmf(true, 480)),
			mediatest.RTP(101, false, 5, 160, 7, dtmf(true, 480)),
			mediatest.RTP(0, false, 6, 640, 7, g711),
		}, []int{0, 1, 2, 3, 4, 5}, 0},
		{"payload type the far leg did not negotiate", []PayloadType{{Number: 0}, {Number: 8}}, []PayloadType{{Number: 8}}, [][]byte{
			mediatest.RTP(0, false, 1, 0, 7, g711), mediatest.RTP(8, false, 2, 160, 7, g711),
		}, []int{1}, 1},
		{"same number, other codec", []PayloadType{{Number: 0}, opus}, []PayloadType{{Number: 0}, {Number: 96, Name: "speex", ClockRate: 16000}}, [][]byte{
			mediatest.RTP(96, false, 1, 0, 7, g711), mediatest.RTP(0, false, 2, 160, 7, g711),
		}, []int{1}, 1},
		{"codec names compare without case", []PayloadType{opus}, []PayloadType{{Number: 96, Name: "OPUS", ClockRate: 48000}}, [][]byte{
			mediatest.RTP(96, false, 1, 0, 7, g711),
		}, []int{0}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			epA := mediatest.NewEndpoint(t, "127.0.0.1:0")
			epB := mediatest.NewEndpoint(t, "127.0.0.1:0")
			r := newRig(t, "127.77.11.1", remote(epA, tc.ptsA...), remote(epB, tc.ptsB...))
			for _, b := range tc.send {
				epA.Send(rtpAddr(r.a), b)
			}
			for _, i := range tc.want {
				expectRTP(t, epB, tc.send[i], rtpAddr(r.b))
			}
			if got := r.b.Stats().DroppedCodec; got != tc.codecDrops {
				t.Errorf("DroppedCodec = %d, want %d", got, tc.codecDrops)
			}
			if got := r.a.Stats().PacketsIn; got != uint64(len(tc.send)) {
				t.Errorf("PacketsIn = %d, want %d", got, len(tc.send))
			}
		})
	}
}

// A phone behind NAT: its SDP says 127.0.0.2:X (a private address), it
// sends from 127.0.0.1:Y (the NAT's mapping). Media goes to the SDP address
// until its first packet, then to where it really is.
func TestLatchBehindNAT(t *testing.T) {
	epA := mediatest.NewEndpoint(t, "127.0.0.1:0")
	sdpB := mediatest.NewEndpoint(t, "127.0.0.2:0") // the private address: silent
	epB := mediatest.NewEndpoint(t, "127.0.0.1:0")  // the NAT mapping
	r := newRig(t, "127.77.12.1", remote(epA), remote(sdpB))

	early := mediatest.RTP(0, false, 1, 0, 1, g711)
	epA.Send(rtpAddr(r.a), early)
	expectRTP(t, sdpB, early, rtpAddr(r.b)) // before latching: the SDP address

	sendAndSee(t, epB, r.b, epA, r.a)
	if got := r.b.Stats().Latched; got != epB.Addr() {
		t.Fatalf("latched to %v, want %v", got, epB.Addr())
	}
	for i := range 5 {
		b := mediatest.RTP(0, false, uint16(2+i), uint32(160*(i+1)), 1, g711)
		epA.Send(rtpAddr(r.a), b)
		expectRTP(t, epB, b, rtpAddr(r.b))
	}
	if n := sdpB.Drain(); n != 0 {
		t.Errorf("%d packets still went to the SDP address after latching", n)
	}
}

// RTP bleed: a stranger sends well-formed RTP with a negotiated payload
// type to a relay port.
func TestStrangerRTP(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, r *rig, epA, epB, stranger *mediatest.Endpoint)
	}{
		{"after latching: dropped, never forwarded, never redirects", func(t *testing.T, r *rig, epA, epB, stranger *mediatest.Endpoint) {
			sendAndSee(t, epA, r.a, epB, r.b)
			sendAndSee(t, epB, r.b, epA, r.a)
			for range 20 {
				stranger.SendRTP(rtpAddr(r.a), 0, g711)
			}
			// The reader handles datagrams in arrival order: had any of
			// the stranger's been forwarded, B would get it before this.
			sendAndSee(t, epA, r.a, epB, r.b)
			for range 5 {
				b := mediatest.RTP(0, false, epB.Seq, epB.TS, epB.SSRC, g711)
				epB.Seq++
				epB.Send(rtpAddr(r.b), b)
				expectRTP(t, epA, b, rtpAddr(r.a))
			}
			if n := stranger.Drain(); n != 0 {
				t.Errorf("stranger received %d packets", n)
			}
			s := r.a.Stats()
			if s.DroppedStrangers != 20 || s.Latched != epA.Addr() {
				t.Errorf("DroppedStrangers = %d, latched %v; want 20, %v", s.DroppedStrangers, s.Latched, epA.Addr())
			}
		}},
		{"before latching: displaced by the phone at the SDP address", func(t *testing.T, r *rig, epA, epB, stranger *mediatest.Endpoint) {
			b := mediatest.RTP(0, false, stranger.Seq, stranger.TS, stranger.SSRC, g711)
			stranger.Send(rtpAddr(r.a), b)
			expectRTP(t, epB, b, rtpAddr(r.b)) // inherent: first come, first latched
			if got := r.a.Stats().Latched; got != stranger.Addr() {
				t.Fatalf("latched %v, want the stranger", got)
			}
			sendAndSee(t, epA, r.a, epB, r.b)
			if got := r.a.Stats().Latched; got != epA.Addr() {
				t.Fatalf("latched %v, want %v", got, epA.Addr())
			}
			for range 10 {
				stranger.SendRTP(rtpAddr(r.a), 0, g711)
			}
			sendAndSee(t, epA, r.a, epB, r.b) // nothing of the stranger's in between
			for range 5 {
				b := mediatest.RTP(0, false, epB.Seq, epB.TS, epB.SSRC, g711)
				epB.Seq++
				epB.Send(rtpAddr(r.b), b)
				expectRTP(t, epA, b, rtpAddr(r.a))
			}
			if n := stranger.Drain(); n != 0 {
				t.Errorf("stranger received %d packets", n)
			}
			if s := r.a.Stats(); s.DroppedStrangers != 10 || s.Latched != epA.Addr() {
				t.Errorf("DroppedStrangers = %d, latched %v", s.DroppedStrangers, s.Latched)
			}
		}},
		{"before latching with bad packets: cannot latch", func(t *testing.T, r *rig, epA, epB, stranger *mediatest.Endpoint) {
			stranger.SendRTP(rtpAddr(r.a), 99, g711) // not negotiated
			stranger.Send(rtpAddr(r.a), []byte("GET / HTTP/1.0\r\n\r\n"))
			stranger.Send(rtpAddr(r.a), marshalRTCP(t, testRR))
			sendAndSee(t, epA, r.a, epB, r.b)
			if s := r.a.Stats(); s.DroppedInvalid != 3 || s.Latched != epA.Addr() {
				t.Errorf("DroppedInvalid = %d, latched %v", s.DroppedInvalid, s.Latched)
			}
		}},
		{"after the window: cannot latch a leg that never latched", func(t *testing.T, r *rig, epA, epB, stranger *mediatest.Endpoint) {
			r.clock.Advance(DefaultLatchWindow + time.Millisecond)
			stranger.SendRTP(rtpAddr(r.a), 0, g711)
			sendAndSee(t, epA, r.a, epB, r.b) // the exact SDP address still may
			if s := r.a.Stats(); s.DroppedStrangers != 1 || s.Latched != epA.Addr() {
				t.Errorf("DroppedStrangers = %d, latched %v", s.DroppedStrangers, s.Latched)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			epA := mediatest.NewEndpoint(t, "127.0.0.1:0")
			epB := mediatest.NewEndpoint(t, "127.0.0.1:0")
			stranger := mediatest.NewEndpoint(t, "127.0.0.3:0")
			r := newRig(t, "127.77.13.1", remote(epA), remote(epB))
			tc.run(t, r, epA, epB, stranger)
		})
	}
}

func TestLatchNeedsNegotiatedRTP(t *testing.T) {
	oversized := mediatest.RTP(0, false, 1, 0, 1, make([]byte, bufSize))
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"payload type not negotiated", mediatest.RTP(99, false, 1, 0, 1, g711)},
		{"RTP version 1", append([]byte{0x40}, mediatest.RTP(0, false, 1, 0, 1, g711)[1:]...)},
		{"RTCP on the RTP port", marshalRTCP(t, testRR)},
		{"STUN binding request", []byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}},
		{"short header", []byte{0x80, 0, 0, 1, 0, 0}},
		{"larger than the buffer", oversized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			epA := mediatest.NewEndpoint(t, "127.0.0.1:0")
			epB := mediatest.NewEndpoint(t, "127.0.0.1:0")
			natA := mediatest.NewEndpoint(t, "127.0.0.1:0") // A's NAT mapping
			r := newRig(t, "127.77.14.1", remote(epA), remote(epB))
			natA.Send(rtpAddr(r.a), tc.b)
			good := mediatest.RTP(0, false, 2, 160, 1, g711)
			natA.Send(rtpAddr(r.a), good)
			expectRTP(t, epB, good, rtpAddr(r.b)) // the first B gets
			s := r.a.Stats()
			if s.DroppedInvalid != 1 || s.PacketsIn != 1 || s.Latched != natA.Addr() {
				t.Errorf("DroppedInvalid %d, PacketsIn %d, latched %v", s.DroppedInvalid, s.PacketsIn, s.Latched)
			}
		})
	}
}

func TestLatchWindow(t *testing.T) {
	for _, tc := range []struct {
		name    string
		window  time.Duration // LegConfig.LatchWindow, 0 for the default
		advance time.Duration // fake time between Start and the NAT phone's first packet
		latches bool
	}{
		{"default window, just inside", 0, DefaultLatchWindow - time.Millisecond, true},
		{"default window, just after", 0, DefaultLatchWindow, false},
		{"configured 500 ms, inside", 500 * time.Millisecond, 400 * time.Millisecond, true},
		{"configured 500 ms, after", 500 * time.Millisecond, time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			epA := mediatest.NewEndpoint(t, "127.0.0.1:0")
			sdpB := mediatest.NewEndpoint(t, "127.0.0.2:0")
			natB := mediatest.NewEndpoint(t, "127.0.0.1:0")
			r := newRig(t, "127.77.15.1", remote(epA), remote(sdpB), func(c *LegConfig) { c.LatchWindow = tc.window })
			r.clock.Advance(tc.advance)
			b := mediatest.RTP(0, false, 1, 0, 1, g711)
			natB.Send(rtpAddr(r.b), b)
			if tc.latches {
				expectRTP(t, epA, b, rtpAddr(r.a))
				return
			}
			mediatest.Eventually(t, wait, "the packet to be dropped", func() bool { return r.b.Stats().DroppedStrangers == 1 })
			if got := r.b.Stats().Latched; got.IsValid() {
				t.Errorf("latched %v after the window", got)
			}
			// A re-INVITE with a new address reopens the window.
			sdpB2 := mediatest.NewEndpoint(t, "127.0.0.2:0")
			if err := r.b.SetRemote(remote(sdpB2)); err != nil {
				t.Fatal(err)
			}
			natB.Send(rtpAddr(r.b), b)
			expectRTP(t, epA, b, rtpAddr(r.a))
			if got := r.b.Stats().Latched; got != natB.Addr() {
				t.Errorf("latched %v, want %v", got, natB.Addr())
			}
		})
	}
}

// A re-INVITE moves B to another address: media follows at once, the old
// latch is dropped and the old address becomes a stranger once the new
// one latches.
func TestSetRemote(t *testing.T) {
	epA := mediatest.NewEndpoint(t, "127.0.0.1:0")
	epB := mediatest.NewEndpoint(t, "127.0.0.1:0")
	epB2 := mediatest.NewEndpoint(t, "127.0.0.1:0")
	r := newRig(t, "127.77.16.1", remote(epA), remote(epB))
	sendAndSee(t, epB, r.b, epA, r.a)
	if err := r.b.SetRemote(remote(epB2, PayloadType{Number: 0})); err != nil {
		t.Fatal(err)
	}
	if got := r.b.Stats().Latched; got.IsValid() {
		t.Errorf("still latched to %v", got)
	}
	b := mediatest.RTP(0, false, 1, 0, 1, g711)
	epA.Send(rtpAddr(r.a), b)
	expectRTP(t, epB2, b, rtpAddr(r.b))
	sendAndSee(t, epB2, r.b, epA, r.a)
	epB.SendRTP(rtpAddr(r.b), 0, g711)  // the old address
	epB2.SendRTP(rtpAddr(r.b), 8, g711) // no longer negotiated
	sendAndSee(t, epB2, r.b, epA, r.a)
	if s := r.b.Stats(); s.DroppedStrangers != 1 || s.DroppedInvalid != 1 || s.Latched != epB2.Addr() {
		t.Errorf("strangers %d, invalid %d, latched %v", s.DroppedStrangers, s.DroppedInvalid, s.Latched)
	}
	// Same address again (hold, codec change): the latch stays.
	if err := r.b.SetRemote(remote(epB2)); err != nil {
		t.Fatal(err)
	}
	if got := r.b.Stats().Latched; got != epB2.Addr() {
		t.Errorf("latch dropped by a re-INVITE that kept the address: %v", got)
	}
	if err := r.b.SetRemote(Remote{RTP: epB2.Addr(), PayloadTypes: []PayloadType{{Number: 200}}}); !errors.Is(err, ErrPayloadType) {
		t.Errorf("payload type 200: err = %v", err)
	}
}

func TestRTCPRelay(t *testing.T) {
	epA := mediatest.NewEndpoint(t, "127.0.0.1:0")
	rtcpA := mediatest.NewEndpoint(t, "127.0.0.1:0") // NAT-mapped RTCP port, not RTP+1
	epB := mediatest.NewEndpoint(t, "127.0.0.1:0")
	rtcpB := mediatest.NewEndpoint(t, "127.0.0.1:0") // announced with a=rtcp
	stranger := mediatest.NewEndpoint(t, "127.0.0.3:0")
	rb := remote(epB)
	rb.RTCP = rtcpB.Addr()
	r := newRig(t, "127.77.17.1", remote(epA), rb)

	// Before A's RTP latched, RTCP from an unannounced port is a stranger's.
	rtcpA.Send(rtcpAddr(r.a), marshalRTCP(t, testRR))
	mediatest.Eventually(t, wait, "early RTCP to be dropped", func() bool { return r.a.Stats().DroppedStrangers == 1 })

	sendAndSee(t, epA, r.a, epB, r.b)
	sendAndSee(t, epB, r.b, epA, r.a)
	stranger.Send(rtcpAddr(r.a), marshalRTCP(t, testRR))
	sr := marshalRTCP(t, testSR, testSDES)
	rtcpA.Send(rtcpAddr(r.a), sr)
	expectRTP(t, rtcpB, sr, rtcpAddr(r.b)) // untouched, and the stranger's not before it

	rr := marshalRTCP(t, testRR)
	rtcpB.Send(rtcpAddr(r.b), rr)
	expectRTP(t, rtcpA, rr, rtcpAddr(r.a)) // to A's latched RTCP address

	sa := r.a.Stats()
	want := RTCPReport{SSRC: testSR.SSRC, Sender: true, NTPTime: testSR.NTPTime, RTPTime: testSR.RTPTime, PacketCount: 50, OctetCount: 8000,
		Blocks: []ReportBlock{{SSRC: 0x22222222, FractionLost: 25, TotalLost: 7, HighestSeq: 65600, Jitter: 42, LSR: 0x12345678, DLSR: 0x10000}}}
	if !equalReports(sa.RTCP, want) || !sa.RTCP.At.Equal(r.clock.Now()) {
		t.Errorf("A's RTCP report = %+v", sa.RTCP)
	}
	if sa.LatchedRTCP != rtcpA.Addr() || sa.RTCPIn != 1 || sa.RTCPOut != 1 || sa.DroppedStrangers != 2 {
		t.Errorf("A: latched RTCP %v, in %d, out %d, strangers %d", sa.LatchedRTCP, sa.RTCPIn, sa.RTCPOut, sa.DroppedStrangers)
	}
	if sb := r.b.Stats(); sb.RTCP.SSRC != testRR.SSRC || len(sb.RTCP.Blocks) != 1 || sb.RTCP.Blocks[0].TotalLost != 2 {
		t.Errorf("B's RTCP report = %+v", sb.RTCP)
	}
	if n := stranger.Drain(); n != 0 {
		t.Errorf("stranger received %d packets", n)
	}
}

func TestLastActivity(t *testing.T) {
	epA := mediatest.NewEndpoint(t, "127.0.0.1:0")
	epB := mediatest.NewEndpoint(t, "127.0.0.1:0")
	r := newRig(t, "127.77.18.1", remote(epA), remote(epB))
	if !r.a.LastActivity().IsZero() {
		t.Fatal("activity before any packet")
	}
	t0 := r.clock.Now()
	sendAndSee(t, epA, r.a, epB, r.b)
	r.clock.Advance(61 * time.Second)
	sendAndSee(t, epB, r.b, epA, r.a)
	if got := r.a.LastActivity(); !got.Equal(t0) {
		t.Errorf("A: %v, want %v", got, t0)
	}
	if got := r.b.LastActivity(); !got.Equal(t0.Add(61 * time.Second)) {
		t.Errorf("B: %v, want %v", got, t0.Add(61*time.Second))
	}
}

func TestCloseReleasesPorts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start bool
		stop  func(t *testing.T, br *Bridge, cancel context.CancelFunc)
	}{
		{"Close after Start", true, func(t *testing.T, br *Bridge, _ context.CancelFunc) {
			if err := br.Close(); err != nil {
				t.Fatal(err)
			}
		}},
		{"Close without Start", false, func(t *testing.T, br *Bridge, _ context.CancelFunc) {
			if err := br.Close(); err != nil {
				t.Fatal(err)
			}
		}},
		{"context cancelled", true, func(t *testing.T, br *Bridge, cancel context.CancelFunc) { cancel() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := testPool(t, "127.77.19.1", 44000, 44003) // 2 pairs
			legs := make([]*Leg, 2)
			for i := range legs {
				pp, err := pool.Allocate()
				if err != nil {
					t.Fatal(err)
				}
				if legs[i], err = NewLeg(pp, LegConfig{}); err != nil {
					t.Fatal(err)
				}
			}
			br, err := NewBridge(legs[0], legs[1])
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.start {
				if err := br.Start(ctx); err != nil {
					t.Fatal(err)
				}
			}
			tc.stop(t, br, cancel)
			mediatest.Eventually(t, wait, "ports back in the pool", func() bool { return pool.Free() == 2 })
			for _, l := range legs {
				for _, a := range []netip.AddrPort{rtpAddr(l), rtcpAddr(l)} {
					c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(a))
					if err != nil {
						t.Fatalf("%v still bound: %v", a, err)
					}
					c.Close()
				}
			}
			if err := br.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if err := br.Start(ctx); !errors.Is(err, ErrClosed) {
				t.Errorf("Start after Close: err = %v", err)
			}
			if err := legs[0].Close(); !errors.Is(err, ErrClosed) {
				t.Errorf("leg Close after bridge Close: err = %v", err)
			}
			if pool.Free() != 2 {
				t.Errorf("Free = %d, want 2", pool.Free())
			}
		})
	}
}

func TestBridgeMisuse(t *testing.T) {
	pool := testPool(t, "127.77.20.1", 44000, 44005)
	newLeg := func() *Leg {
		pp, err := pool.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		l, err := NewLeg(pp, LegConfig{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	a, b, c := newLeg(), newLeg(), newLeg()
	if _, err := NewBridge(a, a); !errors.Is(err, ErrSameLeg) {
		t.Errorf("same leg: %v", err)
	}
	br, err := NewBridge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	if _, err := NewBridge(c, a); !errors.Is(err, ErrLegInUse) {
		t.Errorf("leg in use: %v", err)
	}
	if _, err := NewBridge(c, b); !errors.Is(err, ErrLegInUse) {
		t.Errorf("leg in use: %v", err)
	}
	if err := br.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := br.Start(context.Background()); !errors.Is(err, ErrStarted) {
		t.Errorf("second Start: %v", err)
	}
	c.Close()
	d := newLeg()
	if _, err := NewBridge(c, d); !errors.Is(err, ErrClosed) {
		t.Errorf("closed leg: %v", err)
	}
	pp, err := pool.Allocate()
	if !errors.Is(err, ErrNoPorts) {
		t.Fatalf("pool should be empty: %v %v", pp, err)
	}
	if _, err := NewLeg(nil, LegConfig{}); !errors.Is(err, ErrClosed) {
		t.Errorf("nil ports: %v", err)
	}
}

// TestOverlay lays a tone over what one phone hears: the payloads of the
// next packets are the tone, headers untouched, until the tone runs out.
func TestOverlay(t *testing.T) {
	epA := mediatest.NewEndpoint(t, "127.0.0.1:0")
	epB := mediatest.NewEndpoint(t, "127.0.0.1:0")
	r := newRig(t, "127.77.10.9", remote(epA), remote(epB))
	tone := bytes.Repeat([]byte{0x5a}, 400)
	r.b.Overlay(map[string][]byte{"pcmu": tone})
	for i := range 4 {
		p := mediatest.RTP(0, false, uint16(200+i), uint32(i*160), 0xcccc, g711)
		epA.Send(rtpAddr(r.a), p)
		got, _ := epB.MustRecv(wait)
		if !bytes.Equal(got[:12], p[:12]) {
			t.Fatalf("packet %d: header changed", i)
		}
		want := slices.Clone(p[12:])
		copy(want, tone[min(len(tone), i*160):])
		if !bytes.Equal(got[12:], want) {
			t.Fatalf("packet %d: payload %x..., want %x...", i, got[12:20], want[:8])
		}
	}
	if r.b.overlay.Load() != nil {
		t.Error("the overlay outlived its audio")
	}
	// The other way is untouched.
	p := mediatest.RTP(0, false, 300, 0, 0xdddd, g711)
	epB.Send(rtpAddr(r.b), p)
	expectRTP(t, epA, p, rtpAddr(r.a))
}
