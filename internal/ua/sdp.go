package ua

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/kaopu/kaopu/internal/media/codec"
	"github.com/kaopu/kaopu/internal/sdpx"
)

// SRTPMode says when a call's media is encrypted (SDES, RFC 4568, with
// AES_CM_128_HMAC_SHA1_80).
type SRTPMode int

const (
	// SRTPOffer (the default) offers keys on RTP/AVP ("best effort"): SRTP
	// when the other side answers with a key, plain RTP otherwise; an
	// RTP/SAVP offer is accepted.
	SRTPOffer SRTPMode = iota
	// SRTPOff neither offers nor accepts SRTP.
	SRTPOff
	// SRTPRequire offers RTP/SAVP only and refuses calls without SRTP.
	SRTPRequire
)

// ParseSRTPMode reads "offer", "off" or "require".
func ParseSRTPMode(s string) (SRTPMode, error) {
	switch s {
	case "", "offer":
		return SRTPOffer, nil
	case "off":
		return SRTPOff, nil
	case "require":
		return SRTPRequire, nil
	}
	return 0, fmt.Errorf("srtp %q: allowed off, offer, require", s)
}

const srtpSuite = "AES_CM_128_HMAC_SHA1_80"

// dtmfPT is the payload type this agent uses for telephone-event at
// 8000 Hz in its offers, and dtmfPTWide the one at any other codec clock
// (48000 for Opus): RFC 4733 §2.1 has events use the audio's clock.
const (
	dtmfPT     = 101
	dtmfPTWide = 100
)

// localSDP is what this agent says about its side of a call.
type localSDP struct {
	origin *sdpx.Origin
	addr   netip.Addr
	port   int
	codecs []codec.Info // in preference order; an answer has one
	ptOf   map[string]uint8
	dtmfPT int // -1: no telephone-event
	// dtmfClock is the telephone-event clock an answer agreed to; 0 in
	// an offer, which has one telephone-event per codec clock rate.
	dtmfClock int
	dir       sdpx.Direction
	secure    bool   // RTP/SAVP
	crypto    string // a=crypto value, "" for none
	version   uint64
}

func (l *localSDP) bytes() []byte {
	ipv := "IP4"
	if l.addr.Is6() {
		ipv = "IP6"
	}
	proto := "RTP/AVP"
	if l.secure {
		proto = "RTP/SAVP"
	}
	var fmts []string
	var attrs []string
	for _, c := range l.codecs {
		pt := c.PayloadType
		if n, ok := l.ptOf[c.Name]; ok {
			pt = n
		}
		fmts = append(fmts, strconv.Itoa(int(pt)))
		rtpmap := fmt.Sprintf("a=rtpmap:%d %s/%d", pt, c.Name, c.ClockRate)
		if c.Channels > 1 {
			rtpmap += "/" + strconv.Itoa(c.Channels)
		}
		attrs = append(attrs, rtpmap)
		if c.Fmtp != "" {
			attrs = append(attrs, fmt.Sprintf("a=fmtp:%d %s", pt, c.Fmtp))
		}
	}
	if l.dtmfPT >= 0 {
		// One telephone-event per clock rate of the codecs (RFC 4733
		// §2.1); an answer has one codec, and the offer's number for it.
		var clocks []int
		if l.dtmfClock > 0 {
			clocks = []int{l.dtmfClock}
		}
		for _, c := range l.codecs {
			if l.dtmfClock > 0 {
				break
			}
			if !slices.Contains(clocks, c.ClockRate) {
				clocks = append(clocks, c.ClockRate)
			}
		}
		if len(clocks) == 0 {
			clocks = []int{8000}
		}
		for _, clock := range clocks {
			pt := l.dtmfPT
			if len(clocks) > 1 && clock != 8000 {
				pt = dtmfPTWide
			}
			fmts = append(fmts, strconv.Itoa(pt))
			attrs = append(attrs, fmt.Sprintf("a=rtpmap:%d telephone-event/%d", pt, clock),
				fmt.Sprintf("a=fmtp:%d 0-16", pt))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=kaopu %d %d IN %s %s\r\ns=kaopu\r\nc=IN %s %s\r\nt=0 0\r\n",
		l.origin.SessionID, l.version, ipv, l.addr, ipv, l.addr)
	fmt.Fprintf(&b, "m=audio %d %s %s\r\n", l.port, proto, strings.Join(fmts, " "))
	for _, a := range attrs {
		b.WriteString(a + "\r\n")
	}
	b.WriteString("a=ptime:20\r\n")
	if l.crypto != "" {
		b.WriteString("a=crypto:" + l.crypto + "\r\n")
	}
	b.WriteString("a=" + l.dir.String() + "\r\n")
	return []byte(b.String())
}

// newSRTPKey is 30 random bytes: a 128-bit master key and a 112-bit salt.
func newSRTPKey() []byte {
	key := make([]byte, 30)
	rand.Read(key)
	return key
}

// parseCrypto reads an a=crypto value (RFC 4568 §9.1): tag, suite and the
// first inline key. Lifetime and MKI parameters are accepted and ignored
// (an MKI would change the packet format: such keys are refused).
func parseCrypto(v string) (tag int, key []byte, err error) {
	f := strings.Fields(v)
	if len(f) < 3 || f[1] != srtpSuite || !strings.HasPrefix(f[2], "inline:") {
		return 0, nil, fmt.Errorf("unsupported crypto %q", v)
	}
	if tag, err = strconv.Atoi(f[0]); err != nil || tag < 0 {
		return 0, nil, fmt.Errorf("bad crypto tag in %q", v)
	}
	params := strings.Split(strings.TrimPrefix(f[2], "inline:"), "|")
	if len(params) > 2 {
		return 0, nil, fmt.Errorf("crypto with MKI not supported: %q", v)
	}
	key, err = base64.StdEncoding.DecodeString(params[0])
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(params[0])
	}
	if err != nil || len(key) != 30 {
		return 0, nil, fmt.Errorf("bad SRTP key in %q", v)
	}
	return tag, key, nil
}

