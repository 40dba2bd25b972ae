package codec

// G.711 companding (ITU-T G.711 tables 1 and 2). Both laws split the
// magnitude into 8 segments (chords) whose step size doubles from one to the
// next, with 16 steps each: a code is sign, 3 segment bits and 4 step bits.
// µ-law's segments start at multiples of its bias (33 in 14-bit units, 132
// in 16-bit ones); A-law's first two segments share one step size. Finally
// µ-law inverts every bit and A-law inverts the even bits (0x55), as the
// standard specifies for transmission.

const (
	ulawBias = 0x84 // 33 in 14-bit units, shifted to 16-bit samples
	ulawClip = 32635
)

// EncodeUlaw compands one 16-bit sample to a µ-law byte.
func EncodeUlaw(s int16) byte {
	v := int(s)
	sign := byte(0)
	if v < 0 {
		v, sign = -v, 0x80
	}
	v = min(v, ulawClip) + ulawBias
	seg := byte(0)
	for t := v >> 8; t > 0 && seg < 7; t >>= 1 {
		seg++
	}
	step := byte(v>>(seg+3)) & 0x0F
	return ^(sign | seg<<4 | step)
}

// DecodeUlaw expands a µ-law byte to a 16-bit sample.
func DecodeUlaw(b byte) int16 {
	b = ^b
	seg := (b >> 4) & 7
	v := ((int(b&0x0F) << 3) + ulawBias) << seg
	v -= ulawBias
	if b&0x80 != 0 {
		return int16(-v)
	}
	return int16(v)
}

// EncodeAlaw compands one 16-bit sample to an A-law byte.
func EncodeAlaw(s int16) byte {
	v := int(s)
	mask := byte(0xD5) // positive: sign bit set, then the even-bit inversion
	if v < 0 {
		v, mask = -v-1, 0x55
	}
	// Segment 0 covers 0..255 in 16-bit units, each next one twice as much;
	// v is at most 32767, so seg is at most 7.
	seg := byte(0)
	for t := v >> 8; t > 0; t >>= 1 {
		seg++
	}
	shift := seg + 3
	if seg == 0 {
		shift = 4
	}
	return (seg<<4 | byte(v>>shift)&0x0F) ^ mask
}

// DecodeAlaw expands an A-law byte to a 16-bit sample.
func DecodeAlaw(b byte) int16 {
	b ^= 0x55
	seg := (b >> 4) & 7
	// The reconstruction level is the middle of the step.
	v := int(b&0x0F)<<4 + 8
	if seg > 0 {
		v = (v + 0x100) << (seg - 1)
	}
	if b&0x80 != 0 {
		return int16(v)
	}
	return int16(-v)
}

// g711 is the Encoder and Decoder of both laws: stateless, one byte per
// sample.
type g711 struct {
	enc func(int16) byte
	dec func(byte) int16
}

func (g g711) Encode(dst []byte, pcm []int16) []byte {
	for _, s := range pcm {
		dst = append(dst, g.enc(s))
	}
	return dst
}

func (g g711) Decode(dst []int16, payload []byte) []int16 {
	for _, b := range payload {
		dst = append(dst, g.dec(b))
	}
	return dst
}
