package call

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/media"
	"github.com/kaopu/kaopu/internal/sdpx"
	"github.com/kaopu/kaopu/internal/store"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// peer is a phone in these tests: a UDP socket, and its own SDES key.
type peer struct {
	t    *testing.T
	conn *net.UDPConn
	key  []byte // what the phone encrypts with (it announces it)
	ver  int
	seq  uint16 // last RTP sequence number sent
}

func newPeer(t *testing.T) *peer {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	key, _ := media.NewKey(media.AESCM128HMACSHA180)
	return &peer{t: t, conn: c, key: key}
}

func (p *peer) port() int { return p.conn.LocalAddr().(*net.UDPAddr).Port }

// sdp is the phone's offer or answer; crypto lines are "TAG SUITE" and get
// the phone's key (of the suite's length).
func (p *peer) sdp(proto string, crypto ...string) []byte {
	p.ver++
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=- 1 %d IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n", p.ver)
	fmt.Fprintf(&b, "m=audio %d %s 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n", p.port(), proto)
	for _, c := range crypto {
		suite := strings.Fields(c)[1]
		key := p.key[:media.Suite(suite).KeyLen()]
		fmt.Fprintf(&b, "a=crypto:%s inline:%s\r\n", c, base64.StdEncoding.EncodeToString(key))
	}
	return []byte(b.String())
}

// serverKey is the a=crypto the server wrote for this phone (tag, or the
// only line), parsed.
func serverKey(t *testing.T, body []byte, tag int) sdpx.Crypto {
	t.Helper()
	s, err := sdpx.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range s.Audio.Crypto {
		c, err := sdpx.ParseCrypto(v, suiteKeyLen)
		if err == nil && (tag == 0 || c.Tag == tag) {
			return c
		}
	}
	t.Fatalf("no a=crypto (tag %d) in\n%s", tag, body)
	return sdpx.Crypto{}
}

func ctxFor(t *testing.T, suite string, key []byte) *srtp.Context {
	t.Helper()
	profile := map[string]srtp.ProtectionProfile{"AES_CM_128_HMAC_SHA1_80": srtp.ProtectionProfileAes128CmHmacSha1_80,
		"AEAD_AES_128_GCM": srtp.ProtectionProfileAeadAes128Gcm, "AES_CM_128_HMAC_SHA1_32": srtp.ProtectionProfileAes128CmHmacSha1_32}[suite]
	c, err := srtp.CreateContext(key[:16], key[16:], profile)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// link is how a phone protects what it sends (enc, its own key) and reads
// what it receives (dec, the server's key for its leg); nil for plain.
type link struct{ enc, dec *srtp.Context }

func (p *peer) send(to netip.AddrPort, l link, seq uint16, payload byte) {
	pkt, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq, Timestamp: uint32(seq) * 160,
		SSRC: uint32(p.port())}, Payload: bytes.Repeat([]byte{payload}, 160)}).Marshal()
	if l.enc != nil {
		var err error
		if pkt, err = l.enc.EncryptRTP(nil, pkt, nil); err != nil {
			p.t.Fatal(err)
		}
	}
	if _, err := p.conn.WriteToUDPAddrPort(pkt, to); err != nil {
		p.t.Fatal(err)
	}
}

// recv returns the payload of the next packet, decrypted with l.dec; it
// fails if an SRTP phone gets a packet it cannot authenticate, or a plain
// phone gets anything but the plain payload.
func (p *peer) recv(l link) []byte {
	p.t.Helper()
	buf := make([]byte, 2048)
	p.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, _, err := p.conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		p.t.Fatal(err)
	}
	pkt := buf[:n]
	if l.dec != nil {
		if pkt, err = l.dec.DecryptRTP(nil, pkt, nil); err != nil {
			p.t.Fatalf("phone cannot decrypt with the key the server gave it: %v", err)
		}
	}
	var r rtp.Packet
	if err := r.Unmarshal(pkt); err != nil {
		p.t.Fatal(err)
	}
	return r.Payload
}

func testManager(t *testing.T, policy string) *Manager {
	pool, err := media.NewPortPool(media.PortPoolConfig{IP: netip.MustParseAddr("127.0.0.1"), Low: 42200, High: 42299})
	if err != nil {
		t.Fatal(err)
	}
	return &Manager{cfg: Config{MediaEncryption: policy}, media: MediaConfig{Pool: pool, IP: netip.MustParseAddr("127.0.0.1")}}
}

