package sdpx

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func mustParse(t testing.TB, body []byte) *Session {
	t.Helper()
	s, err := Parse(body)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, body)
	}
	return s
}

func TestNegotiate(t *testing.T) {
	tests := []struct {
		name      string
		body      []byte
		supported []PT
		want      []uint8
		err       error
	}{
		{name: "own list keeps offer order", body: load(t, "asterisk_offer.sdp"),
			supported: []PT{{Name: "PCMA", ClockRate: 8000}, {Name: "telephone-event", ClockRate: 8000}},
			want:      []uint8{8, 101}},
		{name: "case and channels", body: sdpWith("", "m=audio 4000 RTP/AVP 96 97\r\na=rtpmap:96 OPUS/48000/2\r\na=rtpmap:97 opus/48000\r\n"),
			want: []uint8{96}},
		{name: "telephone-event alone is no codec", body: sdpWith("", "m=audio 4000 RTP/AVP 101\r\na=rtpmap:101 telephone-event/8000\r\n"),
			err: ErrNoCommonCodec},
		{name: "nothing in common", body: sdpWith("", "m=audio 4000 RTP/AVP 18 3\r\n"), err: ErrNoCommonCodec},
		{name: "unnamed dynamic type never matches", body: sdpWith("", "m=audio 4000 RTP/AVP 96 0\r\n"), want: []uint8{0}},
		{name: "SRTP with SDES keys", body: load(t, "asterisk_srtp.sdp"), want: []uint8{0, 8, 101}},
		{name: "SRTP required, no keys", body: sdpWith("", "m=audio 4000 RTP/SAVP 0\r\n"), err: ErrUnsupported},
		{name: "WebRTC", body: load(t, "chrome_offer.sdp"), err: ErrUnsupported},
		{name: "G.722 written as 16000", body: sdpWith("", "m=audio 4000 RTP/AVP 9\r\na=rtpmap:9 G722/16000\r\n"), want: []uint8{9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Negotiate(mustParse(t, tt.body), tt.supported)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if tt.err == nil && !reflect.DeepEqual(numbers(got), tt.want) {
				t.Errorf("negotiated %v, want %v", numbers(got), tt.want)
			}
		})
	}
}

// TestOfferAnswer runs a whole call's SDP through the B2BUA: baresip calls
// baresip, and each side sees only the server.
func TestOfferAnswer(t *testing.T) {
	legA, legB := &Origin{SessionID: 1, Version: 1}, &Origin{SessionID: 2, Version: 1}
	offer := mustParse(t, load(t, "baresip_offer.sdp"))
	codecs, err := Negotiate(offer, nil)
	if err != nil {
		t.Fatal(err)
	}
	toB, err := Rewrite(offer, server, 30000, RewriteOptions{Origin: legB, Codecs: codecs})
	if err != nil {
		t.Fatal(err)
	}
	checkRewritten(t, offer, mustParse(t, toB), codecs, server, 30000)

	answer := mustParse(t, load(t, "baresip_answer.sdp"))
	agreed, err := Negotiate(answer, codecs)
	if err != nil {
		t.Fatal(err)
	}
	toA, err := Rewrite(answer, server, 30002, RewriteOptions{Origin: legA, Codecs: agreed, AnswerTo: offer})
	if err != nil {
		t.Fatal(err)
	}
	back := mustParse(t, toA)
	checkRewritten(t, answer, back, agreed, server, 30002)
	if got := numbers(back.Audio.PTs); !reflect.DeepEqual(got, []uint8{96, 101}) {
		t.Errorf("answer to A carries %v", got)
	}
	rtp, rtcp, pts := offer.Remote()
	if rtp != netip.MustParseAddrPort("127.0.0.1:13484") || rtcp != netip.MustParseAddrPort("127.0.0.1:13485") || len(pts) != 5 {
		t.Errorf("A's remote %v %v %v", rtp, rtcp, pts)
	}
	if legA.Version != 1 || legB.Version != 1 {
		t.Errorf("first SDP on a leg changed its version: %d %d", legA.Version, legB.Version)
	}
}

