package main

import (
	"math"
	"sort"
)

// landing is where one sent event was found in the other side's recording.
type landing struct {
	SentMs  int     // offset in the sent file
	DelayMs float64 // (recording origin + position) - (sender origin + SentMs)
	Corr    float64 // normalized correlation with the chirp, 0..1
	Found   bool
}

// findEvents looks for each event of the sent file in rec (at rate). The
// sender's file started at its media start, the recording at the
// receiver's; originMs is the sender's start minus the receiver's. An
// event at sent offset x that the phones delay by d lands at recording
// offset x + originMs + d; d is searched from -minMs to maxMs, and the lag
// with the highest normalized correlation with the chirp is taken when it
// reaches minCorr.
func findEvents(rec []int16, rate int, offsets []int, originMs float64, minMs, maxMs int, minCorr float64) []landing {
	c := chirp(rate)
	var cc float64
	for _, v := range c {
		cc += v * v
	}
	out := make([]landing, 0, len(offsets))
	for _, x := range offsets {
		l := landing{SentMs: x}
		base := (float64(x) + originMs) * float64(rate) / 1000
		lo := int(math.Floor(base)) - minMs*rate/1000
		hi := int(math.Ceil(base)) + maxMs*rate/1000
		best, bestAt := -1.0, 0
		for at := max(lo, 0); at <= hi && at+len(c) <= len(rec); at++ {
			var xy, yy float64
			for i, v := range c {
				y := float64(rec[at+i])
				xy += v * y
				yy += y * y
			}
			if yy == 0 {
				continue
			}
			if r := xy / math.Sqrt(cc*yy); r > best {
				best, bestAt = r, at
			}
		}
		if best >= minCorr {
			l.Found, l.Corr = true, best
			l.DelayMs = float64(bestAt)*1000/float64(rate) - float64(x) - originMs
		} else {
			l.Corr = max(best, 0)
		}
		out = append(out, l)
	}
	return out
}

// summary is the mean, median and max delay of the events found, and how
// many were not.
type summary struct {
	N, Missed      int
	Mean, Med, Max float64
	Min            float64
	delays         []float64
}

func summarize(ls []landing) summary {
	var s summary
	for _, l := range ls {
		if !l.Found {
			s.Missed++
			continue
		}
		s.delays = append(s.delays, l.DelayMs)
	}
	s.N = len(s.delays)
	if s.N == 0 {
		return s
	}
	sort.Float64s(s.delays)
	var sum float64
	for _, d := range s.delays {
		sum += d
	}
	s.Mean = sum / float64(s.N)
	s.Med = s.delays[s.N/2]
	s.Min, s.Max = s.delays[0], s.delays[s.N-1]
	return s
}

// merge joins summaries (all calls, both directions).
func merge(ss ...summary) summary {
	var all []landing
	missed := 0
	for _, s := range ss {
		for _, d := range s.delays {
			all = append(all, landing{Found: true, DelayMs: d})
		}
		missed += s.Missed
	}
	m := summarize(all)
	m.Missed = missed
	return m
}