func relayAddr(body []byte) netip.AddrPort {
	s, _ := sdpx.Parse(body)
	return netip.AddrPortFrom(s.Audio.Addr, uint16(s.Audio.Port))
}

// twoWay checks audio both ways through the anchor, each phone with its link.
func twoWay(t *testing.T, a, b *peer, toA, toB []byte, la, lb link) {
	t.Helper()
	for i := range 3 {
		a.seq++
		a.send(relayAddr(toA), la, a.seq, byte(0x10+i))
		if got := b.recv(lb); got[0] != byte(0x10+i) || len(got) != 160 {
			t.Fatalf("callee got payload %x…", got[:4])
		}
		b.seq++
		b.send(relayAddr(toB), lb, b.seq, byte(0x60+i))
		if got := a.recv(la); got[0] != byte(0x60+i) || len(got) != 160 {
			t.Fatalf("caller got payload %x…", got[:4])
		}
	}
}

func protoOf(t *testing.T, body []byte) string {
	s, err := sdpx.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	return s.Audio.Proto
}

// TestAnchorSRTP runs offers and answers through a call's anchor and
// then media through its relay: per-leg keys generated by the server
// (never a phone's key passed on), SRTP↔RTP and SRTP↔SRTP.
func TestAnchorSRTP(t *testing.T) {
	const cm80, gcm = "AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM"
	tests := []struct {
		name                   string
		callerProto            string
		callerCrypto           []string
		calleeAnswer           func(p *peer) []byte // answer to the server's offer
		wantOffer              string               // transport offered to the callee
		callerSRTP, calleeSRTP bool
		calleeTag              int
	}{
		{name: "SAVP caller, plain callee", callerProto: "RTP/SAVP", callerCrypto: []string{"1 " + cm80},
			calleeAnswer: func(p *peer) []byte { return p.sdp("RTP/AVP") }, wantOffer: "RTP/AVP", callerSRTP: true},
		{name: "best-effort caller, SRTP callee (GCM)", callerProto: "RTP/AVP", callerCrypto: []string{"3 AES_256_CM_HMAC_SHA1_80", "5 " + cm80},
			calleeAnswer: func(p *peer) []byte { return p.sdp("RTP/AVP", "2 "+gcm) }, wantOffer: "RTP/AVP", callerSRTP: true, calleeSRTP: true, calleeTag: 2},
		{name: "plain caller, plain callee", callerProto: "RTP/AVP",
			calleeAnswer: func(p *peer) []byte { return p.sdp("RTP/AVP") }, wantOffer: "RTP/AVP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testManager(t, PolicyOptional)
			caller, callee := newPeer(t), newPeer(t)
			offer := caller.sdp(tt.callerProto, tt.callerCrypto...)
			a, err := m.newAnchor(offer, slog.New(slog.DiscardHandler), "alice", "bob")
			if err != nil {
				t.Fatal(err)
			}
			defer a.close()
			if got := protoOf(t, a.outOffer); got != tt.wantOffer {
				t.Fatalf("offer to callee is %s", got)
			}
			if n := len(a.outSession.Audio.Crypto); (n > 0) != tt.callerSRTP {
				t.Fatalf("offer to callee has %d a=crypto", n)
			}
			if bytes.Contains(a.outOffer, []byte(base64.StdEncoding.EncodeToString(caller.key)[:20])) {
				t.Fatal("the caller's key was passed to the callee")
			}
			toCaller, err := a.answered(context.Background(), tt.calleeAnswer(callee))
			if err != nil {
				t.Fatal(err)
			}
			if got := protoOf(t, toCaller); got != tt.callerProto {
				t.Fatalf("answer to caller is %s, offer was %s", got, tt.callerProto)
			}
			var la, lb link
			if tt.callerSRTP {
				ours := serverKey(t, toCaller, 0)
				if ours.Tag != 5 && ours.Tag != 1 || ours.Suite != cm80 {
					t.Fatalf("answer to caller: %v", ours)
				}
				if bytes.Equal(ours.Key, caller.key) || bytes.Equal(ours.Key, callee.key[:30]) {
					t.Fatal("the server answered with a phone's key")
				}
				la = link{enc: ctxFor(t, cm80, caller.key), dec: ctxFor(t, cm80, ours.Key)}
			} else if strings.Contains(string(toCaller), "a=crypto") {
				t.Fatal("a=crypto in the answer to a plain caller")
			}
			if tt.calleeSRTP {
				ours := serverKey(t, a.outOffer, tt.calleeTag)
				lb = link{enc: ctxFor(t, ours.Suite, callee.key[:media.Suite(ours.Suite).KeyLen()]), dec: ctxFor(t, ours.Suite, ours.Key)}
			}
			twoWay(t, caller, callee, toCaller, a.outOffer, la, lb)
			if s := a.legA.Stats(); (s.SRTP != "") != tt.callerSRTP || s.DroppedAuth != 0 {
				t.Errorf("caller leg: %+v", s)
			}
			if s := a.legB.Stats(); (s.SRTP != "") != tt.calleeSRTP || s.DroppedAuth != 0 {
				t.Errorf("callee leg: %+v", s)
			}
		})
	}
}

