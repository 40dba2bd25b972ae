package codec

// G.722 at 64 kbit/s (ITU-T G.722 mode 1). The block names in comments are
// the standard's: the encoder runs the transmit QMF, then per sub-band the
// adaptive quantizer (QUANTL/QUANTH), the inverse quantizer (INVQAL/INVQAH),
// the scale factor adaptation (LOGSCL/SCALEL, LOGSCH/SCALEH) and the
// adaptive predictor (block 4: RECONS, PARREC, UPPOL2, UPPOL1, UPZERO,
// DELAYA, FILTEP, FILTEZ, PREDIC); the decoder runs the same predictor from
// the received codes and the receive QMF. Samples in and out are 16-bit
// linear PCM at 16 kHz; one code byte stands for two samples.

// qmf holds the even-indexed taps of the standard's symmetric 24-tap QMF
// (h0, h2, ... h22); the odd taps h1, h3, ... h23 are the same values in
// reverse order.
var qmf = [12]int32{3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11}

// Lower sub-band: decision levels of the 6-bit quantizer (Q6, scaled by
// the step size), the codes for each level by sign, the inverse quantizer
// outputs for the 6-bit and 4-bit codes (QM6, QM4), the 4-bit code's
// magnitude class (RIL -> IL4) and the log scale factor multipliers (WL).
var (
	lowLevels = [30]int32{0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650,
		714, 786, 858, 940, 1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919}
	lowCodeNeg = [31]uint8{0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17,
		16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4}
	lowCodePos = [31]uint8{0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45,
		44, 43, 42, 41, 40, 39, 38, 37, 36, 35, 34, 33, 32}
	lowInv6 = [64]int32{-136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512,
		-12280, -11192, -10232, -9360, -8576, -7856, -7192, -6576, -6000, -5456, -4944, -4464,
		-4008, -3576, -3168, -2776, -2400, -2032, -1688, -1360, -1040, -728, 24808, 21904,
		19008, 16704, 14984, 13512, 12280, 11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000,
		5456, 4944, 4464, 4008, 3576, 3168, 2776, 2400, 2032, 1688, 1360, 1040, 728, 432, 136,
		-432, -136}
	lowInv4 = [16]int32{0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968,
		6288, 4240, 2584, 1200, 0}
	lowClass = [16]uint8{0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0}
	lowLogW  = [8]int32{-60, -30, 58, 172, 334, 538, 1198, 3042}
)

// Higher sub-band: inverse quantizer outputs (QM2), magnitude class (RIH2)
// and log scale factor multipliers (WH).
var (
	highInv   = [4]int32{-7408, -1616, 7408, 1616}
	highClass = [4]uint8{2, 1, 2, 1}
	highLogW  = [3]int32{0, -214, 798}
)

// ilb is the antilog table of SCALEL/SCALEH: 2048 * 2^(i/32).
var ilb = [32]int32{2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599,
	2656, 2714, 2774, 2834, 2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597,
	3676, 3756, 3838, 3922, 4008}

func sat16(v int32) int32 { return max(-32768, min(32767, v)) }

// band is one sub-band's ADPCM state: the adaptive predictor and the
// quantizer's scale factor. Index 0 of the history arrays is the current
// sample, 1 the one before, and so on.
type band struct {
	s, sp, sz int32    // signal estimate; its pole and zero parts
	r, p      [3]int32 // reconstructed and partially reconstructed signal
	a         [3]int32 // pole predictor coefficients a1, a2 (index 0 unused)
	b         [7]int32 // zero predictor coefficients b1..b6 (index 0 unused)
	d         [7]int32 // quantized difference signal
	nb        int32    // log scale factor
	det       int32    // scale factor (quantizer step size)
}

// adapt is LOGSCL/LOGSCH (leak the log scale factor, add the multiplier,
// limit it) then SCALEL/SCALEH (antilog to the step size). shift is 8 for
// the lower band and 10 for the higher.
func (bd *band) adapt(w, limit, shift int32) {
	nb := (bd.nb*127)>>7 + w
	bd.nb = max(0, min(limit, nb))
	m := ilb[(bd.nb>>6)&31]
	if e := shift - bd.nb>>11; e < 0 {
		m <<= -e
	} else {
		m >>= e
	}
	bd.det = m << 2
}

func sign(v int32) int32 { return v >> 31 } // 0 or -1, as the standard's sg

// predict is block 4: update the pole and zero predictors with the new
// quantized difference dq and compute the next signal estimate.
func (bd *band) predict(dq int32) {
	bd.d[0] = dq
	bd.r[0] = sat16(bd.s + dq)  // RECONS
	bd.p[0] = sat16(bd.sz + dq) // PARREC

	// UPPOL2: second pole coefficient.
	s0, s1, s2 := sign(bd.p[0]), sign(bd.p[1]), sign(bd.p[2])
	f := sat16(bd.a[1] << 2)
	if s0 == s1 {
		f = -f
	}
	f = min(f, 32767)
	a2 := f >> 7
	if s0 == s2 {
		a2 += 128
	} else {
		a2 -= 128
	}
	a2 += (bd.a[2] * 32512) >> 15
	a2 = max(-12288, min(12288, a2))

	// UPPOL1: first pole coefficient, kept inside the stability triangle.
	a1 := (bd.a[1] * 32640) >> 15
	if s0 == s1 {
		a1 += 192
	} else {
		a1 -= 192
	}
	a1 = sat16(a1)
	lim := sat16(15360 - a2)
	a1 = max(-lim, min(lim, a1))

	// UPZERO: sign-sign update of the six zero coefficients.
	var step int32
	if dq != 0 {
		step = 128
	}
	var bNew [7]int32
	for i := 1; i <= 6; i++ {
		g := step
		if sign(bd.d[i]) != sign(dq) {
			g = -step
		}
		bNew[i] = sat16(g + (bd.b[i]*32640)>>15)
	}

	// DELAYA
	for i := 6; i > 0; i-- {
		bd.d[i] = bd.d[i-1]
		bd.b[i] = bNew[i]
	}
	bd.r[2], bd.r[1] = bd.r[1], bd.r[0]
	bd.p[2], bd.p[1] = bd.p[1], bd.p[0]
	bd.a[1], bd.a[2] = a1, a2

	// FILTEP, FILTEZ, PREDIC
	bd.sp = sat16((bd.a[1]*sat16(bd.r[1]+bd.r[1]))>>15 + (bd.a[2]*sat16(bd.r[2]+bd.r[2]))>>15)
	var sz int32
	for i := 1; i <= 6; i++ {
		sz += (bd.b[i] * sat16(bd.d[i]+bd.d[i])) >> 15
	}
	bd.sz = sat16(sz)
	bd.s = sat16(bd.sp + bd.sz)
}