// TestHold puts a call on hold and back, as Asterisk does with re-INVITEs,
// and checks what the other leg sees and the o= version on it.
func TestHold(t *testing.T) {
	leg := &Origin{SessionID: 9, Version: 1}
	send := func(body []byte) (*Session, []byte) {
		t.Helper()
		s := mustParse(t, body)
		codecs, err := Negotiate(s, nil)
		if err != nil {
			t.Fatal(err)
		}
		out, err := Rewrite(s, server, 40000, RewriteOptions{Origin: leg, Codecs: codecs})
		if err != nil {
			t.Fatal(err)
		}
		checkRewritten(t, s, mustParse(t, out), codecs, server, 40000)
		return mustParse(t, out), out
	}
	steps := []struct {
		name    string
		body    []byte
		dir     Direction
		version uint64
	}{
		{"call", load(t, "asterisk_offer.sdp"), SendRecv, 1},
		{"hold", load(t, "asterisk_hold.sdp"), SendOnly, 2},
		{"session refresh while held", load(t, "asterisk_hold.sdp"), SendOnly, 2},
		{"inactive", bytes.Replace(load(t, "asterisk_hold.sdp"), []byte("a=sendonly"), []byte("a=inactive"), 1), Inactive, 3},
		{"unhold", load(t, "asterisk_offer.sdp"), SendRecv, 4},
		{"RFC 2543 hold", load(t, "oldhold_c0.sdp"), SendOnly, 5},
		{"unhold again", load(t, "asterisk_offer.sdp"), SendRecv, 6},
		{"unchanged", load(t, "asterisk_offer.sdp"), SendRecv, 6},
	}
	var last []byte
	for _, step := range steps {
		s, out := send(step.body)
		if s.Audio.Direction != step.dir || s.Version != step.version || leg.Version != step.version {
			t.Errorf("%s: other leg sees %v version %d (origin %d), want %v version %d", step.name, s.Audio.Direction, s.Version, leg.Version, step.dir, step.version)
		}
		if s.Audio.Addr != server {
			t.Errorf("%s: other leg sees address %v", step.name, s.Audio.Addr)
		}
		if step.name == "session refresh while held" && !bytes.Equal(out, last) {
			t.Errorf("refresh changed the SDP:\n%s\nwas\n%s", out, last)
		}
		last = out
	}

	// The held side's answer passes back as it is.
	answer := mustParse(t, load(t, "asterisk_chansip_answer.sdp"))
	out, err := Rewrite(answer, server, 40002, RewriteOptions{Origin: &Origin{}, AnswerTo: mustParse(t, load(t, "asterisk_hold.sdp"))})
	if err != nil {
		t.Fatal(err)
	}
	if back := mustParse(t, out); back.Audio.Direction != RecvOnly {
		t.Errorf("answer direction %v, want recvonly", back.Audio.Direction)
	}
}

func TestRewriteIPv6(t *testing.T) {
	s := mustParse(t, load(t, "baresip_ipv6.sdp"))
	for _, tt := range []struct {
		addr, want string
	}{
		{"2001:db8::5", "c=IN IP6 2001:db8::5\r\n"},
		{"::ffff:203.0.113.5", "c=IN IP4 203.0.113.5\r\n"},
		{"203.0.113.5", "c=IN IP4 203.0.113.5\r\n"},
	} {
		addr := netip.MustParseAddr(tt.addr)
		out, err := Rewrite(s, addr, 20000, RewriteOptions{Origin: &Origin{SessionID: 1}})
		if err != nil {
			t.Fatal(err)
		}
		origin := "o=kaopu 1 0 IN " + tt.want[len("c=IN "):]
		if !bytes.Contains(out, []byte(tt.want)) || !bytes.Contains(out, []byte(origin)) {
			t.Errorf("toward %s:\n%s", tt.addr, out)
		}
		checkRewritten(t, s, mustParse(t, out), s.Audio.PTs, addr.Unmap(), 20000)
	}
	// An IPv4 peer rewritten toward an IPv6 leg.
	out, err := Rewrite(mustParse(t, load(t, "sipp_uac.sdp")), netip.MustParseAddr("2001:db8::5"), 20000, RewriteOptions{Origin: &Origin{}})
	if err != nil || !bytes.Contains(out, []byte("o=kaopu 0 0 IN IP6 2001:db8::5\r\n")) {
		t.Errorf("%v\n%s", err, out)
	}
}

