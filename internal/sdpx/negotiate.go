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
// requires SRTP or DTLS-SRTP (RTP/SAVP, UDP/TLS/RTP/SAVPF: SDES keys or a
// WebRTC peer), which the relay does not terminate yet: the call layer
// answers 488 to both. An RTP/AVP stream that merely lists a=crypto
// ("best effort" SRTP) negotiates as plain RTP.
func Negotiate(s *Session, supported []PT) ([]PT, error) {
	st := &s.Audio
	if st.Secure() {
		// SRTP (RFC 4568 a=crypto, RFC 8842 a=fingerprint) is accepted
		// here once the media layer terminates it.
		return nil, fmt.Errorf("%w: %s needs SRTP", ErrUnsupported, st.Proto)
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
