package main

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/media/codec"
)

// through runs pcm through a codec in 20 ms frames, as the phones do.
func through(info codec.Info, pcm []int16) []int16 {
	enc, dec := info.NewEncoder(), info.NewDecoder()
	n := info.SamplesPer(20)
	var out []int16
	var payload []byte
	for i := 0; i+n <= len(pcm); i += n {
		payload = enc.Encode(payload[:0], pcm[i:i+n])
		out = dec.Decode(out, payload)
	}
	return out
}

// TestFindEvents: events played through each codec and shifted by a known
// delay, in a recording whose origin differs from the sender's, are found
// at that delay (plus the codec's own few samples for G.722); an event
// that never arrived is counted as missed, not found somewhere else.
func TestFindEvents(t *testing.T) {
	for _, c := range []struct {
		info     codec.Info
		slack    float64 // codec delay allowed, ms
		delayMs  float64
		originMs float64
	}{
		{codec.PCMU, 0.2, 47.3, 0},
		{codec.PCMU, 0.2, 58.125, -1.875},
		{codec.G722, 2.5, 41.9, 12.4},
		{codec.G722, 2.5, 118.0, -7.5},
	} {
		rate := c.info.SampleRate
		offsets := eventOffsets(8000)
		sent := eventSignal(rate, 8000, offsets, 12000)
		// The recording starts originMs before the sender's file (the
		// sender's start minus the receiver's is originMs), then the file
		// is heard delayMs later.
		shift := int(math.Round((c.originMs + c.delayMs) * float64(rate) / 1000))
		rec := make([]int16, len(sent)+rate)
		heard := through(c.info, sent)
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range rec {
			rec[i] = int16(rng.NormFloat64() * 30) // a little noise
		}
		for i, v := range heard {
			if j := i + shift; j >= 0 && j < len(rec) {
				rec[j] += v
			}
		}
		// The third event never arrives.
		gone := int(math.Round((float64(offsets[2])+c.originMs+c.delayMs)*float64(rate)/1000)) - rate/100
		clear(rec[gone : gone+rate/20])
		want := float64(shift)*1000/float64(rate) - c.originMs
		ls := findEvents(rec, rate, offsets, c.originMs, 10, 300, 0.6)
		if len(ls) != len(offsets) {
			t.Fatalf("%d landings for %d events", len(ls), len(offsets))
		}
		for i, l := range ls {
			if i == 2 {
				if l.Found {
					t.Errorf("%s: the lost event was found at %.2f ms (corr %.2f)", c.info.Name, l.DelayMs, l.Corr)
				}
				continue
			}
			if !l.Found || l.DelayMs < want-0.2 || l.DelayMs > want+c.slack {
				t.Errorf("%s, event at %d ms: found %v at %.2f ms (corr %.2f), want %.2f ms", c.info.Name, l.SentMs, l.Found, l.DelayMs, l.Corr, want)
			}
		}
		s := summarize(ls)
		if s.Missed != 1 || s.N != len(offsets)-1 || s.Max < s.Mean-1e-9 || s.Min > s.Mean+1e-9 {
			t.Errorf("%s: summary %+v", c.info.Name, s)
		}
	}
}

func TestEventOffsets(t *testing.T) {
	offs := eventOffsets(16000)
	if len(offs) != 27 || offs[0] != 1000 || offs[len(offs)-1]+1500 > 16000 {
		t.Fatalf("offsets %v", offs)
	}
	phases := map[int]bool{}
	for i, x := range offs {
		phases[x%20] = true
		if i > 0 && x-offs[i-1] < 480 {
			t.Errorf("events %d and %d only %d ms apart", i-1, i, x-offs[i-1])
		}
	}
	if len(phases) < 10 {
		t.Errorf("events fall at only %d places within a frame", len(phases))
	}
}

func TestMergeSummaries(t *testing.T) {
	a := summarize([]landing{{Found: true, DelayMs: 40}, {Found: true, DelayMs: 42}, {}})
	b := summarize([]landing{{Found: true, DelayMs: 60}})
	m := merge(a, b)
	if m.N != 3 || m.Missed != 1 || m.Mean != 142.0/3 || m.Max != 60 || m.Min != 40 {
		t.Errorf("merged %+v", m)
	}
}

func TestParsePhoneOut(t *testing.T) {
	out := `listening on sip:kaopu@127.0.0.1:40231
calling sip:bob@127.0.0.1:5070
answered: sip:bob@127.0.0.1:5070 codec G722 srtp true
[active] sip:bob@127.0.0.1:5070 codec=G722 srtp=true jitter=0.3ms loss=0.5% in=796 out=800 concealed=2
call ended: 200 OK
[ended] sip:bob@127.0.0.1:5070 codec=G722 srtp=true jitter=0.2ms loss=0.0% in=800 out=801 concealed=3
media started at 2026-11-24T05:10:01.123456789Z
`
	o, err := parsePhoneOut(out)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 11, 24, 5, 10, 1, 123456789, time.UTC)
	if !o.Answered || o.Codec != "G722" || !o.SRTP || !o.MediaStart.Equal(want) || !o.HaveStats ||
		o.JitterMs != 0.2 || o.LossPct != 0 || o.In != 800 || o.Out != 801 || o.Concealed != 3 {
		t.Errorf("parsed %+v", o)
	}
	if _, err := parsePhoneOut("answered: x codec PCMU srtp false\n"); err == nil {
		t.Error("no media start line: no error")
	}
	if _, err := parsePhoneOut("media started at 2026-11-24T05:10:01Z\n"); err == nil {
		t.Error("no answered line: no error")
	}
	if _, err := parsePhoneOut("answered: x codec PCMU srtp false\nmedia started at yesterday\n"); err == nil {
		t.Error("a bad time: no error")
	}
}

func TestParseProcStat(t *testing.T) {
	// comm may hold spaces and parentheses.
	stat := "4242 (kaopu (x) y) S 1 4242 4242 0 -1 4194560 1187 0 0 0 137 29 0 0 20 0 9 0 123 1000 200 18446744073709551615\n"
	v, err := parseProcStat([]byte(stat))
	if err != nil || v != 166 {
		t.Errorf("got %d, %v; want 166", v, err)
	}
	if _, err := parseProcStat([]byte("4242 (kaopu) S 1 2")); err == nil {
		t.Error("short stat: no error")
	}
}

func TestParseMachineStat(t *testing.T) {
	stat := "cpu  100 5 50 1000 20 3 7 2 0 0\ncpu0 50 2 25 500 10 1 3 1 0 0\n"
	busy, total, err := parseMachineStat([]byte(stat))
	if err != nil || busy != 167 || total != 1187 {
		t.Errorf("busy %d total %d, %v; want 167 1187", busy, total, err)
	}
	if _, _, err := parseMachineStat([]byte("intr 1 2 3\n")); err == nil {
		t.Error("no cpu line: no error")
	}
}
