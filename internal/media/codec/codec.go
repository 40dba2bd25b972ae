package codec

import "strings"

// Encoder compresses linear PCM at the codec's sample rate into one RTP
// payload, appended to dst.
type Encoder interface {
	Encode(dst []byte, pcm []int16) []byte
}

// Decoder expands one RTP payload into linear PCM at the codec's sample
// rate, appended to dst. Any payload is accepted.
type Decoder interface {
	Decode(dst []int16, payload []byte) []int16
}

// Info describes a codec as SDP names it and as the audio path needs it.
type Info struct {
	// Name is the SDP encoding name (a=rtpmap), e.g. "PCMU".
	Name string
	// PayloadType is the static RTP payload type (RFC 3551 table 4) or,
	// for a codec with a dynamic one (96-127), the number this side
	// offers; an answer uses the offer's number.
	PayloadType uint8
	// ClockRate is the RTP timestamp clock, as written in SDP.
	ClockRate int
	// Channels is the channel count SDP names after the clock rate
	// (a=rtpmap:111 opus/48000/2); 0 or 1 is mono and is not written.
	// The PCM the codec takes and gives is mono whatever it says.
	Channels int
	// Fmtp is the format parameters this side sends in a=fmtp, if any.
	Fmtp string
	// SampleRate is the rate of the PCM the codec takes and gives; it
	// differs from ClockRate for G.722 (RFC 3551 §4.5.2).
	SampleRate int
	// NewEncoder and NewDecoder make the state of one direction.
	NewEncoder func() Encoder
	NewDecoder func() Decoder
}

// SamplesPer returns the number of PCM samples in d milliseconds.
func (i Info) SamplesPer(ms int) int { return i.SampleRate * ms / 1000 }

// TimestampsPer returns the RTP timestamp increment for ms milliseconds.
func (i Info) TimestampsPer(ms int) uint32 { return uint32(i.ClockRate * ms / 1000) }

// PCMU, PCMA and G722 are the codecs this package implements in pure Go;
// Opus is added when the package is built with the opus tag.
var (
	PCMU = Info{Name: "PCMU", PayloadType: 0, ClockRate: 8000, SampleRate: 8000,
		NewEncoder: func() Encoder { return g711{enc: EncodeUlaw, dec: DecodeUlaw} },
		NewDecoder: func() Decoder { return g711{enc: EncodeUlaw, dec: DecodeUlaw} }}
	PCMA = Info{Name: "PCMA", PayloadType: 8, ClockRate: 8000, SampleRate: 8000,
		NewEncoder: func() Encoder { return g711{enc: EncodeAlaw, dec: DecodeAlaw} },
		NewDecoder: func() Decoder { return g711{enc: EncodeAlaw, dec: DecodeAlaw} }}
	G722 = Info{Name: "G722", PayloadType: 9, ClockRate: 8000, SampleRate: 16000,
		NewEncoder: func() Encoder { return NewG722Encoder() },
		NewDecoder: func() Decoder { return NewG722Decoder() }}
)

// All returns the implemented codecs in the default order of preference:
// the pure-Go ones, then those of the build's tags (Opus with opus).
func All() []Info { return append([]Info{PCMU, PCMA, G722}, tagged()...) }

// Lookup finds a codec by SDP encoding name (case-insensitive).
func Lookup(name string) (Info, bool) {
	for _, c := range All() {
		if strings.EqualFold(c.Name, name) {
			return c, true
		}
	}
	return Info{}, false
}
