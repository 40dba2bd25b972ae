package sdpx

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParse feeds Parse arbitrary bodies. It must never panic; it must
// fail only with one of the sentinels; and whatever it accepts must
// negotiate or fail cleanly, rewrite, and parse again to the same stream.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.sdp"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(crlf(b))
	}
	f.Add(sdpWith("", "m=audio 4000 RTP/AVP 0 96\r\nc=IN IP6 ::\r\na=rtpmap:96 x/1/2\r\na=fmtp:96 a\tb\r\na=rtcp:1 IN IP4 1.2.3.4\r\n"))
	f.Add(sdpWith("a=sendonly\r\n", "m=video 1 RTP/AVP 96\r\nm=audio 0 RTP/SAVPF 0\r\n"))

	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := Parse(body)
		if err != nil {
			if s != nil {
				t.Fatal("Parse returned a session and an error")
			}
			if !isSentinel(err, ErrTooLarge, ErrMalformed, ErrNoAudio, ErrUnsupported) {
				t.Fatalf("Parse error %v wraps no sentinel", err)
			}
			return
		}
		s.Remote()
		codecs, err := Negotiate(s, nil)
		if err != nil {
			if !isSentinel(err, ErrNoCommonCodec, ErrUnsupported) {
				t.Fatalf("Negotiate error %v wraps no sentinel", err)
			}
			codecs = s.Audio.PTs
		}
		origin := &Origin{SessionID: 1, Version: 1}
		out, err := Rewrite(s, server, 30000, RewriteOptions{Origin: origin, Codecs: codecs})
		if err != nil {
			// A rewrite may outgrow MaxSize only when the input was near it:
			// CRLF line ends and a=rtpmap for static types add at most a few
			// hundred bytes.
			if errors.Is(err, ErrTooLarge) && len(body) > MaxSize-2048 {
				return
			}
			t.Fatalf("Rewrite of an accepted session: %v\n%q", err, body)
		}
		back, err := Parse(out)
		if err != nil {
			t.Fatalf("rewritten SDP does not parse: %v\n%s\nfrom\n%q", err, out, body)
		}
		checkRewritten(t, s, back, codecs, server, 30000)
		again, err := Rewrite(back, server, 30000, RewriteOptions{Origin: origin})
		if err != nil || !reflect.DeepEqual(again, out) || origin.Version != 1 {
			t.Fatalf("rewrite is not stable (version %d, %v):\n%s\nthen\n%s", origin.Version, err, out, again)
		}
	})
}

func isSentinel(err error, sentinels ...error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// BenchmarkParseRewrite is the per-offer cost in the B2BUA: parse a
// Linphone offer (audio, video, ICE), negotiate, and rewrite it.
func BenchmarkParseRewrite(b *testing.B) {
	body := load(b, "linphone_offer.sdp")
	origin := NewOrigin()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		s, err := Parse(body)
		if err != nil {
			b.Fatal(err)
		}
		codecs, err := Negotiate(s, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Rewrite(s, server, 20000, RewriteOptions{Origin: origin, Codecs: codecs}); err != nil {
			b.Fatal(err)
		}
	}
}
