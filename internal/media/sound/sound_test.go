package sound

import (
	"math"
	"testing"
)

// fakeSystem stands in for the sound library: its devices run at a given
// rate and the test calls their callbacks, as the device's thread would.
type fakeSystem struct {
	rate       int
	push       func([]int16)
	pull       func([]int16)
	open, shut int
}

type fakeDevice struct{ s *fakeSystem }

func (d fakeDevice) rate() int    { return d.s.rate }
func (d fakeDevice) close() error { d.s.shut++; return nil }

func (s *fakeSystem) openCapture(push func([]int16)) (device, error) {
	s.push, s.open = push, s.open+1
	return fakeDevice{s}, nil
}

func (s *fakeSystem) openPlayback(pull func([]int16)) (device, error) {
	s.pull, s.open = pull, s.open+1
	return fakeDevice{s}, nil
}

func (s *fakeSystem) close() error { return nil }

func sine(freq float64, rate, from, n int) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(8000 * math.Sin(2*math.Pi*freq*float64(from+i)/float64(rate)))
	}
	return out
}

func level(x []int16, rate int, freq float64) float64 {
	w := 2 * math.Pi * freq / float64(rate)
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range x {
		s1, s2 = float64(v)+c*s1-s2, s1
	}
	return 2 * math.Sqrt(math.Max(s1*s1+s2*s2-c*s1*s2, 0)) / float64(len(x))
}

// TestSourceResamplesAndBoundsDelay: a 44.1 kHz microphone read by an
// 8 kHz call hears the tone at its frequency and level; when the device
// runs ahead of the call's clock, the queue stays within two frames and a
// period instead of growing.
func TestSourceResamplesAndBoundsDelay(t *testing.T) {
	sys := &fakeSystem{rate: 44100}
	src := (&Card{sys: sys}).Source()
	if err := src.Open(8000); err != nil {
		t.Fatal(err)
	}
	frame := make([]int16, 160)
	src.Read(frame) // nothing recorded yet
	for _, s := range frame {
		if s != 0 {
			t.Fatal("a read before any recording was not silence")
		}
	}
	var heard []int16
	pos := 0
	for tick := range 100 { // 2 s of call clock
		// The device records 10 ms per period, and one period more
		// every fourth tick: its clock runs 25% fast.
		periods := 2
		if tick%4 == 3 {
			periods = 3
		}
		for range periods {
			sys.push(sine(1000, 44100, pos, 441))
			pos += 441
		}
		src.Read(frame)
		heard = append(heard, frame...)
		if lag := len(src.q.Load().buf); lag > 8000*(frameMs+periodMs)/1000 {
			t.Fatalf("tick %d: %d samples queued, want at most 240 (30 ms)", tick, lag)
		}
	}
	if got := level(heard[800:], 8000, 1000); got < 7000 || got > 9000 {
		t.Errorf("1 kHz at %.0f after resampling, want about 8000", got)
	}
	if src.q.Load().stats.Dropped == 0 {
		t.Error("a device 25% fast never had samples dropped")
	}
	// A transfer's new call opens it again before the old call closes
	// it: the device stays open until both have closed it.
	if err := src.Open(16000); err != nil {
		t.Fatal(err)
	}
	src.Close()
	if sys.shut != 0 || sys.open != 1 {
		t.Errorf("after reopening and one close: opened %d, closed %d times, want 1, 0", sys.open, sys.shut)
	}
	src.Close()
	src.Close()
	if sys.shut != 1 {
		t.Errorf("device closed %d times, want 1", sys.shut)
	}
}

// TestSinkPrimesAndRecovers: an 8 kHz call played on a 48 kHz speaker
// starts once a frame and a period are queued, plays the tone, goes
// silent and primes again after running dry, and is cut back when frames
// pile up.
func TestSinkPrimesAndRecovers(t *testing.T) {
	sys := &fakeSystem{rate: 48000}
	sink := (&Card{sys: sys}).Sink()
	if err := sink.Open(8000); err != nil {
		t.Fatal(err)
	}
	period := make([]int16, 480)
	pos := 0
	write := func() {
		if err := sink.Write(sine(1000, 8000, pos, 160)); err != nil {
			t.Fatal(err)
		}
		pos += 160
	}
	write()
	sys.pull(period)
	if level(period, 48000, 1000) != 0 {
		t.Error("played before a frame and a period were queued")
	}
	write()
	var played []int16
	for range 100 { // 1 s: a frame per two periods
		sys.pull(period)
		played = append(played, period...)
		if len(played)%960 == 0 {
			write()
		}
	}
	if got := level(played[960:], 48000, 1000); got < 7000 || got > 9000 {
		t.Errorf("1 kHz played at %.0f, want about 8000", got)
	}
	if sink.q.Load().stats.Underruns != 0 {
		t.Errorf("%d underruns with frames on time", sink.q.Load().stats.Underruns)
	}
	// The call stops sending: silence after what was queued.
	for range 10 {
		sys.pull(period)
	}
	if level(period, 48000, 1000) != 0 || sink.q.Load().stats.Underruns != 1 || sink.q.Load().playing {
		t.Errorf("after running dry: level %.0f, %d underruns, playing %v", level(period, 48000, 1000), sink.q.Load().stats.Underruns, sink.q.Load().playing)
	}
	// A burst of 10 frames (200 ms) is cut back to the priming level.
	for range 10 {
		write()
	}
	if n := len(sink.q.Load().buf); n > 4800 {
		t.Errorf("%d samples queued after a burst, want at most 100 ms (4800)", n)
	}
	if sink.q.Load().stats.Dropped == 0 {
		t.Error("nothing dropped from a 200 ms burst")
	}
	sink.Close()
	sink.Close()
	if sys.shut != 1 {
		t.Errorf("device closed %d times, want 1", sys.shut)
	}
}
