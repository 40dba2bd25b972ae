package call

import (
	"errors"
	"strings"
	"testing"

	"github.com/kaopu/kaopu/internal/sdpx"
)

// carrierOffer is a carrier's re-INVITE offer toward our relay: PCMA and
// telephone-event at 198.51.100.9:30000, with direction dir ("" none).
func carrierOffer(version, dir string) []byte {
	s := "v=0\r\no=carrier 77 " + version + " IN IP4 198.51.100.9\r\ns=-\r\nc=IN IP4 198.51.100.9\r\nt=0 0\r\n" +
		"m=audio 30000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
	if dir != "" {
		s += "a=" + dir + "\r\n"
	}
	return []byte(s)
}

// TestAppSideReanswer: our side of an application call answers in-dialog
// offers with its own SDP: a session refresh gets it unchanged (same o=
// version, RFC 3264 §8), hold (sendonly) gets recvonly with the version
// bumped, the resume sendrecv again (bumped again); a codec the relay
// cannot carry is refused, and a re-INVITE without SDP gets our SDP as a
// sendrecv offer.
func TestAppSideReanswer(t *testing.T) {
	ours := strings.Replace(endpointAnswer, "a=recvonly", "a=sendrecv", 1)
	pts, _ := appPTs([]byte(ours))
	side, err := newAppSide([]byte(ours), pts)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		version uint64
		dir     sdpx.Direction
	}
	steps := []struct {
		name  string
		offer []byte
		want  want
	}{
		{"refresh", carrierOffer("1", ""), want{1, sdpx.SendRecv}},
		{"refresh again", carrierOffer("1", ""), want{1, sdpx.SendRecv}},
		{"hold", carrierOffer("2", "sendonly"), want{2, sdpx.RecvOnly}},
		{"still held", carrierOffer("2", "sendonly"), want{2, sdpx.RecvOnly}},
		{"resume", carrierOffer("3", "sendrecv"), want{3, sdpx.SendRecv}},
		{"no offer", nil, want{3, sdpx.SendRecv}},
	}
	for _, st := range steps {
		body, err := side.reanswer(st.offer)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		s, err := sdpx.Parse(body)
		if err != nil {
			t.Fatalf("%s: our answer %q: %v", st.name, body, err)
		}
		if s.SessionID != 1 || s.Version != st.want.version || s.Audio.Effective() != st.want.dir {
			t.Errorf("%s: o= %d %d, %v; want 1 %d, %v\n%s", st.name, s.SessionID, s.Version, s.Audio.Effective(),
				st.want.version, st.want.dir, body)
		}
		if rtp, _, _ := s.Remote(); rtp.String() != "127.0.0.1:40000" || s.Audio.PTs[0].Name != "PCMA" {
			t.Errorf("%s: answer at %v with %v, want our address and codec unchanged", st.name, rtp, s.Audio.PTs)
		}
	}
	pcmu := []byte(strings.ReplaceAll(strings.ReplaceAll(string(carrierOffer("4", "")), "RTP/AVP 8 101", "RTP/AVP 0"), "a=rtpmap:8 PCMA", "a=rtpmap:0 PCMU"))
	if _, err := side.reanswer(pcmu); !errors.Is(err, errAppOffer) {
		t.Errorf("an offer of PCMU alone to a PCMA relay: %v, want errAppOffer", err)
	}
}