// TestAnswerTo answers an offer with audio and video from a callee that
// left the video out: the answer must still have both m= lines.
func TestAnswerTo(t *testing.T) {
	offer := mustParse(t, load(t, "linphone_offer.sdp"))
	answer := mustParse(t, load(t, "sipp_uas.sdp"))
	out, err := Rewrite(answer, server, 20000, RewriteOptions{Origin: &Origin{}, AnswerTo: offer})
	if err != nil {
		t.Fatal(err)
	}
	back := mustParse(t, out)
	if len(back.Media) != 2 || back.Media[1].Kind != "video" || back.Media[1].Port != 0 || back.Audio.Port != 20000 {
		t.Errorf("answer m= lines %+v", back.Media)
	}

	// An offer whose audio is disabled gets it disabled in the answer.
	disabled := mustParse(t, sdpWith("", "m=video 5000 RTP/AVP 96\r\nm=audio 0 RTP/AVPF 0\r\n"))
	out, err = Rewrite(answer, server, 20000, RewriteOptions{Origin: &Origin{}, AnswerTo: disabled})
	if err != nil {
		t.Fatal(err)
	}
	back = mustParse(t, out)
	if back.Audio.Index != 1 || back.Audio.Port != 0 || back.Audio.Proto != "RTP/AVPF" || back.Media[0].Port != 0 {
		t.Errorf("answer to disabled audio:\n%s", out)
	}

	// An answer to an SRTP-only offer cannot be written.
	_, err = Rewrite(answer, server, 20000, RewriteOptions{Origin: &Origin{}, AnswerTo: mustParse(t, load(t, "asterisk_srtp.sdp"))})
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("answer to RTP/SAVP: %v", err)
	}
}

