package sdpx

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// sdpWith builds a minimal SDP around the given m= section(s).
func sdpWith(session, media string) []byte {
	return []byte("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n" + session + media)
}

func TestParseRejects(t *testing.T) {
	audio := "m=audio 4000 RTP/AVP 0\r\n"
	many := func(n int, line string) string { return strings.Repeat(line, n) }
	pts := make([]string, 65)
	for i := range pts {
		pts[i] = fmt.Sprint(i)
	}
	tests := []struct {
		name string
		body []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"blank", []byte("\r\n  \r\n"), ErrMalformed},
		{"not SDP", []byte("hello world"), ErrMalformed},
		{"no v=", []byte("o=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n"), ErrMalformed},
		{"over 16 KiB", sdpWith("a="+strings.Repeat("x", MaxSize)+"\r\n", audio), ErrTooLarge},
		{"17 media sections", sdpWith("", many(17, "m=video 0 RTP/AVP 96\r\n")), ErrTooLarge},
		{"17 media sections, LF", sdpWith("", many(17, "m=video 0 RTP/AVP 96\n")), ErrTooLarge},
		{"513 attributes", sdpWith("", audio+many(MaxAttributes+1, "a=x\r\n")), ErrTooLarge},
		{"513 attributes, LF", sdpWith("", audio+many(MaxAttributes+1, "a=x\n")), ErrTooLarge},
		{"65 payload types", sdpWith("", "m=audio 4000 RTP/AVP "+strings.Join(pts, " ")+"\r\n"), ErrTooLarge},
		{"65 formats on video", sdpWith("", audio+"m=video 0 RTP/AVP "+strings.Join(pts, " ")+"\r\n"), ErrTooLarge},
		{"no media", sdpWith("", ""), ErrNoAudio},
		{"video only", load(t, "video_only.sdp"), ErrNoAudio},
		{"audio not RTP", sdpWith("", "m=audio 4000 TCP/MSRP *\r\n"), ErrNoAudio},
		{"T.38 re-INVITE", load(t, "t38_reinvite.sdp"), ErrMalformed},
		{"no c=", []byte("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n" + audio), ErrMalformed},
		{"c= host name", []byte("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 pbx.example.com\r\nt=0 0\r\n" + audio), ErrUnsupported},
		{"c= multicast", []byte("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 224.2.1.1/127\r\nt=0 0\r\n" + audio), ErrUnsupported},
		{"c= multicast no TTL", sdpWith("", "m=audio 4000 RTP/AVP 0\r\nc=IN IP4 239.1.1.1\r\n"), ErrUnsupported},
		{"c= IP4 with IPv6", sdpWith("", "m=audio 4000 RTP/AVP 0\r\nc=IN IP4 2001:db8::1\r\n"), ErrMalformed},
		{"c= IP6 with IPv4", sdpWith("", "m=audio 4000 RTP/AVP 0\r\nc=IN IP6 192.0.2.1\r\n"), ErrMalformed},
		{"c= zone", sdpWith("", "m=audio 4000 RTP/AVP 0\r\nc=IN IP6 fe80::1%eth0\r\n"), ErrMalformed},
		{"port out of range", sdpWith("", "m=audio 70000 RTP/AVP 0\r\n"), ErrMalformed},
		{"port range", sdpWith("", "m=audio 4000/2 RTP/AVP 0\r\n"), ErrUnsupported},
		{"no formats", sdpWith("", "m=audio 4000 RTP/AVP\r\n"), ErrMalformed},
		{"payload type 128", sdpWith("", "m=audio 4000 RTP/AVP 0 128\r\n"), ErrMalformed},
		{"payload type not a number", sdpWith("", "m=audio 4000 RTP/AVP PCMU\r\n"), ErrMalformed},
		{"payload type twice", sdpWith("", "m=audio 4000 RTP/AVP 0 8 0\r\n"), ErrMalformed},
		{"rtpmap without rate", sdpWith("", "m=audio 4000 RTP/AVP 96\r\na=rtpmap:96 opus\r\n"), ErrMalformed},
		{"rtpmap rate 0", sdpWith("", "m=audio 4000 RTP/AVP 96\r\na=rtpmap:96 opus/0\r\n"), ErrMalformed},
		{"rtpmap bad name", sdpWith("", "m=audio 4000 RTP/AVP 96\r\na=rtpmap:96 op\"us/48000\r\n"), ErrMalformed},
		{"rtpmap bad channels", sdpWith("", "m=audio 4000 RTP/AVP 96\r\na=rtpmap:96 opus/48000/two\r\n"), ErrMalformed},
		{"rtpmap number", sdpWith("", "m=audio 4000 RTP/AVP 96\r\na=rtpmap:x opus/48000\r\n"), ErrMalformed},
		{"fmtp number", sdpWith("", "m=audio 4000 RTP/AVP 101\r\na=fmtp:300 0-16\r\n"), ErrMalformed},
		{"fmtp control character", sdpWith("", "m=audio 4000 RTP/AVP 101\r\na=fmtp:101 0-16\x00x\r\n"), ErrMalformed},
		{"bad format token", sdpWith("", "m=audio 4000 RTP/AVP 0\r\nm=video 0 RTP/AVP 9\x01\r\n"), ErrMalformed},
		{"unknown media", sdpWith("", "m=foo 4000 RTP/AVP 0\r\n"), ErrMalformed},
		{"v=1", []byte("v=1\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n"), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.body)
			if !errors.Is(err, tt.want) || s != nil {
				t.Fatalf("Parse = %+v, %v; want %v", s, err, tt.want)
			}
			if !strings.Contains(err.Error(), ":") && err != ErrNoAudio {
				t.Errorf("error %q does not say why", err)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name  string
		body  []byte
		check func(t *testing.T, s *Session)
	}{
		{"no final line end", []byte("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly"),
			func(t *testing.T, s *Session) {
				if s.Audio.Direction != SendOnly {
					t.Errorf("direction %v", s.Audio.Direction)
				}
			}},
		{"512 attributes", sdpWith("", "m=audio 4000 RTP/AVP 0\r\n"+strings.Repeat("a=x\r\n", MaxAttributes)),
			func(t *testing.T, s *Session) {}},
		{"exactly 16 KiB and 16 sections", func() []byte {
			b := sdpWith("", "m=audio 4000 RTP/AVP 0\r\n"+strings.Repeat("m=video 0 RTP/AVP 96\r\n", 15))
			pad := MaxSize - len(b) - len("a=x:\r\n")
			return append(b, "a=x:"+strings.Repeat("y", pad)+"\r\n"...)
		}(), func(t *testing.T, s *Session) {
			if len(s.Media) != MaxMedia {
				t.Errorf("%d media", len(s.Media))
			}
		}},
		{"port 0 is a disabled stream", sdpWith("", "m=audio 0 RTP/AVP 0\r\n"),
			func(t *testing.T, s *Session) {
				rtp, rtcp, pts := s.Remote()
				if !s.Audio.Disabled() || rtp.IsValid() || rtcp.IsValid() || len(pts) != 1 {
					t.Errorf("disabled stream: %v %v %v", rtp, rtcp, pts)
				}
			}},
		{"media c= over session c=", sdpWith("", "m=audio 4000 RTP/AVP 0\r\nc=IN IP4 198.51.100.9\r\n"),
			func(t *testing.T, s *Session) {
				if s.Audio.Addr != netip.MustParseAddr("198.51.100.9") {
					t.Errorf("addr %v", s.Audio.Addr)
				}
			}},
		{"session direction, media overrides", sdpWith("a=inactive\r\n", "m=audio 4000 RTP/AVP 0\r\nm=audio 5000 RTP/AVP 0\r\na=recvonly\r\n"),
			func(t *testing.T, s *Session) {
				if s.Audio.Direction != Inactive || s.Audio.Index != 0 || len(s.Media) != 2 {
					t.Errorf("%+v", s.Audio)
				}
			}},
		{"media direction over session direction", sdpWith("a=inactive\r\n", "m=audio 4000 RTP/AVP 0\r\na=sendonly\r\n"),
			func(t *testing.T, s *Session) {
				if s.Audio.Direction != SendOnly {
					t.Errorf("%v", s.Audio.Direction)
				}
			}},
		{"video first, audio second", sdpWith("", "m=video 5002 RTP/AVP 96\r\nm=audio 4000 RTP/AVP 8\r\n"),
			func(t *testing.T, s *Session) {
				if s.Audio.Index != 1 || s.Audio.Port != 4000 || s.Media[0].Kind != "video" {
					t.Errorf("%+v", s)
				}
			}},
		{"static types without rtpmap, names canonical, G.722 clock", sdpWith("", "m=audio 4000 RTP/AVP 0 8 9 18 96 97 2\r\na=rtpmap:96 OPUS/48000/2\r\na=rtpmap:9 g722/16000\r\na=fmtp:97  mode=30 \r\n"),
			func(t *testing.T, s *Session) {
				want := []PT{
					{0, "PCMU", 8000, 1, ""}, {8, "PCMA", 8000, 1, ""}, {9, "G722", 8000, 1, ""},
					{18, "G729", 8000, 1, ""}, {96, "opus", 48000, 2, ""}, {97, "", 0, 0, "mode=30"},
					{2, "", 0, 0, ""},
				}
				if !reflect.DeepEqual(s.Audio.PTs, want) {
					t.Errorf("PTs\n%+v\nwant\n%+v", s.Audio.PTs, want)
				}
			}},
		{"rtpmap and fmtp for absent types, repeats", sdpWith("", "m=audio 4000 RTP/AVP 101\r\na=rtpmap:102 foo/8000\r\na=fmtp:102 x\r\na=rtpmap:101 telephone-event/8000\r\na=rtpmap:101 other/16000\r\na=fmtp:101 0-16\r\na=fmtp:101 0-15\r\n"),
			func(t *testing.T, s *Session) {
				if want := []PT{{101, "telephone-event", 8000, 1, "0-16"}}; !reflect.DeepEqual(s.Audio.PTs, want) {
					t.Errorf("%+v", s.Audio.PTs)
				}
			}},
		{"rtcp with address, ptime, broken optional attributes ignored", sdpWith("", "m=audio 4000 RTP/AVP 0\r\na=rtcp:4009 IN IP4 198.51.100.3\r\na=ptime:x\r\na=maxptime:40\r\na=rtcp-mux\r\n"),
			func(t *testing.T, s *Session) {
				st := s.Audio
				if st.RTCP != netip.MustParseAddrPort("198.51.100.3:4009") || st.Ptime != 0 || st.MaxPtime != 40 || !st.RTCPMux {
					t.Errorf("%+v", st)
				}
				if _, rtcp, _ := s.Remote(); rtcp != st.RTCP {
					t.Errorf("Remote RTCP %v", rtcp)
				}
			}},
		{"broken a=rtcp falls back to port + 1", sdpWith("", "m=audio 4000 RTP/AVP 0\r\na=rtcp:0\r\n"),
			func(t *testing.T, s *Session) {
				if _, rtcp, _ := s.Remote(); rtcp != netip.MustParseAddrPort("192.0.2.1:4001") {
					t.Errorf("Remote RTCP %v", rtcp)
				}
			}},
		{"IPv4-mapped IPv6 is unmapped", sdpWith("", "m=audio 4000 RTP/AVP 0\r\nc=IN IP6 ::ffff:192.0.2.44\r\n"),
			func(t *testing.T, s *Session) {
				if s.Audio.Addr != netip.MustParseAddr("192.0.2.44") {
					t.Errorf("addr %v", s.Audio.Addr)
				}
			}},
		{"IPv6 hold address", sdpWith("", "m=audio 4000 RTP/AVP 0\r\nc=IN IP6 ::\r\n"),
			func(t *testing.T, s *Session) {
				if s.Audio.Effective() != SendOnly {
					t.Errorf("effective %v", s.Audio.Effective())
				}
			}},
		{"hold recvonly becomes inactive", sdpWith("", "m=audio 4000 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\na=recvonly\r\n"),
			func(t *testing.T, s *Session) {
				if s.Audio.Effective() != Inactive {
					t.Errorf("effective %v", s.Audio.Effective())
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.check(t, s)
		})
	}
}

func TestDirection(t *testing.T) {
	for _, d := range []Direction{SendRecv, SendOnly, RecvOnly, Inactive} {
		back, ok := directionOf(d.String())
		if !ok || back != d {
			t.Errorf("%v does not round trip", d)
		}
	}
	if !SendRecv.Sends() || !SendRecv.Receives() || SendOnly.Receives() || RecvOnly.Sends() || Inactive.Sends() || Inactive.Receives() {
		t.Error("Sends/Receives wrong")
	}
}
