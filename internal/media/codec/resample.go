package codec

import "math"

// Resampler converts a stream of mono samples from one rate to another by
// the rational factor up/down (in lowest terms), with a windowed-sinc
// low-pass filter split into up polyphase branches: output sample n is the
// filtered input at time n*down/up input samples. Process may be called
// with any number of samples at a time; the filter's history carries over.
type Resampler struct {
	up, down int
	taps     int         // filter taps per phase
	phases   [][]float64 // [phase][tap], taps applied newest-first
	hist     []float64   // the last taps-1 input samples, then new input
	pos      int64       // next output's position, in 1/up input samples, relative to hist[taps-1]
}

// resampleTaps is the filter length per phase when upsampling; downsampling
// by a factor f takes f times as many, so that the transition band stays
// about 1.8 kHz wide at the output rate's scale whatever the input rate.
const resampleTaps = 24

// NewResampler returns a resampler from rate from to rate to (Hz).
func NewResampler(from, to int) *Resampler {
	g := gcd(from, to)
	up, down := to/g, from/g
	r := &Resampler{up: up, down: down, taps: resampleTaps * ((down + up - 1) / up)}
	if up == 1 && down == 1 {
		return r
	}
	// Cut off at the lower of the two Nyquist frequencies, a little below
	// it, in units of the upsampled rate.
	cutoff := 0.45 / float64(max(up, down))
	n := r.taps * up
	proto := make([]float64, n)
	center := float64(n-1) / 2
	for i := range proto {
		t := float64(i) - center
		sinc := 2 * cutoff
		if t != 0 {
			sinc = math.Sin(2*math.Pi*cutoff*t) / (math.Pi * t)
		}
		// Blackman window.
		w := 0.42 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(n-1)) + 0.08*math.Cos(4*math.Pi*float64(i)/float64(n-1))
		proto[i] = sinc * w * float64(up) // gain up: upsampling inserts zeros
	}
	r.phases = make([][]float64, up)
	for p := range up {
		ph := make([]float64, r.taps)
		for k := range r.taps {
			ph[k] = proto[k*up+p]
		}
		r.phases[p] = ph
	}
	r.hist = make([]float64, r.taps-1)
	return r
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Ratio returns the conversion factor as up/down.
func (r *Resampler) Ratio() (up, down int) { return r.up, r.down }

// Process appends to dst the output for in and returns it.
func (r *Resampler) Process(dst []int16, in []int16) []int16 {
	if r.up == 1 && r.down == 1 {
		return append(dst, in...)
	}
	for _, s := range in {
		r.hist = append(r.hist, float64(s))
	}
	// Output n uses input samples at positions floor(pos/up) and the
	// taps-1 before it; position 0 is hist[taps-1].
	base := int64(r.taps - 1)
	for {
		idx := r.pos / int64(r.up)
		if base+idx >= int64(len(r.hist)) {
			break
		}
		ph := r.phases[r.pos%int64(r.up)]
		var acc float64
		newest := base + idx
		for k, c := range ph {
			acc += c * r.hist[newest-int64(k)]
		}
		dst = append(dst, int16(max(-32768, min(32767, math.Round(acc)))))
		r.pos += int64(r.down)
	}
	// Keep the last taps-1 samples before the next output position.
	consumed := r.pos / int64(r.up)
	keepFrom := consumed // the oldest sample the next output needs
	if keepFrom > 0 {
		n := copy(r.hist, r.hist[keepFrom:])
		r.hist = r.hist[:n]
		r.pos -= keepFrom * int64(r.up)
	}
	return dst
}