// agreed is the outcome of an offer/answer exchange for this agent.
type agreed struct {
	codec   codec.Info
	pt      uint8
	dtmfPT  int // -1: none
	dtmfClk int // telephone-event's clock rate
	remote  netip.AddrPort
	dir     sdpx.Direction // the remote side's effective direction
	srtp    bool
	tag     int    // crypto tag chosen
	peerKey []byte // the remote side's SRTP master key+salt
}

// negotiate picks the first payload type of s's audio stream (the offer's
// or the answer's order) that this agent supports, and the SRTP key if
// any. s is either an offer to answer or the answer to our offer.
func negotiate(s *sdpx.Session, prefs []codec.Info, mode SRTPMode) (agreed, error) {
	st := &s.Audio
	a := agreed{dtmfPT: -1, dir: st.Effective()}
	if strings.Contains(st.Proto, "TLS") {
		return a, fmt.Errorf("%w: %s (DTLS-SRTP) not supported", ErrNotAcceptable, st.Proto)
	}
	found := false
	events := map[int]int{} // clock rate -> telephone-event payload type
	for _, p := range st.PTs {
		if strings.EqualFold(p.Name, "telephone-event") {
			if _, ok := events[int(p.ClockRate)]; !ok {
				events[int(p.ClockRate)] = int(p.Number)
			}
			continue
		}
		if found {
			continue
		}
		for _, c := range prefs {
			// Channels as the rtpmap names them: 1 for G.711 and G.722,
			// always 2 for Opus (RFC 7587 §7), which codes mono too.
			if strings.EqualFold(p.Name, c.Name) && int(p.ClockRate) == c.ClockRate && max(int(p.Channels), 1) == max(c.Channels, 1) {
				a.codec, a.pt, found = c, p.Number, true
				break
			}
		}
	}
	if !found {
		return a, fmt.Errorf("%w: no common codec", ErrNotAcceptable)
	}
	// Events at the codec's clock (RFC 4733 §2.1); many peers offer only
	// 8000 Hz ones, which are taken for any codec as before.
	for _, clock := range []int{a.codec.ClockRate, 8000} {
		if pt, ok := events[clock]; ok {
			a.dtmfPT, a.dtmfClk = pt, clock
			break
		}
	}
	if !st.Disabled() {
		a.remote = netip.AddrPortFrom(st.Addr, uint16(st.Port))
	}
	if mode != SRTPOff {
		for _, c := range st.Crypto {
			if tag, key, err := parseCrypto(c); err == nil {
				a.srtp, a.tag, a.peerKey = true, tag, key
				break
			}
		}
	}
	switch {
	case st.Secure() && !a.srtp:
		return a, fmt.Errorf("%w: %s without a usable AES_CM_128_HMAC_SHA1_80 key", ErrNotAcceptable, st.Proto)
	case mode == SRTPRequire && !a.srtp:
		return a, fmt.Errorf("%w: SRTP required, none offered", ErrNotAcceptable)
	}
	return a, nil
}

// answerDirection is the direction to answer an offer of direction remote
// with, when this side wants want (RFC 3264 §6.1).
func answerDirection(remote, want sdpx.Direction) sdpx.Direction {
	sends, recvs := want.Sends() && remote.Receives(), want.Receives() && remote.Sends()
	switch {
	case sends && recvs:
		return sdpx.SendRecv
	case sends:
		return sdpx.SendOnly
	case recvs:
		return sdpx.RecvOnly
	}
	return sdpx.Inactive
}
