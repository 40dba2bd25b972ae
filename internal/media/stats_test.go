package media

import (
	"math"
	"testing"
	"time"
)

// pkt is one synthetic packet: sequence number, RTP timestamp, arrival
// (ms after the leg's epoch), payload type and SSRC (0 means 1).
type pkt struct {
	seq     uint16
	ts      uint32
	arrival float64
	pt      uint8
	ssrc    uint32
}

func feed(t *testing.T, pts []PayloadType, pkts []pkt) *rxStats {
	t.Helper()
	tab, err := newPayloadTable(pts)
	if err != nil {
		t.Fatal(err)
	}
	var r rxStats
	for _, p := range pkts {
		c, ok := tab.lookup(p.pt)
		if !ok {
			t.Fatalf("pt %d not negotiated", p.pt)
		}
		if p.ssrc == 0 {
			p.ssrc = 1
		}
		r.packet(rtpHeader{pt: p.pt, seq: p.seq, ts: p.ts, ssrc: p.ssrc}, c, time.Duration(p.arrival*float64(time.Millisecond)))
	}
	return &r
}

// seqs makes in-order G.711 packets (20 ms, 160 samples) for the given
// sequence numbers, timestamps following the sequence numbers.
func seqs(ns ...int) []pkt {
	var out []pkt
	for _, n := range ns {
		out = append(out, pkt{seq: uint16(n), ts: uint32(n) * 160, arrival: float64(n) * 20})
	}
	return out
}

func span(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// The RFC 3550 §A.1 probation makes the first packet of a source not count:
// the base sequence number is the second one.
func TestLoss(t *testing.T) {
	pcmu := []PayloadType{{Number: 0}}
	for _, tc := range []struct {
		name     string
		pkts     []pkt
		expected uint64
		lost     int64
	}{
		{"in order", seqs(span(100, 109)...), 9, 0},
		{"gap of three", seqs(append(span(100, 104), span(108, 110)...)...), 10, 3},
		// 65534 is the base; 65535, 0 wrap; 1 is missing:
		// extended max 65536+2, expected 65538-65534+1 = 5, received 4.
		{"wraparound with a gap", seqs(65533, 65534, 65535, 0, 2), 5, 1},
		{"duplicate counts as received", seqs(100, 101, 102, 102, 103), 3, -1},
		{"reordered is not lost", seqs(100, 101, 103, 102, 104), 4, 0},
		// 20000 is a jump beyond MAX_DROPOUT, taken as stray; 20001
		// follows it, so the source is re-synchronised at 20001.
		{"restart after a big jump", seqs(100, 101, 102, 20000, 20001, 20002), 2, 0},
		{"single stray jump is ignored", seqs(100, 101, 102, 30000, 103, 104), 4, 0},
		{"new SSRC keeps the earlier totals", append(seqs(span(100, 104)...),
			pkt{seq: 500, ts: 0, ssrc: 2}, pkt{seq: 501, ts: 160, ssrc: 2}, pkt{seq: 503, ts: 480, ssrc: 2}), 4 + 3, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := feed(t, pcmu, tc.pkts)
			exp, lost := r.totals()
			if exp != tc.expected || lost != tc.lost {
				t.Errorf("expected, lost = %d, %d; want %d, %d", exp, lost, tc.expected, tc.lost)
			}
		})
	}
}

func TestJitter(t *testing.T) {
	pts := []PayloadType{{Number: 0}, {Number: 101, Name: "telephone-event"}, {Number: 96, Name: "opus", ClockRate: 48000}}
	drift := func(n int) []pkt { // sender clock fast: 168 samples per 20 ms
		var out []pkt
		for i := range n {
			out = append(out, pkt{seq: uint16(i), ts: uint32(i) * 168, arrival: float64(i) * 20})
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		pkts  []pkt
		units float64 // jitter in timestamp units
		rate  float64
	}{
		{"steady stream", seqs(span(0, 49)...), 0, 8000},
		// Packet 0 is on probation, packet 1 sets the transit time, then
		// transits are 0, 40, 0, 0 units: D = 40, -40, 0, so
		// J = 40/16 = 2.5; 2.5 + (40-2.5)/16 = 4.84375; 4.84375*15/16.
		{"one late packet", []pkt{{0, 0, 0, 0, 0}, {1, 160, 20, 0, 0}, {2, 320, 45, 0, 0}, {3, 480, 60, 0, 0}, {4, 640, 80, 0, 0}}, 4.84375 * 15 / 16, 8000},
		// |D| = 8 for each of the 10 packets after the first two:
		// J = 8 (1 - (15/16)^10).
		{"timestamp drift", drift(12), 8 * (1 - math.Pow(15.0/16, 10)), 8000},
		// RFC 4733 events repeat their start timestamp: they must not
		// count as jitter, but do count in the sequence space.
		{"DTMF events do not add jitter", []pkt{
			{0, 0, 0, 0, 0}, {1, 160, 20, 0, 0}, {2, 320, 40, 0, 0},
			{3, 480, 60, 101, 0}, {4, 480, 80, 101, 0}, {5, 480, 100, 101, 0},
			{6, 960, 120, 0, 0}, {7, 1120, 140, 0, 0},
		}, 0, 8000},
		// 48 kHz: one packet 5 ms late is 240 units, D = 240 then -240:
		// J = 15, then 15 + (240-15)/16.
		{"opus clock rate", []pkt{{0, 0, 0, 96, 0}, {1, 960, 20, 96, 0}, {2, 1920, 45, 96, 0}, {3, 2880, 60, 96, 0}}, 15 + (240-15.0)/16, 48000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := feed(t, pts, tc.pkts)
			want := tc.units
			if math.Abs(r.jitter-want) > 1e-9 {
				t.Errorf("jitter = %v units, want %v", r.jitter, want)
			}
			wantD := time.Duration(want / tc.rate * float64(time.Second))
			if d := r.jitterDuration(); d < wantD-time.Microsecond || d > wantD+time.Microsecond {
				t.Errorf("jitter = %v, want %v", d, wantD)
			}
		})
	}
}

func TestUnitsLongCall(t *testing.T) {
	// 30 days at 90 kHz overflows int64 nanoseconds*rate; units must not.
	d := 30 * 24 * time.Hour
	want := uint32(uint64(30*24*3600) * 90000 % (1 << 32))
	if got := units(d, 90000); got != want {
		t.Errorf("units = %d, want %d", got, want)
	}
	if got := units(1500*time.Millisecond, 8000); got != 12000 {
		t.Errorf("units(1.5s) = %d, want 12000", got)
	}
}