// g722 is the state shared by encoder and decoder: both sub-bands and the
// QMF delay line (x[23] the newest).
type g722 struct {
	lo, hi band
	x      [24]int32
}

func newG722() g722 {
	var g g722
	g.lo.det, g.hi.det = 32, 8
	return g
}

// G722Encoder encodes 16 kHz PCM to G.722 at 64 kbit/s.
type G722Encoder struct{ g722 }

// NewG722Encoder returns an encoder in the standard's reset state.
func NewG722Encoder() *G722Encoder { return &G722Encoder{newG722()} }

// Encode appends one code byte per two samples of pcm to dst; an odd last
// sample is paired with a zero.
func (e *G722Encoder) Encode(dst []byte, pcm []int16) []byte {
	for i := 0; i < len(pcm); i += 2 {
		var second int16
		if i+1 < len(pcm) {
			second = pcm[i+1]
		}
		dst = append(dst, e.encodePair(int32(pcm[i]), int32(second)))
	}
	return dst
}

func (e *G722Encoder) encodePair(s0, s1 int32) byte {
	// Transmit QMF: two samples in, one lower and one higher sub-band
	// sample out.
	copy(e.x[:22], e.x[2:])
	e.x[22], e.x[23] = s0, s1
	var even, odd int32
	for i := range 12 {
		even += e.x[2*i] * qmf[i]
		odd += e.x[2*i+1] * qmf[11-i]
	}
	xl, xh := (odd+even)>>14, (odd-even)>>14

	// Lower sub-band: QUANTL, INVQAL (4-bit), LOGSCL, SCALEL, block 4.
	lo := &e.lo
	el := sat16(xl - lo.s)
	mag := el
	if el < 0 {
		mag = -(el + 1)
	}
	i := 1
	for ; i < len(lowLevels); i++ {
		if mag < (lowLevels[i]*lo.det)>>12 {
			break
		}
	}
	il := lowCodePos[i]
	if el < 0 {
		il = lowCodeNeg[i]
	}
	il4 := il >> 2
	dl := (lo.det * lowInv4[il4]) >> 15
	lo.adapt(lowLogW[lowClass[il4]], 18432, 8)
	lo.predict(dl)

	// Higher sub-band: QUANTH, INVQAH, LOGSCH, SCALEH, block 4.
	hi := &e.hi
	eh := sat16(xh - hi.s)
	mag = eh
	if eh < 0 {
		mag = -(eh + 1)
	}
	big := mag >= (564*hi.det)>>12
	var ih uint8
	switch {
	case eh < 0 && big:
		ih = 0
	case eh < 0:
		ih = 1
	case big:
		ih = 2
	default:
		ih = 3
	}
	dh := (hi.det * highInv[ih]) >> 15
	hi.adapt(highLogW[highClass[ih]], 22528, 10)
	hi.predict(dh)

	return ih<<6 | il
}

// G722Decoder decodes G.722 at 64 kbit/s to 16 kHz PCM.
type G722Decoder struct{ g722 }

// NewG722Decoder returns a decoder in the standard's reset state.
func NewG722Decoder() *G722Decoder { return &G722Decoder{newG722()} }

// Decode appends two samples per code byte of payload to dst.
func (d *G722Decoder) Decode(dst []int16, payload []byte) []int16 {
	for _, c := range payload {
		a, b := d.decodeByte(c)
		dst = append(dst, a, b)
	}
	return dst
}

func (d *G722Decoder) decodeByte(c byte) (int16, int16) {
	il, ih := c&0x3F, c>>6

	// Lower sub-band: the output uses the full 6-bit code (INVQBL), the
	// predictor the 4-bit one, as in the encoder.
	lo := &d.lo
	rl := lo.s + (lo.det*lowInv6[il])>>15
	rl = max(-16384, min(16383, rl))
	il4 := il >> 2
	dl := (lo.det * lowInv4[il4]) >> 15
	lo.adapt(lowLogW[lowClass[il4]], 18432, 8)
	lo.predict(dl)

	hi := &d.hi
	dh := (hi.det * highInv[ih]) >> 15
	rh := sat16(dh + hi.s)
	rh = max(-16384, min(16383, rh))
	hi.adapt(highLogW[highClass[ih]], 22528, 10)
	hi.predict(dh)

	// Receive QMF: one sample of each sub-band in, two samples out.
	copy(d.x[:22], d.x[2:])
	d.x[22], d.x[23] = rl+rh, rl-rh
	var first, second int32
	for i := range 12 {
		second += d.x[2*i] * qmf[i]
		first += d.x[2*i+1] * qmf[11-i]
	}
	return int16(sat16(first >> 11)), int16(sat16(second >> 11))
}
