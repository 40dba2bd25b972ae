package conference

// Mixer mixes frames of a fixed length: each participant gets the sum of
// every other participant's frame. It keeps one scratch buffer, so Mix
// allocates nothing; a Mixer is used by one goroutine at a time.
type Mixer struct {
	sum []int32
}

// NewMixer makes a mixer of frames of samples samples.
func NewMixer(samples int) *Mixer { return &Mixer{sum: make([]int32, samples)} }

// Mix writes to out[i] the sum of in[j] for every j != i, saturated to
// 16 bits. in and out have one frame per participant, each of the
// mixer's length; out[i] may be in[i].
func (m *Mixer) Mix(in, out [][]int16) {
	sum := m.sum
	clear(sum)
	for _, f := range in {
		f = f[:len(sum)]
		for k, v := range f {
			sum[k] += int32(v)
		}
	}
	for i, f := range in {
		o := out[i][:len(sum)]
		f = f[:len(sum)]
		for k := range o {
			o[k] = sat16(sum[k] - int32(f[k]))
		}
	}
}

// addSat adds src to dst sample by sample, saturating.
func addSat(dst, src []int16) {
	src = src[:min(len(src), len(dst))]
	for k, v := range src {
		dst[k] = sat16(int32(dst[k]) + int32(v))
	}
}

func sat16(v int32) int16 {
	switch {
	case v > 32767:
		return 32767
	case v < -32768:
		return -32768
	}
	return int16(v)
}
