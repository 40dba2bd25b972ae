package codec

import (
	"slices"
	"testing"
)

func TestResamplerTones(t *testing.T) {
	cases := []struct {
		from, to int
		freq     float64
		pass     bool // the tone is below both Nyquist frequencies
	}{
		{8000, 16000, 1000, true},
		{16000, 8000, 1000, true},
		{8000, 48000, 440, true},
		{48000, 8000, 3000, true},
		{48000, 16000, 6000, true},
		{44100, 8000, 1000, true},
		{16000, 8000, 6000, false}, // above 4 kHz: must be filtered out, not aliased to 2 kHz
		{48000, 8000, 10000, false},
	}
	for _, c := range cases {
		in := tone(c.freq, c.from, c.from, 10000) // 1 s
		r := NewResampler(c.from, c.to)
		var out []int16
		for i := 0; i < len(in); i += 441 { // odd chunks: state carries over
			out = r.Process(out, in[i:min(i+441, len(in))])
		}
		if want := c.to; out == nil || len(out) < want-50 || len(out) > want {
			t.Errorf("%d -> %d: %d samples out for 1 s, want about %d", c.from, c.to, len(out), want)
			continue
		}
		steady := out[len(out)/4:]
		if c.pass {
			if a := amplitude(steady, c.to, c.freq); a < 9000 || a > 11000 {
				t.Errorf("%d -> %d: %v Hz came out at amplitude %.0f, want about 10000", c.from, c.to, c.freq, a)
			}
			continue
		}
		alias := float64(c.to) - c.freq
		for alias > float64(c.to)/2 {
			alias -= float64(c.to)
		}
		if alias < 0 {
			alias = -alias
		}
		if a := amplitude(steady, c.to, alias); a > 300 {
			t.Errorf("%d -> %d: %v Hz aliased to %v Hz at amplitude %.0f, want it filtered (< 300)",
				c.from, c.to, c.freq, alias, a)
		}
	}
}

func TestResamplerChunkingInvariant(t *testing.T) {
	in := tone(700, 8000, 4000, 12000)
	whole := NewResampler(8000, 48000).Process(nil, in)
	r := NewResampler(8000, 48000)
	var parts []int16
	for i := 0; i < len(in); i += 160 {
		parts = r.Process(parts, in[i:i+160])
	}
	if !slices.Equal(whole, parts) {
		t.Fatalf("resampling in 20 ms chunks differs from one call (%d vs %d samples)", len(parts), len(whole))
	}
	if same := NewResampler(16000, 16000).Process(nil, in); !slices.Equal(same, in) {
		t.Fatal("16000 -> 16000 changed the samples")
	}
}
