package codec

import (
	"math"
	"testing"
)

// tone is n samples of a sine at freq Hz and amplitude amp, sampled at rate.
func tone(freq float64, rate, n int, amp float64) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(math.Round(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate))))
	}
	return out
}

// snr is the signal-to-noise ratio in dB of got against want delayed by the
// best delay in minDelay..maxDelay samples, over the samples after skip.
func snr(want, got []int16, minDelay, maxDelay, skip int) (db float64, delay int) {
	best := math.Inf(-1)
	for d := minDelay; d <= maxDelay; d++ {
		var sig, noise float64
		for i := skip; i+d < len(got) && i < len(want); i++ {
			w, g := float64(want[i]), float64(got[i+d])
			sig += w * w
			noise += (g - w) * (g - w)
		}
		v := 10 * math.Log10(sig/math.Max(noise, 1e-9))
		if v > best {
			best, delay = v, d
		}
	}
	return best, delay
}

// amplitude is the Goertzel estimate of the freq Hz component's amplitude.
func amplitude(x []int16, rate int, freq float64) float64 {
	w := 2 * math.Pi * freq / float64(rate)
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range x {
		s1, s2 = float64(v)+c*s1-s2, s1
	}
	return 2 * math.Sqrt(math.Max(s1*s1+s2*s2-c*s1*s2, 0)) / float64(len(x))
}

func TestG711KnownCodes(t *testing.T) {
	// G.711: zero is the all-ones µ-law code (0xFF) and the even-bit
	// inverted A-law code 0xD5; the extremes are 0x00/0x80 (µ) and
	// 0xAA/0x2A (A).
	cases := []struct {
		in   int16
		u, a byte
	}{
		{0, 0xFF, 0xD5},
		{32767, 0x80, 0xAA},
		{-32768, 0x00, 0x2A},
		{-1, 0x7F, 0x55},
	}
	for _, c := range cases {
		if got := EncodeUlaw(c.in); got != c.u {
			t.Errorf("EncodeUlaw(%d) = %#02x, want %#02x", c.in, got, c.u)
		}
		if got := EncodeAlaw(c.in); got != c.a {
			t.Errorf("EncodeAlaw(%d) = %#02x, want %#02x", c.in, got, c.a)
		}
	}
}

func TestG711RoundTrip(t *testing.T) {
	laws := []struct {
		name string
		enc  func(int16) byte
		dec  func(byte) int16
	}{{"ulaw", EncodeUlaw, DecodeUlaw}, {"alaw", EncodeAlaw, DecodeAlaw}}
	for _, l := range laws {
		t.Run(l.name, func(t *testing.T) {
			// Every code decodes to a level that encodes back to it
			// (except µ-law's negative zero, 0x7F, which is +0's twin).
			for c := range 256 {
				v := l.dec(byte(c))
				if back := l.enc(v); back != byte(c) && !(l.name == "ulaw" && c == 0x7F) {
					t.Errorf("code %#02x -> %d -> %#02x", c, v, back)
				}
			}
			// Encoding is monotonic: larger samples never decode smaller.
			prev := int16(math.MinInt16)
			for s := -32768; s <= 32767; s += 7 {
				v := l.dec(l.enc(int16(s)))
				if v < prev {
					t.Fatalf("not monotonic at %d: %d after %d", s, v, prev)
				}
				prev = v
			}
			// Companding keeps about 38 dB SNR over a wide range of levels.
			for _, amp := range []float64{1000, 8000, 30000} {
				in := tone(1000, 8000, 8000, amp)
				var out []int16
				for _, s := range in {
					out = append(out, l.dec(l.enc(s)))
				}
				if db, _ := snr(in, out, 0, 0, 0); db < 33 {
					t.Errorf("amplitude %.0f: SNR %.1f dB, want >= 33", amp, db)
				}
			}
		})
	}
}

