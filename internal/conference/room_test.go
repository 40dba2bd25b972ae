package conference

import (
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
	r := newRoom("7000")
	ps := []*participant{newParticipant("a"), newParticipant("b"), newParticipant("c")}
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
