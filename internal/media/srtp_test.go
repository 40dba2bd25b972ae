package media

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/media/mediatest"
	"github.com/pion/srtp/v3"
)

// phoneSRTP is a phone's side of an SDES leg: it encrypts with its own key
// (the leg's Remote) and decrypts with the key the server gave it (the
// leg's Local).
type phoneSRTP struct {
	enc, dec *srtp.Context
}

func newPhoneSRTP(t testing.TB, k *SRTP) *phoneSRTP {
	t.Helper()
	p, _ := k.Suite.profile()
	n, _ := p.KeyLen()
	enc, err := srtp.CreateContext(k.Remote[:n], k.Remote[n:], p)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := srtp.CreateContext(k.Local[:n], k.Local[n:], p)
	if err != nil {
		t.Fatal(err)
	}
	return &phoneSRTP{enc, dec}
}

func (p *phoneSRTP) rtp(t testing.TB, plain []byte) []byte {
	t.Helper()
	out, err := p.enc.EncryptRTP(nil, plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (p *phoneSRTP) rtcp(t testing.TB, plain []byte) []byte {
	t.Helper()
	out, err := p.enc.EncryptRTCP(nil, plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// newKeys makes a leg's keys: ours and the phone's, both fresh.
func newKeys(t testing.TB, s Suite) *SRTP {
	t.Helper()
	local, err := NewKey(s)
	if err != nil {
		t.Fatal(err)
	}
	remote, err := NewKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return &SRTP{Suite: s, Local: local, Remote: remote}
}

// TestSRTPBridge relays between SRTP and plain legs in every combination
// and suite: what the receiving phone gets is the sender's plain packet,
// protected (if at all) with the key the server gave the receiving phone,
// never with the sender's key.
func TestSRTPBridge(t *testing.T) {
	cases := []struct{ a, b Suite }{
		{AESCM128HMACSHA180, ""},
		{"", AEADAES128GCM},
		{AESCM128HMACSHA180, AESCM128HMACSHA180},
		{AEADAES128GCM, AESCM128HMACSHA180},
		{AESCM128HMACSHA132, AEADAES128GCM},
	}
	for i, c := range cases {
		t.Run(fmt.Sprintf("%s-%s", name(c.a), name(c.b)), func(t *testing.T) {
			epA := mediatest.NewEndpoint(t, "127.0.0.1:0")
			epB := mediatest.NewEndpoint(t, "127.0.0.1:0")
			var keys [2]*SRTP
			for j, s := range []Suite{c.a, c.b} {
				if s != "" {
					keys[j] = newKeys(t, s)
				}
			}
			n := 0
			r := newRig(t, fmt.Sprintf("127.77.40.%d", i+1), remote(epA), remote(epB), func(cfg *LegConfig) {
				cfg.SRTP = keys[n]
				n++
			})
			phones := [2]*phoneSRTP{}
			for j, k := range keys {
				if k != nil {
					phones[j] = newPhoneSRTP(t, k)
				}
			}
			eps, legs := [2]*mediatest.Endpoint{epA, epB}, [2]*Leg{r.a, r.b}
			for i := range 6 {
				from, to := i%2, 1-i%2
				plain := mediatest.RTP(0, false, uint16(100+i), uint32(i*160), uint32(0xaaaa+from), bytes.Repeat([]byte{byte(i + 1)}, 160))
				wire := plain
				if phones[from] != nil {
					wire = phones[from].rtp(t, plain)
				}
				eps[from].Send(rtpAddr(legs[from]), wire)
				got, src := eps[to].MustRecv(wait)
				if src != rtpAddr(legs[to]) {
					t.Fatalf("from %v", src)
				}
				if phones[to] != nil {
					if len(got) < len(plain) || bytes.Equal(got[12:len(plain)], plain[12:]) {
						t.Fatal("payload sent in clear to an SRTP phone")
					}
					dec, err := phones[to].dec.DecryptRTP(nil, got, nil)
					if err != nil {
						t.Fatalf("phone %d cannot decrypt what it got with its key: %v", to, err)
					}
					got = dec
				}
				if !bytes.Equal(got, plain) {
					t.Fatalf("phone %d got %x, want %x", to, got[:16], plain[:16])
				}
			}
			for j, l := range legs {
				// The relay counts a packet out after its send returns,
				// which may be after the phone has read it.
				s := l.Stats()
				for deadline := time.Now().Add(time.Second); s.PacketsOut < 3 && time.Now().Before(deadline); s = l.Stats() {
					time.Sleep(5 * time.Millisecond)
				}
				if s.PacketsIn != 3 || s.PacketsOut != 3 || s.DroppedAuth != 0 || s.SRTP != []Suite{c.a, c.b}[j] {
					t.Errorf("leg %d: %+v", j, s)
				}
			}
		})
	}
}

func name(s Suite) string {
	if s == "" {
		return "RTP"
	}
	return string(s)
}

// TestSRTPRejects: forged, wrong-key and replayed packets are dropped and
// counted, and a forger cannot latch even inside the latch window.
func TestSRTPRejects(t *testing.T) {
	epA := mediatest.NewEndpoint(t, "127.0.0.1:0")
	epB := mediatest.NewEndpoint(t, "127.0.0.1:0")
	attacker := mediatest.NewEndpoint(t, "127.0.0.3:0")
	k := newKeys(t, AESCM128HMACSHA180)
	first := true
	r := newRig(t, "127.77.41.1", remote(epA), remote(epB), func(cfg *LegConfig) {
		if first {
			cfg.SRTP = k
		}
		first = false
	})
	phone := newPhoneSRTP(t, k)
	wrong := newPhoneSRTP(t, newKeys(t, AESCM128HMACSHA180))

	// Inside the window, from another address: plain RTP, then SRTP with
	// the wrong key, then a real packet with its tag flipped.
	plain := mediatest.RTP(0, false, 1, 160, 0x1234, g711)
	attacker.Send(rtpAddr(r.a), plain)
	attacker.Send(rtpAddr(r.a), wrong.rtp(t, plain))
	forged := phone.rtp(t, mediatest.RTP(0, false, 2, 320, 0x1234, g711))
	forged[len(forged)-1] ^= 1
	attacker.Send(rtpAddr(r.a), forged)
	mediatest.Eventually(t, wait, "forgeries dropped", func() bool { return r.a.Stats().DroppedAuth == 3 })
	if s := r.a.Stats(); s.Latched.IsValid() || s.PacketsIn != 0 {
		t.Fatalf("a forgery latched or counted: %+v", s)
	}

	// The phone itself, then a replay of its packet.
	good := phone.rtp(t, mediatest.RTP(0, false, 3, 480, 0x1234, g711))
	epA.Send(rtpAddr(r.a), good)
	expectRTP(t, epB, mediatest.RTP(0, false, 3, 480, 0x1234, g711), rtpAddr(r.b))
	epA.Send(rtpAddr(r.a), good)
	mediatest.Eventually(t, wait, "replay dropped", func() bool { return r.a.Stats().DroppedAuth == 4 })
	if s := r.a.Stats(); s.Latched != epA.Addr() || s.PacketsIn != 1 {
		t.Errorf("after the phone's packet: %+v", s)
	}
	if n := epB.Drain() + attacker.Drain(); n != 0 {
		t.Errorf("%d packets leaked", n)
	}
}

// TestSRTCPRelay: SRTCP from an SRTP phone reaches a plain phone as the
// plain report and the other way round.
func TestSRTCPRelay(t *testing.T) {
	epA := mediatest.NewEndpoint(t, "127.0.0.1:0")
	rtcpA := mediatest.NewEndpoint(t, "127.0.0.1:0")
	epB := mediatest.NewEndpoint(t, "127.0.0.1:0")
	rtcpB := mediatest.NewEndpoint(t, "127.0.0.1:0")
	k := newKeys(t, AEADAES128GCM)
	ra, rb := remote(epA), remote(epB)
	ra.RTCP, rb.RTCP = rtcpA.Addr(), rtcpB.Addr()
	first := true
	r := newRig(t, "127.77.42.1", ra, rb, func(cfg *LegConfig) {
		if first {
			cfg.SRTP = k
		}
		first = false
	})
	phone := newPhoneSRTP(t, k)
	sr := marshalRTCP(t, testSR, testSDES)
	rtcpA.Send(rtcpAddr(r.a), phone.rtcp(t, sr))
	expectRTP(t, rtcpB, sr, rtcpAddr(r.b))

	rr := marshalRTCP(t, testRR)
	rtcpB.Send(rtcpAddr(r.b), rr)
	got, _ := rtcpA.MustRecv(wait)
	if bytes.Equal(got, rr) {
		t.Fatal("RTCP sent in clear to an SRTP phone")
	}
	dec, err := phone.dec.DecryptRTCP(nil, got, nil)
	if err != nil || !bytes.Equal(dec, rr) {
		t.Fatalf("phone decrypts %x, %v; want %x", dec, err, rr)
	}
	if s := r.a.Stats(); s.RTCP.SSRC != testSR.SSRC || s.RTCPIn != 1 || s.RTCPOut != 1 {
		t.Errorf("A: %+v", s)
	}
	// A forged SRTCP packet is dropped and counted.
	bad := phone.rtcp(t, sr)
	bad[10] ^= 0xff
	rtcpA.Send(rtcpAddr(r.a), bad)
	mediatest.Eventually(t, wait, "forged SRTCP dropped", func() bool { return r.a.Stats().DroppedAuth == 1 })
}

// TestSetSRTP re-keys a leg: packets under the old key are refused after
// the change, the new key works, and repeating the keys keeps the
// contexts (their replay windows).
func TestSetSRTP(t *testing.T) {
	epA := mediatest.NewEndpoint(t, "127.0.0.1:0")
	epB := mediatest.NewEndpoint(t, "127.0.0.1:0")
	k := newKeys(t, AESCM128HMACSHA180)
	first := true
	r := newRig(t, "127.77.43.1", remote(epA), remote(epB), func(cfg *LegConfig) {
		if first {
			cfg.SRTP = k
		}
		first = false
	})
	old := r.a.sec.Load()
	if err := r.a.SetSRTP(&SRTP{Suite: k.Suite, Local: k.Local, Remote: k.Remote}); err != nil {
		t.Fatal(err)
	}
	if s := r.a.sec.Load(); s.in != old.in || s.out != old.out {
		t.Fatal("same keys made new contexts")
	}
	oldPhone := newPhoneSRTP(t, k)
	k2 := &SRTP{Suite: k.Suite, Local: k.Local, Remote: newKeys(t, k.Suite).Remote}
	if err := r.a.SetSRTP(k2); err != nil {
		t.Fatal(err)
	}
	if s := r.a.sec.Load(); s.in == old.in || s.out != old.out {
		t.Fatal("a new remote key must replace only the inbound context")
	}
	epA.Send(rtpAddr(r.a), oldPhone.rtp(t, mediatest.RTP(0, false, 1, 0, 7, g711)))
	mediatest.Eventually(t, wait, "old key refused", func() bool { return r.a.Stats().DroppedAuth == 1 })
	plain := mediatest.RTP(0, false, 2, 160, 7, g711)
	epA.Send(rtpAddr(r.a), newPhoneSRTP(t, k2).rtp(t, plain))
	expectRTP(t, epB, plain, rtpAddr(r.b))

	// Back to plain RTP.
	if err := r.a.SetSRTP(nil); err != nil {
		t.Fatal(err)
	}
	plain = mediatest.RTP(0, false, 3, 320, 7, g711)
	epA.Send(rtpAddr(r.a), plain)
	expectRTP(t, epB, plain, rtpAddr(r.b))
	if r.a.Stats().SRTP != "" {
		t.Error("still SRTP")
	}
}

func TestSRTPKeys(t *testing.T) {
	for _, c := range []struct {
		suite Suite
		n     int
	}{{AESCM128HMACSHA180, 30}, {AESCM128HMACSHA132, 30}, {AEADAES128GCM, 28}, {"AES_256_CM_HMAC_SHA1_80", 0}} {
		if got := c.suite.KeyLen(); got != c.n {
			t.Errorf("%s: KeyLen %d, want %d", c.suite, got, c.n)
		}
		k1, err1 := NewKey(c.suite)
		k2, _ := NewKey(c.suite)
		if c.n == 0 {
			if !errors.Is(err1, ErrSuite) {
				t.Errorf("%s: err %v", c.suite, err1)
			}
			continue
		}
		if len(k1) != c.n || bytes.Equal(k1, k2) {
			t.Errorf("%s: keys %d bytes, equal %v", c.suite, len(k1), bytes.Equal(k1, k2))
		}
	}
	pool := testPool(t, "127.77.44.1", 44000, 44001)
	pp, err := pool.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer pp.Close()
	k := newKeys(t, AEADAES128GCM)
	k.Suite = AESCM128HMACSHA180 // 28-byte keys for a 30-byte suite
	if _, err := NewLeg(pp, LegConfig{Remote: Remote{RTP: netip.MustParseAddrPort("127.0.0.1:9")}, SRTP: k}); !errors.Is(err, ErrSuite) {
		t.Errorf("wrong key length: %v", err)
	}
	// Keys never show in formatted output.
	k = newKeys(t, AESCM128HMACSHA180)
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %s", k, k), k.LogValue().String()} {
		if s != "SRTP AES_CM_128_HMAC_SHA1_80 SRTP AES_CM_128_HMAC_SHA1_80" && s != "SRTP AES_CM_128_HMAC_SHA1_80" {
			t.Errorf("formatted keys: %q", s)
		}
	}
}

// FuzzSRTPLeg feeds untrusted datagrams to an SRTP leg's receive path, RTP
// and RTCP: nothing panics, a datagram is accepted only if it really was
// protected with the phone's key (a second context with that key agrees),
// and a rejected datagram costs a bounded number of allocations. Seeds are
// real SRTP and SRTCP packets of both suite families.
func FuzzSRTPLeg(f *testing.F) {
	keyOf := func(s Suite) []byte { return bytes.Repeat([]byte{0x5a}, s.KeyLen()) }
	suites := []Suite{AESCM128HMACSHA180, AEADAES128GCM, AESCM128HMACSHA132}
	for i, s := range suites {
		phone := newPhoneSRTP(f, &SRTP{Suite: s, Local: keyOf(s), Remote: keyOf(s)})
		f.Add(phone.rtp(f, mediatest.RTP(0, false, 1, 160, 0x1234, g711)), false, uint8(i))
		f.Add(phone.rtp(f, mediatest.RTP(101, true, 2, 320, 0x1234, []byte{1, 0x8a, 0, 160})), false, uint8(i))
		f.Add(phone.rtcp(f, marshalRTCP(f, testSR, testSDES)), true, uint8(i))
		f.Add(phone.rtcp(f, marshalRTCP(f, testRR)), true, uint8(i))
	}
	f.Add(mediatest.RTP(0, false, 1, 160, 0x1234, g711), false, uint8(0)) // plain RTP
	f.Add([]byte{0x80, 200, 0, 6, 1, 2, 3, 4}, true, uint8(1))
	clock := mediatest.NewClock()
	pool := testPool(f, "127.77.45.1", 42100, 42163) // room for parallel fuzz workers
	sdp := netip.MustParseAddrPort("127.0.0.2:4000")
	f.Fuzz(func(t *testing.T, b []byte, isRTCP bool, which uint8) {
		if len(b) >= bufSize {
			return // the relay drops these before the leg sees them
		}
		s := suites[int(which)%len(suites)]
		k := &SRTP{Suite: s, Local: keyOf(s), Remote: keyOf(s)}
		pp, err := pool.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		l, err := NewLeg(pp, LegConfig{Remote: Remote{RTP: sdp, PayloadTypes: pcmuDTMF}, Clock: clock, SRTP: k})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		l.start()
		buf := make([]byte, len(b), bufSize+srtpOverhead)
		copy(buf, b)
		var ok bool
		var plain []byte
		if isRTCP {
			l.rtpLatch.Store(&latch{addr: sdp, rank: rankExact, gen: l.state.Load().gen})
			plain, ok = l.acceptRTCP(buf, netip.AddrPortFrom(sdp.Addr(), sdp.Port()+1), clock.Now())
		} else {
			_, _, plain, ok = l.acceptRTP(buf, sdp, clock.Now())
		}
		ref := newPhoneSRTP(t, k).enc // the phone's key: decrypts what the phone sent
		var refPlain []byte
		var refErr error
		if isRTCP {
			refPlain, refErr = ref.DecryptRTCP(nil, b, nil)
		} else {
			refPlain, refErr = ref.DecryptRTP(nil, b, nil)
		}
		if ok && (refErr != nil || !bytes.Equal(plain, refPlain)) {
			t.Fatalf("accepted a datagram the key does not authenticate (%v)", refErr)
		}
		st := l.Stats()
		if !ok && (st.PacketsIn != 0 || st.RTCPIn != 0) {
			t.Fatalf("a rejected datagram was counted: %+v", st)
		}
		if ok {
			return
		}
		// Rejections stay cheap: the same datagram again (now also a
		// replay if it was accepted once) allocates a bounded amount.
		allocs := testing.AllocsPerRun(5, func() {
			copy(buf[:len(b)], b)
			if isRTCP {
				l.acceptRTCP(buf[:len(b)], sdp, clock.Now())
			} else {
				l.acceptRTP(buf[:len(b)], sdp, clock.Now())
			}
		})
		if allocs > 16 {
			t.Fatalf("%v allocations to reject a datagram", allocs)
		}
	})
}
