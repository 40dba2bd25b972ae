package conference

import (
	"slices"
	"testing"
)

// TestMixThree: three inputs of known samples; each output is exactly the
// sum of the other two, clipped to 16 bits where it overflows.
func TestMixThree(t *testing.T) {
	a := []int16{100, -200, 30000, -30000, 0, 32767}
	b := []int16{10, 20, 5000, -5000, 0, 32767}
	c := []int16{1, -2, 1000, -1000, 0, -32768}
	out := [][]int16{make([]int16, 6), make([]int16, 6), make([]int16, 6)}
	m := NewMixer(6)
	m.Mix([][]int16{a, b, c}, out)
	want := [][]int16{
		{11, 18, 6000, -6000, 0, -1},         // b+c
		{101, -202, 31000, -31000, 0, -1},    // a+c
		{110, -180, 32767, -32768, 0, 32767}, // a+b: 35000, -35000 and 65534 clip
	}
	for i := range want {
		if !slices.Equal(out[i], want[i]) {
			t.Errorf("output %d = %v, want %v", i, out[i], want[i])
		}
	}
	// Mixing in place (out[i] is in[i]) gives the same.
	in := [][]int16{slices.Clone(a), slices.Clone(b), slices.Clone(c)}
	m.Mix(in, in)
	for i := range want {
		if !slices.Equal(in[i], want[i]) {
			t.Errorf("in place: output %d = %v, want %v", i, in[i], want[i])
		}
	}
}

func TestMixAlone(t *testing.T) {
	// One participant hears nothing of itself; two hear each other.
	m := NewMixer(2)
	a, b := []int16{500, -500}, []int16{7, 8}
	out := [][]int16{make([]int16, 2), make([]int16, 2)}
	m.Mix([][]int16{a}, out[:1])
	if !slices.Equal(out[0], []int16{0, 0}) {
		t.Errorf("alone: %v, want silence", out[0])
	}
	m.Mix([][]int16{a, b}, out)
	if !slices.Equal(out[0], b) || !slices.Equal(out[1], a) {
		t.Errorf("two: %v %v", out[0], out[1])
	}
}

func TestAddSat(t *testing.T) {
	d := []int16{32000, -32000, 5}
	addSat(d, []int16{1000, -1000})
	if !slices.Equal(d, []int16{32767, -32768, 5}) {
		t.Errorf("addSat: %v", d)
	}
}

// BenchmarkMix: one 20 ms frame (at the rooms' 16 kHz) of ten
// participants. It must not allocate.
func BenchmarkMix(b *testing.B) {
	const n = 10
	frame := samplesPerFrame(mixRate)
	in, out := make([][]int16, n), make([][]int16, n)
	for i := range in {
		in[i], out[i] = make([]int16, frame), make([]int16, frame)
		for k := range in[i] {
			in[i][k] = int16((i*131 + k*17) % 4000)
		}
	}
	m := NewMixer(frame)
	b.ReportAllocs()
	for b.Loop() {
		m.Mix(in, out)
	}
}

func TestMixNoAlloc(t *testing.T) {
	in, out := make([][]int16, 10), make([][]int16, 10)
	for i := range in {
		in[i], out[i] = make([]int16, frameSamples), make([]int16, frameSamples)
	}
	m := NewMixer(frameSamples)
	if a := testing.AllocsPerRun(100, func() { m.Mix(in, out) }); a != 0 {
		t.Fatalf("Mix allocates %v times a frame", a)
	}
}
