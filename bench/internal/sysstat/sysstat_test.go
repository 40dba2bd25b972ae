package sysstat

import "testing"

func TestParseStat(t *testing.T) {
	busy, total := ParseStat([]byte("cpu  100 5 50 800 20 3 2 1 7 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"))
	if busy != 161 || total != 981 {
		t.Fatalf("busy %d total %d, want 161 and 981", busy, total)
	}
	if b, t0 := ParseStat([]byte("intr 1 2 3")); b != 0 || t0 != 0 {
		t.Fatalf("not a cpu line: %d %d", b, t0)
	}
}
