//go:build opus

package codec

import (
	"math/rand/v2"
	"testing"
)

func TestOpusInfo(t *testing.T) {
	c, ok := Lookup("OPUS")
	if !ok {
		t.Fatal("Lookup(OPUS) failed in the opus build")
	}
	// RFC 7587 §4.1 and §7: 48 kHz clock, two channels in the rtpmap, a
	// dynamic payload type.
	if c.ClockRate != 48000 || c.SampleRate != 48000 || c.Channels != 2 || c.PayloadType < 96 || c.PayloadType > 127 {
		t.Errorf("opus info %+v", c)
	}
	if c.TimestampsPer(20) != 960 || c.SamplesPer(20) != 960 {
		t.Errorf("20 ms: %d timestamp units, %d samples, want 960", c.TimestampsPer(20), c.SamplesPer(20))
	}
	if all := All(); all[len(all)-1].Name != "opus" {
		t.Errorf("All() = %v, want opus last", all)
	}
}

// TestOpusRoundTrip: tones across the voice band and above it come back
// at their frequency and level, after the codec's fixed delay, with an SNR
// that only a working waveform codec gives (silence or noise give <= 0 dB).
func TestOpusRoundTrip(t *testing.T) {
	for _, freq := range []float64{300, 1000, 3000, 7000} {
		in := tone(freq, 48000, 48000, 10000)
		enc, dec := Opus.NewEncoder(), Opus.NewDecoder()
		var out []int16
		bytes := 0
		for i := 0; i < len(in); i += 960 { // 20 ms frames
			payload := enc.Encode(nil, in[i:i+960])
			if len(payload) == 0 || len(payload) > 200 {
				t.Fatalf("%v Hz: 20 ms encoded to %d bytes", freq, len(payload))
			}
			bytes += len(payload)
			n := len(out)
			out = dec.Decode(out, payload)
			if len(out)-n != 960 {
				t.Fatalf("%v Hz: a packet decoded to %d samples, want 960", freq, len(out)-n)
			}
		}
		// libopus delays by 6.5 ms, 312 samples at 48 kHz (2.5 ms of
		// look-ahead and 4 ms of overlap); a perceptual codec keeps the
		// waveform only roughly, so search a period around it.
		db, delay := snr(in, out, 280, 345, 4800)
		if db < 15 {
			t.Errorf("%v Hz: SNR %.1f dB (delay %d), want >= 15 dB", freq, db, delay)
		}
		got := amplitude(out[4800:], 48000, freq)
		if got < 8000 || got > 12000 {
			t.Errorf("%v Hz: decoded amplitude %.0f, want about 10000", freq, got)
		}
		kbps := float64(bytes*8) / 1000
		if kbps > 40 {
			t.Errorf("%v Hz: %.1f kbit/s, want about 32", freq, kbps)
		}
		t.Logf("%v Hz: SNR %.1f dB, delay %d, amplitude %.0f, %.1f kbit/s", freq, db, delay, got, kbps)
	}
}

// TestOpusFrameSizes: a frame of another length than the encoder takes
// is padded, and an empty or corrupt packet decodes to nothing (the
// jitter buffer conceals it) without upsetting the decoder.
func TestOpusFrameSizes(t *testing.T) {
	enc, dec := Opus.NewEncoder(), Opus.NewDecoder()
	for _, n := range []int{120, 480, 960, 2880, 700, 4000} {
		p := enc.Encode(nil, tone(1000, 48000, n, 8000))
		want := n
		switch n {
		case 700:
			want = 960
		case 4000:
			want = 2880
		}
		if got := len(dec.Decode(nil, p)); got != want {
			t.Errorf("%d samples: decoded %d, want %d", n, got, want)
		}
	}
	if out := dec.Decode(nil, nil); len(out) != 0 {
		t.Errorf("empty payload decoded to %d samples", len(out))
	}
	// A TOC byte announcing a code-3 packet with no frame count.
	if out := dec.Decode([]int16{7}, []byte{0x03}); len(out) != 1 {
		t.Errorf("corrupt payload appended %d samples", len(out)-1)
	}
	if got := len(dec.Decode(nil, enc.Encode(nil, tone(1000, 48000, 960, 8000)))); got != 960 {
		t.Errorf("after a corrupt packet: %d samples, want 960", got)
	}
}

func FuzzOpusDecode(f *testing.F) {
	f.Add([]byte{0xFC, 0xFF, 0xFE})
	f.Add(Opus.NewEncoder().Encode(nil, tone(1000, 48000, 960, 20000)))
	dec := Opus.NewDecoder()
	f.Fuzz(func(t *testing.T, payload []byte) {
		out := dec.Decode(nil, payload)
		if len(out) > opusMaxFrame || len(out)%120 != 0 {
			t.Fatalf("%d bytes decoded to %d samples", len(payload), len(out))
		}
	})
}

func BenchmarkOpusEncodeDecode(b *testing.B) {
	in := tone(1000, 48000, 960, 10000)
	in[0] += int16(rand.IntN(2))
	enc, dec := Opus.NewEncoder(), Opus.NewDecoder()
	var p []byte
	var out []int16
	b.ReportAllocs()
	for b.Loop() {
		p = enc.Encode(p[:0], in)
		out = dec.Decode(out[:0], p)
	}
}
