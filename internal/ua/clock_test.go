package ua

import (
	"log/slog"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/media/codec"
)

// countSink counts the frames a call plays.
type countSink struct{ frames int }

func (c *countSink) Open(int) error        { return nil }
func (c *countSink) Write(f []int16) error { c.frames++; return nil }
func (c *countSink) Close() error          { return nil }

// TestMediaClockCatchesUp: the media clock does one frame per 20 ms from
// its first tick; a late tick does the frames that were due, so a
// recording keeps real time (after a pause that lets the reader take
// the packets that came meanwhile), and a stall of more than maxCatchUp frames is
// skipped, not played in one burst.
func TestMediaClockCatchesUp(t *testing.T) {
	sink := &countSink{}
	dec := codec.PCMU.NewDecoder()
	s := &stream{log: slog.New(slog.DiscardHandler), ag: agreed{codec: codec.PCMU, dtmfPT: -1},
		enc: codec.PCMU.NewEncoder(), jb: newJitterBuffer(8000, 8000, frameMs, dec.Decode),
		src: silence{}, sink: sink, frame: make([]int16, 160), dtmfCur: -1}
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	for _, c := range []struct {
		at    time.Time
		again bool // tick asks to be called again before catching up
		want  int
	}{
		{t0, false, 1},
		{ms(19), false, 2},      // a little early: frame 1 is due
		{ms(43), false, 3},      // a little late
		{ms(100), true, 3},      // the ticker dropped two ticks: first a pause,
		{ms(101), false, 6},     // then frames 3, 4, 5
		{ms(101), false, 6},     // nothing more due
		{ms(10_000), true, 6},   // a 10 s stall:
		{ms(10_001), false, 16}, // the last maxCatchUp frames only
		{ms(10_020), false, 17}, // and on from there
	} {
		again := s.tick(c.at)
		if again != c.again || sink.frames != c.want {
			t.Fatalf("at +%v: again %v, %d frames played; want %v, %d", c.at.Sub(t0), again, sink.frames, c.again, c.want)
		}
	}
	if st := s.stats(); !st.MediaStart.Equal(t0) {
		t.Errorf("MediaStart %v, want the first tick %v", st.MediaStart, t0)
	}
}