func TestG722RoundTrip(t *testing.T) {
	// Tones across both sub-bands (the QMF splits at 4 kHz) come back at
	// their frequency, with a fixed codec delay and good SNR.
	for _, freq := range []float64{300, 1000, 3000, 5000, 6500} {
		in := tone(freq, 16000, 16000, 10000)
		enc, dec := NewG722Encoder(), NewG722Decoder()
		var out []int16
		for i := 0; i < len(in); i += 320 { // 20 ms frames
			payload := enc.Encode(nil, in[i:i+320])
			if len(payload) != 160 {
				t.Fatalf("20 ms encoded to %d bytes, want 160", len(payload))
			}
			out = dec.Decode(out, payload)
		}
		// The two QMFs delay the signal by 22 samples; search around it
		// (a tone's period makes other delays look alike).
		db, delay := snr(in, out, 18, 26, 1600)
		if db < 20 || delay != 22 {
			t.Errorf("%v Hz: SNR %.1f dB at delay %d, want >= 20 dB at 22", freq, db, delay)
		}
		got := amplitude(out[1600:], 16000, freq)
		if got < 8000 || got > 12000 {
			t.Errorf("%v Hz: decoded amplitude %.0f, want about 10000", freq, got)
		}
		t.Logf("%v Hz: SNR %.1f dB, delay %d, amplitude %.0f", freq, db, delay, got)
	}
}

func TestG722Silence(t *testing.T) {
	enc, dec := NewG722Encoder(), NewG722Decoder()
	out := dec.Decode(nil, enc.Encode(nil, make([]int16, 3200)))
	for i, s := range out {
		if s > 8 || s < -8 {
			t.Fatalf("silence decoded to %d at sample %d", s, i)
		}
	}
}

func TestLookup(t *testing.T) {
	for _, name := range []string{"pcmu", "PCMA", "g722"} {
		c, ok := Lookup(name)
		if !ok {
			t.Fatalf("Lookup(%q) failed", name)
		}
		enc, dec := c.NewEncoder(), c.NewDecoder()
		pcm := tone(800, c.SampleRate, c.SamplesPer(20), 5000)
		payload := enc.Encode(nil, pcm)
		if want := 160; len(payload) != want {
			t.Errorf("%s: 20 ms is %d bytes, want %d", c.Name, len(payload), want)
		}
		if n := len(dec.Decode(nil, payload)); n != len(pcm) {
			t.Errorf("%s: decoded %d samples, want %d", c.Name, n, len(pcm))
		}
		if c.TimestampsPer(20) != 160 {
			t.Errorf("%s: 20 ms is %d timestamp units, want 160", c.Name, c.TimestampsPer(20))
		}
	}
}

func FuzzG722Decode(f *testing.F) {
	f.Add([]byte{0x00, 0xFF, 0x3F, 0xC0})
	f.Add(NewG722Encoder().Encode(nil, tone(1000, 16000, 320, 20000)))
	f.Fuzz(func(t *testing.T, payload []byte) {
		out := NewG722Decoder().Decode(nil, payload)
		if len(out) != 2*len(payload) {
			t.Fatalf("%d bytes decoded to %d samples", len(payload), len(out))
		}
	})
}

func FuzzG711Decode(f *testing.F) {
	f.Add([]byte{0x00, 0x7F, 0x80, 0xFF})
	f.Fuzz(func(t *testing.T, payload []byte) {
		for _, c := range []Info{PCMU, PCMA} {
			out := c.NewDecoder().Decode(nil, payload)
			if len(out) != len(payload) {
				t.Fatalf("%s: %d bytes decoded to %d samples", c.Name, len(payload), len(out))
			}
			back := c.NewEncoder().Encode(nil, out)
			for i := range back {
				// Re-encoding a decoded code gives the code back (µ-law
				// has two zeros).
				if back[i] != payload[i] && !(c.Name == "PCMU" && payload[i] == 0x7F) {
					t.Fatalf("%s: code %#02x re-encoded as %#02x", c.Name, payload[i], back[i])
				}
			}
		}
	})
}
