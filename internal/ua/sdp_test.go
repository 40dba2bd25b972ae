package ua

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/kaopu/kaopu/internal/media/codec"
	"github.com/kaopu/kaopu/internal/sdpx"
)

func TestNegotiate(t *testing.T) {
	key := "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
	sdp := func(proto, fmts string, extra ...string) []byte {
		return []byte("v=0\r\no=- 1 1 IN IP4 192.0.2.5\r\ns=-\r\nc=IN IP4 192.0.2.5\r\nt=0 0\r\n" +
			"m=audio 4000 " + proto + " " + fmts + "\r\na=rtpmap:9 G722/8000\r\na=rtpmap:96 telephone-event/8000\r\n" +
			strings.Join(extra, "\r\n") + "\r\n")
	}
	all := []codec.Info{codec.PCMU, codec.PCMA, codec.G722}
	cases := []struct {
		name    string
		body    []byte
		prefs   []codec.Info
		mode    SRTPMode
		codec   string
		srtp    bool
		dir     sdpx.Direction
		refused bool
	}{
		{"offer order wins", sdp("RTP/AVP", "9 0 96"), all, SRTPOffer, "G722", false, sdpx.SendRecv, false},
		{"our list limits", sdp("RTP/AVP", "9 8 96"), []codec.Info{codec.PCMA}, SRTPOffer, "PCMA", false, sdpx.SendRecv, false},
		{"best-effort SRTP", sdp("RTP/AVP", "0", "a=crypto:"+key), all, SRTPOffer, "PCMU", true, sdpx.SendRecv, false},
		{"SRTP off ignores keys", sdp("RTP/AVP", "0", "a=crypto:"+key), all, SRTPOff, "PCMU", false, sdpx.SendRecv, false},
		{"SAVP without key", sdp("RTP/SAVP", "0"), all, SRTPOffer, "", false, 0, true},
		{"SAVP with SRTP off", sdp("RTP/SAVP", "0", "a=crypto:"+key), all, SRTPOff, "", false, 0, true},
		{"required but absent", sdp("RTP/AVP", "0"), all, SRTPRequire, "", false, 0, true},
		{"no common codec", sdp("RTP/AVP", "18 96", "a=rtpmap:18 G729/8000"), all, SRTPOffer, "", false, 0, true},
		{"hold", sdp("RTP/AVP", "0", "a=sendonly"), all, SRTPOffer, "PCMU", false, sdpx.SendOnly, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := sdpx.Parse(c.body)
			if err != nil {
				t.Fatal(err)
			}
			ag, err := negotiate(s, c.prefs, c.mode)
			if c.refused {
				if !errors.Is(err, ErrNotAcceptable) {
					t.Fatalf("negotiate = %+v, %v; want ErrNotAcceptable", ag, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ag.codec.Name != c.codec || ag.srtp != c.srtp || ag.dir != c.dir || ag.dtmfPT != 96 && strings.Contains(string(c.body), " 96") {
				t.Errorf("got codec %s srtp %v dir %s dtmf %d", ag.codec.Name, ag.srtp, ag.dir, ag.dtmfPT)
			}
			if ag.remote != netip.MustParseAddrPort("192.0.2.5:4000") {
				t.Errorf("remote %s", ag.remote)
			}
		})
	}
}

// TestLocalSDPParses: what we write is what sdpx reads back.
func TestLocalSDPParses(t *testing.T) {
	key := newSRTPKey()
	l := localSDP{origin: sdpx.NewOrigin(), addr: netip.MustParseAddr("192.0.2.7"), port: 5004,
		codecs: []codec.Info{codec.G722, codec.PCMU}, dtmfPT: dtmfPT, dir: sdpx.SendOnly, version: 3,
		secure: true, crypto: keyLine(1, key)}
	s, err := sdpx.Parse(l.bytes())
	if err != nil {
		t.Fatal(err)
	}
	ag, err := negotiate(s, codec.All(), SRTPRequire)
	if err != nil {
		t.Fatal(err)
	}
	if ag.codec.Name != "G722" || ag.dtmfPT != dtmfPT || !ag.srtp || string(ag.peerKey) != string(key) ||
		ag.dir != sdpx.SendOnly || s.Version != 3 || !s.Audio.Secure() {
		t.Errorf("read back %+v (version %d, proto %s)", ag, s.Version, s.Audio.Proto)
	}
	if got := answerDirection(sdpx.SendOnly, sdpx.SendRecv); got != sdpx.RecvOnly {
		t.Errorf("answer to sendonly: %s, want recvonly", got)
	}
	if got := answerDirection(sdpx.SendRecv, sdpx.SendOnly); got != sdpx.SendOnly {
		t.Errorf("held side answering sendrecv: %s, want sendonly", got)
	}
}
