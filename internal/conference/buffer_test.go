package conference

import (
	"slices"
	"testing"
)

func seq(from, n int) []int16 {
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(from + i)
	}
	return s
}

func TestPCMBuffer(t *testing.T) {
	b := newPCMBuffer(10, 4)
	f := make([]int16, 3)
	b.write(seq(1, 3))
	if b.read(f) || !slices.Equal(f, []int16{0, 0, 0}) {
		t.Fatalf("priming: %v", f)
	}
	b.write(seq(4, 3)) // 1..6 held: primed
	if !b.read(f) || !slices.Equal(f, seq(1, 3)) {
		t.Fatalf("first frame %v", f)
	}
	if !b.read(f) || !slices.Equal(f, seq(4, 3)) {
		t.Fatalf("second frame %v", f)
	}
	// Late: short of a frame gives silence and primes again.
	b.write(seq(7, 2))
	if b.read(f) || !slices.Equal(f, []int16{0, 0, 0}) {
		t.Fatalf("late: %v", f)
	}
	b.write(seq(9, 2)) // 7..10: primed again
	if !b.read(f) || !slices.Equal(f, seq(7, 3)) {
		t.Fatalf("after priming again %v", f)
	}
	// Overflow drops the oldest: 10 is held, 12 more arrive: 10 kept (cap).
	b.write(seq(11, 12))
	if b.len() != 10 {
		t.Fatalf("held %d, want capacity 10", b.len())
	}
	if !b.read(f) || !slices.Equal(f, seq(13, 3)) {
		t.Fatalf("after overflow %v, want the newest 10 from 13", f)
	}
	// Larger than the whole buffer: only the tail.
	b.write(seq(100, 25))
	if !b.read(f) || !slices.Equal(f, seq(115, 3)) {
		t.Fatalf("huge write %v", f)
	}
}

func FuzzPCMBuffer(f *testing.F) {
	f.Add([]byte{3, 5, 200, 1})
	f.Fuzz(func(t *testing.T, ops []byte) {
		b := newPCMBuffer(37, 11)
		frame := make([]int16, 7)
		next, want := 0, 0 // counters; samples are their low 16 bits
		for _, op := range ops {
			if op&1 == 0 {
				n := int(op >> 1)
				s := make([]int16, n)
				for i := range s {
					s[i] = int16(next)
					next++
				}
				b.write(s)
				if b.len() > 37 {
					t.Fatalf("held %d", b.len())
				}
				// Dropped samples are the oldest: the oldest held is next-len.
				want = max(want, next-b.len())
				continue
			}
			if b.read(frame) {
				for i, v := range frame {
					if v != int16(want+i) {
						t.Fatalf("frame %v, want from %d", frame, want)
					}
				}
				want += 7
			}
		}
	})
}