// TestMediaPolicy: under the required policy a plain offer is refused with
// the SRTP warning, an SRTP one goes to the callee as RTP/SAVP, and a
// callee that answers plainly fails the call.
func TestMediaPolicy(t *testing.T) {
	m := testManager(t, PolicyRequired)
	if got := m.mediaPolicy("anyone"); got != PolicyRequired {
		t.Fatalf("mediaPolicy = %q", got)
	}
	if got := (&Manager{}).mediaPolicy("anyone"); got != PolicyOptional {
		t.Fatalf("default mediaPolicy = %q", got)
	}
	perUser := &Manager{cfg: Config{MediaEncryption: PolicyOptional, Policy: func(user string) store.Policy {
		return map[string]store.Policy{"carol": {MediaEncryption: PolicyRequired}, "dave": {MediaEncryption: PolicyOptional}}[user]
	}}}
	for user, want := range map[string]string{"carol": PolicyRequired, "dave": PolicyOptional, "erin": PolicyOptional} {
		if got := perUser.mediaPolicy(user); got != want {
			t.Errorf("mediaPolicy(%s) = %q, want %q", user, got, want)
		}
	}
	perUser.cfg.MediaEncryption = PolicyRequired
	if perUser.mediaPolicy("dave") != PolicyOptional || perUser.mediaPolicy("erin") != PolicyRequired {
		t.Error("a user's own setting must override the global one, and only for that user")
	}
	caller, callee := newPeer(t), newPeer(t)
	log := slog.New(slog.DiscardHandler)
	for _, proto := range []string{"RTP/AVP"} {
		if _, err := m.newAnchor(caller.sdp(proto), log, "alice", "bob"); err != errSRTPRequired {
			t.Fatalf("plain offer: err = %v", err)
		}
	}
	// Unsupported suites only: no usable SRTP either.
	if _, err := m.newAnchor(caller.sdp("RTP/AVP", "1 AES_256_CM_HMAC_SHA1_80"), log, "alice", "bob"); err != errSRTPRequired {
		t.Fatalf("offer with unsupported suites only: err = %v", err)
	}
	// RTP/SAVP with nothing usable is refused under any policy.
	if _, err := testManager(t, PolicyOptional).newAnchor(caller.sdp("RTP/SAVP", "1 AES_256_CM_HMAC_SHA1_80"), log, "alice", "bob"); err == nil {
		t.Fatal("RTP/SAVP offer without a usable suite accepted")
	}
	a, err := m.newAnchor(caller.sdp("RTP/AVP", "1 AES_CM_128_HMAC_SHA1_80"), log, "alice", "bob")
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	if got := protoOf(t, a.outOffer); got != "RTP/SAVP" {
		t.Fatalf("offer to a callee that requires SRTP is %s", got)
	}
	if _, err := a.answered(context.Background(), callee.sdp("RTP/AVP")); !errors.Is(err, sdpx.ErrUnsupported) {
		t.Fatalf("plain answer under the required policy: %v", err)
	}
	if w := m.srtpWarning().Value(); !strings.HasPrefix(w, "399 ") || !strings.Contains(w, "SRTP") {
		t.Errorf("Warning: %s", w)
	}
}

