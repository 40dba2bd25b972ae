package sdpx

import (
	"fmt"
	"strings"
)

// DefaultCodecs returns the codecs the server relays, in order of
// preference: G.711 µ-law and A-law, G.722, Opus, and RFC 4733
// telephone-event at the G.711/G.722 and Opus clock rates. The numbers are
// the ones the server uses when it writes an offer of its own; Negotiate
// matches by name, clock rate and channels, not by number.
func DefaultCodecs() []PT {
	return []PT{
		{Number: 0, Name: "PCMU", ClockRate: 8000, Channels: 1},
		{Number: 8, Name: "PCMA", ClockRate: 8000, Channels: 1},
		{Number: 9, Name: "G722", ClockRate: 8000, Channels: 1},
		{Number: 111, Name: "opus", ClockRate: 48000, Channels: 2},
		{Number: 101, Name: "telephone-event", ClockRate: 8000, Channels: 1, Fmtp: "0-16"},
		{Number: 110, Name: "telephone-event", ClockRate: 48000, Channels: 1, Fmtp: "0-16"},
	}
}

// Negotiate returns the payload types of s's audio stream that are in
// supported (DefaultCodecs when nil), keeping s's order, numbers and fmtp:
// the relay forwards packets untouched, so the numbers the peer chose stay.
// Codecs match on name (case-insensitive), clock rate and channels.
// telephone-event is kept when offered at a supported rate, but is never a
// codec on its own. RFC 4733 §2.1 wants events on the audio's clock, yet
// peers pair opus with telephone-event/8000 (baresip does): the relay
// forwards events untouched, so any supported rate is kept.
//
// Use it on an offer with the server's supported list, then on the answer
// with what the offer negotiated. It fails with ErrNoCommonCodec when no
// audio codec is left, and with ErrUnsupported when the stream's transport
// needs DTLS-SRTP (UDP/TLS/RTP/SAVPF, a=fingerprint: a WebRTC peer), which
// the relay does not terminate yet, or is RTP/SAVP without any a=crypto:
// the call layer answers 488 to both. Whether an a=crypto line is usable
// is the caller's question (Stream.SelectCrypto): an RTP/SAVP stream
// without a usable one must be refused there too, while an RTP/AVP stream
// that merely lists a=crypto ("best effort" SRTP) may fall back to plain
// RTP.
func Negotiate(s *Session, supported []PT) ([]PT, error) {
	st := &s.Audio
	if st.Secure() && (strings.Contains(st.Proto, "TLS") || st.Fingerprint != "" || len(st.Crypto) == 0) {
		// DTLS-SRTP (RFC 8842 a=fingerprint) is for the WebRTC work.
		return nil, fmt.Errorf("%w: %s needs DTLS-SRTP or SDES keys", ErrUnsupported, st.Proto)
	}
	if supported == nil {
		supported = DefaultCodecs()
	}
	out := make([]PT, 0, len(st.PTs))
	audio := false
	for _, p := range st.PTs {
		if contains(supported, p) {
			out = append(out, p)
			audio = audio || !isEvent(p)
		}
	}
	if !audio {
		return nil, fmt.Errorf("%w: offered %s", ErrNoCommonCodec, describe(st.PTs))
	}
	return out, nil
}

func isEvent(p PT) bool { return strings.EqualFold(p.Name, "telephone-event") }

func contains(list []PT, p PT) bool {
	if p.Name == "" {
		return false
	}
	for _, q := range list {
		if strings.EqualFold(p.Name, q.Name) && p.ClockRate == q.ClockRate && channels(p) == channels(q) {
			return true
		}
	}
	return false
}

func channels(p PT) uint8 { return max(p.Channels, 1) }

func describe(pts []PT) string {
	var b strings.Builder
	for i, p := range pts {
		if i > 0 {
			b.WriteString(", ")
		}
		if p.Name == "" {
			fmt.Fprintf(&b, "%d", p.Number)
			continue
		}
		b.WriteString(p.String())
	}
	return b.String()
}
