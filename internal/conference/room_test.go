package conference

import (
	"math"
	"testing"
)

// fill returns a frame of constant v.
func fill(v int16) []int16 {
	f := make([]int16, frameSamples)
	for i := range f {
		f[i] = v
	}
	return f
}

// TestRoomTick: three participants feed constant frames through their
// jitter buffers; after priming, each is sent the sum of the other two;
// one whose packets stop contributes silence; a tone is mixed in on top
// for everyone; a tick allocates nothing.
func TestRoomTick(t *testing.T) {
	r := newRoom("7000", 8000)
	ps := []*participant{newParticipant("a", 8000, 8000), newParticipant("b", 8000, 8000), newParticipant("c", 8000, 8000)}
	levels := []int16{100, 1000, 10000}
	for _, p := range ps {
		r.add(p, nil)
	}
	stopClock(r) // the test ticks by hand
	frames := make([][]int16, 3)
	for i := range ps {
		frames[i] = fill(levels[i])
	}
	step := func(who ...int) {
		for _, i := range who {
			ps[i].Heard(frames[i])
		}
		r.tick()
	}
	check := func(name string, want []int16) {
		t.Helper()
		for i, p := range ps {
			got := lastOut(p)
			for _, v := range got {
				if v != want[i] {
					t.Fatalf("%s: participant %d sent %d, want %d", name, i, v, want[i])
				}
			}
		}
	}
	step(0, 1, 2)
	check("priming", []int16{0, 0, 0})
	step(0, 1, 2)
	check("all talking", []int16{11000, 10100, 1100})
	// c goes quiet: what it held plays out, then it is silence.
	step(0, 1)
	check("c's last frame", []int16{11000, 10100, 1100})
	step(0, 1)
	check("c late", []int16{1000, 100, 1100})
	// A tone is mixed in on top of everyone's mix, for its length.
	r.mu.Lock()
	r.tone = fill(7)
	r.mu.Unlock()
	step(0, 1)
	check("tone", []int16{1007, 107, 1107})
	step(0, 1)
	check("after the tone", []int16{1000, 100, 1100})
	if a := testing.AllocsPerRun(50, func() {
		step(0, 1, 2)
		for _, p := range ps {
			lastOut(p)
		}
	}); a != 0 {
		t.Errorf("a tick allocates %v times", a)
	}
	for _, p := range ps {
		r.remove(p, nil)
	}
	if r.count() != 0 {
		t.Fatal("room not empty")
	}
}

var scratch = make([]int16, frameSamples)

// lastOut drains p's output and returns the newest frame.
func lastOut(p *participant) []int16 {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.out.len() >= frameSamples {
		p.out.primed = true
		p.out.read(scratch)
	}
	return scratch
}

// stopClock stops the room's clock so the test ticks by hand.
func stopClock(r *room) {
	r.mu.Lock()
	stop, stopped := r.stop, r.stopped
	r.stop, r.stopped = nil, nil
	r.mu.Unlock()
	if stop != nil {
		close(stop)
		<-stopped
	}
}

// sine is n samples of freq Hz at rate, amplitude 8000, from sample k0.
func sine(freq float64, rate, k0, n int) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(8000 * math.Sin(2*math.Pi*freq*float64(k0+i)/float64(rate)))
	}
	return out
}

// level is the amplitude of freq in pcm at rate (Goertzel).
func level(pcm []int16, rate int, freq float64) float64 {
	c := 2 * math.Cos(2*math.Pi*freq/float64(rate))
	var s1, s2 float64
	for _, v := range pcm {
		s1, s2 = float64(v)+c*s1-s2, s1
	}
	return 2 * math.Sqrt(max(0, s1*s1+s2*s2-c*s1*s2)) / float64(len(pcm))
}

// TestRoomMixedRates: a 16 kHz room with a G.711 caller (8 kHz, 500 Hz)
// and two G.722 callers (16 kHz, 1500 Hz and 5000 Hz). The wideband
// callers hear everything but their own tone; the narrowband one hears
// 1500 Hz, not 5000 Hz (beyond its band: filtered, not aliased to 3000),
// and nothing of its own. A tick with resampling allocates nothing.
func TestRoomMixedRates(t *testing.T) {
	r := newRoom("7000", 16000)
	ps := []*participant{newParticipant("nb", 8000, 16000), newParticipant("wb1", 16000, 16000), newParticipant("wb2", 16000, 16000)}
	for _, p := range ps {
		r.add(p, nil)
	}
	stopClock(r)
	tones := []float64{500, 1500, 5000}
	rates := []int{8000, 16000, 16000}
	// Received audio, per participant, after the first 200 ms.
	heard := make([][]int16, 3)
	frame := [][]int16{make([]int16, 160), make([]int16, 320), make([]int16, 320)}
	for tick := range 40 {
		for i, p := range ps {
			n := rates[i] / 50
			p.Heard(sine(tones[i], rates[i], tick*n, n))
		}
		r.tick()
		for i, p := range ps {
			p.Next(frame[i])
			if tick >= 10 {
				heard[i] = append(heard[i], frame[i]...)
			}
		}
	}
	check := func(i int, freq float64, want bool) {
		t.Helper()
		l := level(heard[i], rates[i], freq)
		if want && l < 3000 || !want && l > 200 {
			t.Errorf("%s hears %.0f Hz at %.0f (want it: %v)", ps[i].id, freq, l, want)
		}
	}
	check(0, 500, false)
	check(0, 1500, true)
	check(0, 5000, false)
	check(0, 3000, false) // 5000 Hz aliased at 8 kHz
	check(1, 500, true)
	check(1, 1500, false)
	check(1, 5000, true)
	check(2, 500, true)
	check(2, 1500, true)
	check(2, 5000, false)
	in := [][]int16{sine(500, 8000, 0, 160), sine(1500, 16000, 0, 320), sine(5000, 16000, 0, 320)}
	if a := testing.AllocsPerRun(50, func() {
		for i, p := range ps {
			p.Heard(in[i])
		}
		r.tick()
		for i, p := range ps {
			p.Next(frame[i])
		}
	}); a != 0 {
		t.Errorf("a tick with resampling allocates %v times", a)
	}
}

// BenchmarkRoomTick: a room's 20 ms of ten participants, half G.711
// (resampled both ways), half G.722: their audio in, the mix, the mix out.
func BenchmarkRoomTick(b *testing.B) {
	r := newRoom("7000", mixRate)
	var ps []*participant
	var in, out [][]int16
	for i := range 10 {
		rate := 8000 + 8000*(i%2)
		p := newParticipant("p", rate, mixRate)
		r.add(p, nil)
		ps = append(ps, p)
		in = append(in, sine(float64(300+100*i), rate, 0, rate/50))
		out = append(out, make([]int16, rate/50))
	}
	stopClock(r)
	b.ReportAllocs()
	for b.Loop() {
		for i, p := range ps {
			p.Heard(in[i])
		}
		r.tick()
		for i, p := range ps {
			p.Next(out[i])
		}
	}
}
