package web

import (
	"strconv"
	"sync/atomic"
	"time"
)

// Histogram counts durations into fixed buckets, for a Prometheus
// histogram in /metrics. Observe is lock-free (a few atomic adds), so it
// can sit on a hot path. The zero value is not usable: see NewHistogram.
type Histogram struct {
	bounds []time.Duration // upper bounds, ascending; +Inf is implicit
	counts []atomic.Uint64 // per bucket (not cumulative), len(bounds)+1
	sumNS  atomic.Int64    // sum of observations, nanoseconds
}

// NewHistogram returns a histogram with the given upper bounds (sorted
// ascending; a last +Inf bucket is added).
func NewHistogram(bounds ...time.Duration) *Histogram {
	return &Histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
}

// Observe records one duration.
func (h *Histogram) Observe(d time.Duration) {
	i := 0
	for i < len(h.bounds) && d > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNS.Add(int64(d))
}

// Count returns how many durations were observed.
func (h *Histogram) Count() uint64 {
	var n uint64
	for i := range h.counts {
		n += h.counts[i].Load()
	}
	return n
}

// Metrics returns the histogram's samples: name_bucket{le="…"}
// (cumulative, in seconds), name_sum (seconds) and name_count.
func (h *Histogram) Metrics(name, help string) []Metric {
	out := make([]Metric, 0, len(h.counts)+2)
	var cum uint64
	for i := range h.counts {
		cum += h.counts[i].Load()
		le := "+Inf"
		if i < len(h.bounds) {
			le = strconv.FormatFloat(h.bounds[i].Seconds(), 'g', -1, 64)
		}
		out = append(out, Metric{Name: name + "_bucket", Help: help, Type: "histogram", Labels: Label("le", le), Value: float64(cum)})
	}
	out = append(out,
		Metric{Name: name + "_sum", Help: help, Type: "histogram", Value: float64(h.sumNS.Load()) / 1e9},
		Metric{Name: name + "_count", Help: help, Type: "histogram", Value: float64(cum)})
	return out
}

// family is the name HELP and TYPE are written for: a histogram's
// samples (_bucket, _sum, _count) share their base name.
func family(m Metric) string {
	if m.Type != "histogram" {
		return m.Name
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if n := len(m.Name) - len(suf); n > 0 && m.Name[n:] == suf {
			return m.Name[:n]
		}
	}
	return m.Name
}