// TestReinviteSRTP: a re-INVITE repeating the caller's key keeps every
// key (the phones' contexts go on working); one with a new caller key
// re-keys only that direction; the callee sees the keys it already had.
func TestReinviteSRTP(t *testing.T) {
	const cm80 = "AES_CM_128_HMAC_SHA1_80"
	m := testManager(t, PolicyOptional)
	caller, callee := newPeer(t), newPeer(t)
	log := slog.New(slog.DiscardHandler)
	a, err := m.newAnchor(caller.sdp("RTP/SAVP", "1 "+cm80), log, "alice", "bob")
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	toCaller, err := a.answered(context.Background(), callee.sdp("RTP/AVP", "1 "+cm80))
	if err != nil {
		t.Fatal(err)
	}
	callerKey, calleeKey := serverKey(t, toCaller, 0), serverKey(t, a.outOffer, 1)
	la := link{enc: ctxFor(t, cm80, caller.key), dec: ctxFor(t, cm80, callerKey.Key)}
	lb := link{enc: ctxFor(t, cm80, callee.key), dec: ctxFor(t, cm80, calleeKey.Key)}
	twoWay(t, caller, callee, toCaller, a.outOffer, la, lb)

	sd := side{c: &Call{med: a}, fromCaller: true}
	reinvite := func() ([]byte, []byte) {
		t.Helper()
		out, po, err := sd.rewriteOffer(caller.sdp("RTP/SAVP", "1 "+cm80))
		if err != nil {
			t.Fatal(err)
		}
		if k := serverKey(t, out, 0); !bytes.Equal(k.Key, calleeKey.Key) || protoOf(t, out) != "RTP/AVP" {
			t.Fatalf("re-offer to callee: %v %s", k, protoOf(t, out))
		}
		back, err := sd.rewriteAnswer(callee.sdp("RTP/AVP", "1 "+cm80), po)
		if err != nil {
			t.Fatal(err)
		}
		return out, back
	}
	out, back := reinvite()
	if k := serverKey(t, back, 0); !bytes.Equal(k.Key, callerKey.Key) || protoOf(t, back) != "RTP/SAVP" {
		t.Fatalf("re-answer to caller: %v %s", k, protoOf(t, back))
	}
	twoWay(t, caller, callee, back, out, la, lb)

	// The caller changes its key: the old one no longer gets through.
	old := la.enc
	caller.key, _ = media.NewKey(media.AESCM128HMACSHA180)
	out, back = reinvite()
	caller.seq++
	caller.send(relayAddr(back), link{enc: old}, caller.seq, 1)
	deadline := time.Now().Add(2 * time.Second)
	for a.legA.Stats().DroppedAuth == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if a.legA.Stats().DroppedAuth != 1 {
		t.Fatal("a packet under the caller's old key was not refused")
	}
	la.enc = ctxFor(t, cm80, caller.key)
	twoWay(t, caller, callee, back, out, la, lb)
}

// TestLateOfferSRTP: the callee's SRTP offer in its 2xx becomes the
// server's offer to the caller, with the server's key; the caller's
// answer in its ACK completes both legs.
func TestLateOfferSRTP(t *testing.T) {
	const cm80 = "AES_CM_128_HMAC_SHA1_80"
	m := testManager(t, PolicyOptional)
	caller, callee := newPeer(t), newPeer(t)
	a, err := m.newAnchor(nil, slog.New(slog.DiscardHandler), "alice", "bob")
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	toCaller, err := a.lateOffer(callee.sdp("RTP/SAVP", "4 "+cm80))
	if err != nil {
		t.Fatal(err)
	}
	if protoOf(t, toCaller) != "RTP/AVP" {
		t.Fatalf("late offer to caller: %s", toCaller)
	}
	offered := serverKey(t, toCaller, 1) // AES_CM_128_HMAC_SHA1_80 is our tag 1
	toCallee, err := a.lateAnswer(context.Background(), caller.sdp("RTP/AVP", "1 "+cm80))
	if err != nil {
		t.Fatal(err)
	}
	ans := serverKey(t, toCallee, 0)
	if protoOf(t, toCallee) != "RTP/SAVP" || ans.Tag != 4 || bytes.Equal(ans.Key, callee.key) {
		t.Fatalf("answer to callee: %v %s", ans, protoOf(t, toCallee))
	}
	la := link{enc: ctxFor(t, cm80, caller.key), dec: ctxFor(t, cm80, offered.Key)}
	lb := link{enc: ctxFor(t, cm80, callee.key), dec: ctxFor(t, cm80, ans.Key)}
	twoWay(t, caller, callee, toCaller, toCallee, la, lb)
}
