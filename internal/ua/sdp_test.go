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

// TestNegotiateChannelsAndEventClock: a codec whose rtpmap names two
// channels (Opus, RFC 7587 §7) matches only "/2", and telephone-event is
// taken at the codec's clock rate when offered (RFC 4733 §2.1), else at
// 8000. The codec here only has Opus's SDP description, so the pure-Go
// build tests it too.
func TestNegotiateChannelsAndEventClock(t *testing.T) {
	wide := codec.Info{Name: "opus", PayloadType: 111, ClockRate: 48000, SampleRate: 48000, Channels: 2,
		Fmtp: "stereo=0;sprop-stereo=0"}
	prefs := []codec.Info{wide, codec.PCMU}
	offer := func(lines ...string) *sdpx.Session {
		t.Helper()
		s, err := sdpx.Parse([]byte("v=0\r\no=- 1 1 IN IP4 192.0.2.5\r\ns=-\r\nc=IN IP4 192.0.2.5\r\nt=0 0\r\n" +
			strings.Join(lines, "\r\n") + "\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	cases := []struct {
		name      string
		s         *sdpx.Session
		codec     string
		pt        uint8
		dtmf, clk int
	}{
		{"opus/48000/2 with its own events", offer("m=audio 4000 RTP/AVP 96 0 97 98", "a=rtpmap:96 opus/48000/2",
			"a=rtpmap:97 telephone-event/8000", "a=rtpmap:98 telephone-event/48000"), "opus", 96, 98, 48000},
		{"opus with 8000 Hz events only", offer("m=audio 4000 RTP/AVP 96 97", "a=rtpmap:96 opus/48000/2",
			"a=rtpmap:97 telephone-event/8000"), "opus", 96, 97, 8000},
		{"mono opus is not RFC 7587's", offer("m=audio 4000 RTP/AVP 96 0 97 98", "a=rtpmap:96 opus/48000",
			"a=rtpmap:97 telephone-event/8000", "a=rtpmap:98 telephone-event/48000"), "PCMU", 0, 97, 8000},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ag, err := negotiate(c.s, prefs, SRTPOff)
			if err != nil {
				t.Fatal(err)
			}
			if ag.codec.Name != c.codec || ag.pt != c.pt || ag.dtmfPT != c.dtmf || ag.dtmfClk != c.clk {
				t.Errorf("got %s pt %d, events pt %d at %d; want %s pt %d, events %d at %d",
					ag.codec.Name, ag.pt, ag.dtmfPT, ag.dtmfClk, c.codec, c.pt, c.dtmf, c.clk)
			}
		})
	}

	// Our offer: opus/48000/2 with its fmtp, and events at both clocks.
	l := localSDP{origin: sdpx.NewOrigin(), addr: netip.MustParseAddr("192.0.2.7"), port: 5004,
		codecs: prefs, dtmfPT: dtmfPT, dir: sdpx.SendRecv, version: 1}
	body := string(l.bytes())
	for _, want := range []string{"m=audio 5004 RTP/AVP 111 0 100 101\r\n", "a=rtpmap:111 opus/48000/2\r\n",
		"a=fmtp:111 stereo=0;sprop-stereo=0\r\n", "a=rtpmap:100 telephone-event/48000\r\n", "a=rtpmap:101 telephone-event/8000\r\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("offer lacks %q:\n%s", want, body)
		}
	}
	s, err := sdpx.Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if ag, err := negotiate(s, prefs, SRTPOff); err != nil || ag.codec.Name != "opus" || ag.dtmfPT != dtmfPTWide {
		t.Errorf("our offer read back: %s events %d, %v", ag.codec.Name, ag.dtmfPT, err)
	}
	// An answer names the one codec and the events it agreed to.
	l.codecs, l.ptOf, l.dtmfPT, l.dtmfClock = []codec.Info{wide}, map[string]uint8{"opus": 96}, 97, 8000
	body = string(l.bytes())
	if !strings.Contains(body, "m=audio 5004 RTP/AVP 96 97\r\n") || !strings.Contains(body, "a=rtpmap:97 telephone-event/8000\r\n") {
		t.Errorf("answer:\n%s", body)
	}
}