func TestRewriteDisabledStream(t *testing.T) {
	s := mustParse(t, sdpWith("", "m=audio 0 RTP/AVP 0 8\r\nm=video 0 RTP/AVP 96\r\n"))
	out, err := Rewrite(s, server, 20000, RewriteOptions{Origin: &Origin{}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte("m=audio 0 RTP/AVP 0 8\r\n")) || !bytes.Contains(out, []byte("m=video 0 RTP/AVP 96\r\n")) {
		t.Errorf("disabled stream:\n%s", out)
	}
}

// TestRewriteStrips checks that nothing from a WebRTC offer but the codecs
// reaches the other leg.
func TestRewriteStrips(t *testing.T) {
	s := mustParse(t, load(t, "chrome_offer.sdp"))
	if !s.Audio.ICE || !s.Audio.RTCPMux || s.Audio.Setup != "actpass" || !strings.HasPrefix(s.Audio.Fingerprint, "sha-256 7B:8B") {
		t.Errorf("WebRTC attributes not reported: %+v", s.Audio)
	}
	if s.Audio.Effective() != SendRecv {
		t.Errorf("ICE placeholder 0.0.0.0 taken for hold")
	}
	out, err := Rewrite(s, server, 20000, RewriteOptions{Origin: &Origin{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"candidate", "ice-", "fingerprint", "setup", "rtcp", "ssrc", "msid", "extmap", "group", "mid", "SAVPF", "0.0.0.0"} {
		if bytes.Contains(out, []byte(bad)) {
			t.Errorf("rewritten SDP contains %q:\n%s", bad, out)
		}
	}
	checkRewritten(t, s, mustParse(t, out), s.Audio.PTs, server, 20000)

	s = mustParse(t, load(t, "baresip_srtp_besteffort.sdp"))
	out, err = Rewrite(s, server, 20000, RewriteOptions{Origin: &Origin{}})
	if err != nil || bytes.Contains(out, []byte("crypto")) || bytes.Contains(out, []byte("192.168.")) {
		t.Errorf("%v\n%s", err, out)
	}
}

func TestRewriteInvalid(t *testing.T) {
	s := mustParse(t, load(t, "sipp_uac.sdp"))
	o := &Origin{}
	tests := []struct {
		name string
		addr netip.Addr
		port int
		opts RewriteOptions
	}{
		{"no origin", server, 20000, RewriteOptions{}},
		{"no address", netip.Addr{}, 20000, RewriteOptions{Origin: o}},
		{"unspecified address", netip.IPv4Unspecified(), 20000, RewriteOptions{Origin: o}},
		{"multicast address", netip.MustParseAddr("239.0.0.1"), 20000, RewriteOptions{Origin: o}},
		{"zone", netip.MustParseAddr("fe80::1%eth0"), 20000, RewriteOptions{Origin: o}},
		{"port 0", server, 0, RewriteOptions{Origin: o}},
		{"port 65536", server, 65536, RewriteOptions{Origin: o}},
		{"no codecs", server, 20000, RewriteOptions{Origin: o, Codecs: []PT{}}},
		{"payload type 128", server, 20000, RewriteOptions{Origin: o, Codecs: []PT{{Number: 128, Name: "x", ClockRate: 8000}}}},
		{"payload type twice", server, 20000, RewriteOptions{Origin: o, Codecs: []PT{{Number: 0}, {Number: 0}}}},
		{"name with space", server, 20000, RewriteOptions{Origin: o, Codecs: []PT{{Number: 96, Name: "a b", ClockRate: 8000}}}},
		{"no clock rate", server, 20000, RewriteOptions{Origin: o, Codecs: []PT{{Number: 96, Name: "opus"}}}},
		{"fmtp with CRLF", server, 20000, RewriteOptions{Origin: o, Codecs: []PT{{Number: 101, Name: "telephone-event", ClockRate: 8000, Fmtp: "0-16\r\na=x"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Rewrite(s, tt.addr, tt.port, tt.opts)
			if !errors.Is(err, ErrInvalid) || out != nil {
				t.Errorf("Rewrite = %q, %v; want ErrInvalid", out, err)
			}
		})
	}
	if _, err := Rewrite(nil, server, 20000, RewriteOptions{Origin: o}); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil session: %v", err)
	}
	if o.used {
		t.Error("a failed Rewrite touched the origin")
	}
}

func TestNewOrigin(t *testing.T) {
	a, b := NewOrigin(), NewOrigin()
	if a.SessionID == b.SessionID || a.SessionID >= 1<<62 || a.Version != 1 {
		t.Errorf("NewOrigin: %+v %+v", a, b)
	}
	out, err := Rewrite(mustParse(t, load(t, "sipp_uac.sdp")), server, 20000, RewriteOptions{Origin: &Origin{Username: "bad name", SessionID: 5, Version: 3}})
	if err != nil || !bytes.Contains(out, []byte("o=kaopu 5 3 IN IP4 203.0.113.5\r\n")) {
		t.Errorf("%v\n%s", err, out)
	}
}

// TestRewriteGrowth backs FuzzParse's one allowance: a rewrite can be
// longer than its input (CRLF for LF, a=rtpmap for static types, our o=
// and c= lines), but by far less than 2 KiB, so an input up to
// MaxSize-2048 always rewrites.
func TestRewriteGrowth(t *testing.T) {
	var b strings.Builder
	b.WriteString("v=0\no=- 0 0 IN IP4 1.2.3.4\ns=\nc=IN IP4 1.2.3.4\nt=0 0\n")
	for i := 1; i < MaxMedia; i++ {
		b.WriteString("m=text 0 RTP/AVP 0\n")
	}
	b.WriteString("m=audio 1 RTP/AVP")
	var attrs strings.Builder
	n := 0
	for pt := 0; pt < 128 && n < MaxPayloadTypes; pt++ {
		if p := staticPT(uint8(pt)); p.Name != "" || pt >= 96 {
			b.WriteString(" " + strconv.Itoa(pt))
			if pt >= 96 {
				attrs.WriteString("a=rtpmap:" + strconv.Itoa(pt) + " x/1\n")
			}
			attrs.WriteString("a=fmtp:" + strconv.Itoa(pt) + " f\n")
			n++
		}
	}
	b.WriteString("\n" + attrs.String())
	// Pad the fmtp of the last payload type up to MaxSize-2048.
	body := strings.TrimSuffix(b.String(), "f\n")
	body += strings.Repeat("f", MaxSize-2048-len(body)-1) + "\n"
	s, err := Parse([]byte(body))
	if err != nil || len(s.Audio.PTs) != n || len(s.Media) != MaxMedia {
		t.Fatalf("Parse: %v", err)
	}
	out, err := Rewrite(s, netip.MustParseAddr("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"), 65534,
		RewriteOptions{Origin: &Origin{SessionID: 1<<62 - 1, Version: 1<<62 - 1}})
	if err != nil {
		t.Fatalf("input of %d bytes: %v", len(body), err)
	}
	t.Logf("input %d bytes, rewritten %d (+%d)", len(body), len(out), len(out)-len(body))
	if growth := len(out) - len(body); growth > 1024 {
		t.Errorf("rewrite grew by %d bytes", growth)
	}
}
