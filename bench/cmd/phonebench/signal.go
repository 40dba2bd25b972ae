package main

import (
	"math"

	"github.com/kaopu/kaopu/internal/ua"
)

// chirpMs is the length of one event: a Hann-windowed linear chirp from
// 500 Hz to 3 kHz, inside the band of every codec measured. Its
// autocorrelation has one sharp peak, so the lag where it lands is found
// to a sample or two even after a lossy codec.
const chirpMs = 10

// chirp returns one event at rate.
func chirp(rate int) []float64 {
	n := rate * chirpMs / 1000
	f0, f1 := 500.0, 3000.0
	d := float64(n) / float64(rate)
	out := make([]float64, n)
	for i := range out {
		t := float64(i) / float64(rate)
		phase := 2 * math.Pi * (f0*t + (f1-f0)*t*t/(2*d))
		w := 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(n-1))
		out[i] = w * math.Sin(phase)
	}
	return out
}

// eventOffsets are the events' offsets in a file of total length: the
// first at 1 s, then every 500 ms plus k*7 ms modulo 20 (so that they fall
// at different places within the 20 ms frames), none in the last 1.5 s.
func eventOffsets(totalMs int) []int {
	var out []int
	for k := 0; ; k++ {
		x := 1000 + 500*k + (7*k)%20
		if x+1500 > totalMs {
			return out
		}
		out = append(out, x)
	}
}

// eventSignal is totalMs of silence at rate with a chirp of amplitude amp
// at each offset (ms).
func eventSignal(rate, totalMs int, offsets []int, amp float64) []int16 {
	pcm := make([]int16, rate*totalMs/1000)
	c := chirp(rate)
	for _, x := range offsets {
		at := rate * x / 1000
		for i, v := range c {
			if at+i < len(pcm) {
				pcm[at+i] = int16(amp * v)
			}
		}
	}
	return pcm
}

// writeWAV writes pcm to a mono 16-bit WAV file at rate.
func writeWAV(path string, rate int, pcm []int16) error {
	s := &ua.WAVSink{Path: path}
	if err := s.Open(rate); err != nil {
		return err
	}
	if err := s.Write(pcm); err != nil {
		s.Close()
		return err
	}
	return s.Close()
}
