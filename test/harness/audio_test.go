package harness

import (
	"math"
	"math/rand"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/media/codec"
)

// The tone checks of the end-to-end tests rest on Goertzel: it must find a
// tone at its amplitude, ignore a different one, and tell a mix apart.
func TestGoertzel(t *testing.T) {
	const rate = 8000
	sine := func(freq, amp float64) func(i int) float64 {
		return func(i int) float64 { return amp * math.Sin(2*math.Pi*freq*float64(i)/rate) }
	}
	rnd := rand.New(rand.NewSource(1))
	for _, tc := range []struct {
		name   string
		signal []func(i int) float64
		n      int
		freq   float64
		want   float64 // amplitude
		tol    float64 // absolute
	}{
		{"440 Hz found", []func(int) float64{sine(440, 8000)}, 800, 440, 8000, 1},
		{"1000 Hz found", []func(int) float64{sine(1000, 8000)}, 800, 1000, 8000, 1},
		{"440 Hz is not 1000 Hz", []func(int) float64{sine(440, 8000)}, 800, 1000, 0, 1},
		{"1000 Hz is not 440 Hz", []func(int) float64{sine(1000, 8000)}, 800, 440, 0, 1},
		// 160 samples (one 20 ms packet) hold 8.8 periods of 440 Hz: some
		// leakage, still far below the tone.
		{"440 Hz in a short window, at 1000 Hz", []func(int) float64{sine(440, 8000)}, 160, 1000, 0, 400},
		{"mix: the 440 Hz part", []func(int) float64{sine(440, 3000), sine(1000, 6000)}, 800, 440, 3000, 1},
		{"mix: the 1000 Hz part", []func(int) float64{sine(440, 3000), sine(1000, 6000)}, 800, 1000, 6000, 1},
		{"silence", nil, 800, 440, 0, 1e-9},
		{"white noise spreads thin", []func(int) float64{func(int) float64 { return rnd.NormFloat64() * 3000 }}, 8000, 1000, 0, 150},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := make([]float64, tc.n)
			for i := range x {
				for _, f := range tc.signal {
					x[i] += f(i)
				}
			}
			if got := Goertzel(x, rate, tc.freq); math.Abs(got-tc.want) > tc.tol {
				t.Errorf("Goertzel(%v Hz) = %.2f, want %.2f ± %.2f", tc.freq, got, tc.want, tc.tol)
			}
		})
	}
}

func TestWAVRoundTrip(t *testing.T) {
	for _, rate := range []int{8000, 16000} {
		a, err := DecodeWAV(ToneWAV(1000, rate, 500*time.Millisecond, 10000))
		if err != nil {
			t.Fatal(err)
		}
		if a.Rate != rate || a.Duration() != 500*time.Millisecond {
			t.Fatalf("rate %d, duration %v; want %d, 500ms", a.Rate, a.Duration(), rate)
		}
		w := a.Windows(100 * time.Millisecond)
		if len(w) != 5 {
			t.Fatalf("%d windows of 100 ms in 500 ms", len(w))
		}
		for _, x := range w {
			if got := x.Tone(1000); math.Abs(got-10000) > 2 {
				t.Errorf("%d Hz: tone in a window %.1f, want 10000", rate, got)
			}
		}
	}
	for name, b := range map[string][]byte{
		"empty":     nil,
		"not riff":  []byte("RIFX0000WAVEfmt "),
		"8-bit":     func() []byte { b := ToneWAV(440, 8000, time.Millisecond, 1); b[34] = 8; return b }(),
		"no data":   ToneWAV(440, 8000, 0, 1)[:36],
		"truncated": ToneWAV(440, 8000, 10*time.Millisecond, 1)[:50],
	} {
		_, err := DecodeWAV(b)
		if name == "truncated" {
			// An unfinished file reads up to its end.
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

// TestUlaw: the pcap writer's mu-law matches the server's G.711 codec, so
// what sipp plays decodes to the tone written.
func TestUlaw(t *testing.T) {
	for s := -32768; s <= 32767; s += 7 {
		if got, want := ulaw(int16(s)), codec.EncodeUlaw(int16(s)); got != want {
			t.Fatalf("ulaw(%d) = %#x, want %#x", s, got, want)
		}
	}
}
