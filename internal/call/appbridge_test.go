package call

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/sdpx"
)

// endpointAnswer is what ivr.Answer gives a caller offering PCMU and
// telephone-event (recvonly toward a sendonly offer: the outbound offer
// must still be sendrecv).
const endpointAnswer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
	"m=audio 40000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=recvonly\r\n"

func TestAppOffer(t *testing.T) {
	pts, err := appPTs([]byte(endpointAnswer))
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 2 || pts[0].Number != 8 || pts[1].Number != 101 {
		t.Fatalf("endpoint's payload types %v, want PCMA 8 and telephone-event 101", pts)
	}
	offer, err := appOffer([]byte(endpointAnswer), netip.MustParseAddr("192.0.2.7"), 40100, pts)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sdpx.Parse(offer)
	if err != nil {
		t.Fatalf("offer %q: %v", offer, err)
	}
	rtp, _, _ := s.Remote()
	if rtp != netip.MustParseAddrPort("192.0.2.7:40100") {
		t.Errorf("offer's media at %v, want the relay port", rtp)
	}
	if s.Audio.Effective() != sdpx.SendRecv {
		t.Errorf("offer direction %v, want sendrecv", s.Audio.Effective())
	}
	if len(s.Audio.PTs) != 2 || s.Audio.PTs[0].Number != 8 || s.Audio.PTs[1].Name != "telephone-event" {
		t.Errorf("offer's codecs %v: the relay does not renumber, so the caller's must be offered as they are", s.Audio.PTs)
	}
}

func TestAppInviteProto(t *testing.T) {
	in := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "8800", Host: "kaopu.test"})
	in.AppendHeader(&sip.FromHeader{DisplayName: "Alice", Address: sip.Uri{Scheme: "sip", User: "alice", Host: "kaopu.test"},
		Params: sip.HeaderParams{{K: "tag", V: "abc"}}})
	in.AppendHeader(sip.NewHeader("Privacy", "id"))
	in.AppendHeader(sip.NewHeader("Session-Expires", "1800"))
	p := appInviteProto(in, []byte("v=0\r\n"))
	if f := p.From(); f == nil || f.DisplayName != "Alice" || f.Params.Has("tag") {
		t.Errorf("From %v: want the caller's name, without its dialog's tag", p.From())
	}
	if p.GetHeader("Privacy") == nil {
		t.Error("the caller's Privacy is lost")
	}
	if p.GetHeader("Session-Expires") != nil {
		t.Error("the caller's session timer must not go to the carrier: its dialog ends here")
	}
	if !strings.HasPrefix(string(p.Body()), "v=0") {
		t.Error("no offer")
	}
}
