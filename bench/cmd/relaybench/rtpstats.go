package main

import (
	"encoding/binary"
	"math"
	"slices"
)

// G.711 at 20 ms: 160 samples of 8 kHz audio, one byte each.
const (
	payloadSize = 160
	rtpHeader   = 12
	packetSize  = rtpHeader + payloadSize
	clockRate   = 8000
	ptime       = 20 // ms
	tsStep      = clockRate * ptime / 1000
)

// rtpHead is what the receiver needs of an RTP fixed header (RFC 3550 §5.1).
type rtpHead struct {
	pt   uint8
	seq  uint16
	ts   uint32
	ssrc uint32
}

// parseRTPHead reads the fixed header: version 2, at least 12 bytes.
func parseRTPHead(b []byte) (rtpHead, bool) {
	if len(b) < rtpHeader || b[0]>>6 != 2 {
		return rtpHead{}, false
	}
	return rtpHead{
		pt:   b[1] & 0x7f,
		seq:  binary.BigEndian.Uint16(b[2:]),
		ts:   binary.BigEndian.Uint32(b[4:]),
		ssrc: binary.BigEndian.Uint32(b[8:]),
	}, true
}

// putRTPHead writes a version-2 header with no CSRC, extension or padding.
func putRTPHead(b []byte, pt uint8, marker bool, seq uint16, ts, ssrc uint32) {
	b[0] = 0x80
	b[1] = pt & 0x7f
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], ssrc)
}

// rxStream is the receiver's view of one RTP stream: sequence numbers for
// loss (RFC 3550 §A.3, extended to 64 bits) and the interarrival jitter of
// §6.4.1 / §A.8 in timestamp units.
type rxStream struct {
	started  bool
	ssrc     uint32
	baseExt  uint64 // extended sequence number of the first packet
	maxExt   uint64 // extended highest sequence number
	received uint64
	// Jitter (§A.8), from the previous packet's arrival and timestamp.
	havePrev    bool
	prevAt      int64
	prevTS      uint32
	jitter      float64
	sinceSample int
}

// packet accounts one packet that arrived at arrivalNs (any fixed origin,
// nanoseconds). It reports whether a jitter sample is due (every
// sampleEvery packets), so the caller can record j.jitterMs().
func (s *rxStream) packet(h rtpHead, arrivalNs int64, sampleEvery int) bool {
	if !s.started || h.ssrc != s.ssrc {
		// A new stream (or SSRC): start over. The extended number starts
		// high enough that early reordering cannot underflow.
		ext := 1<<32 + uint64(h.seq)
		*s = rxStream{started: true, ssrc: h.ssrc, baseExt: ext, maxExt: ext}
	} else if d := int16(h.seq - uint16(s.maxExt)); d > 0 {
		s.maxExt += uint64(d)
	}
	s.received++
	// §6.4.1: D(i-1,i) = (Rj - Ri) - (Sj - Si); J += (|D| - J) / 16. The
	// timestamp difference is taken modulo 2^32 (streams start anywhere).
	if s.havePrev {
		d := float64(arrivalNs-s.prevAt)*clockRate/1e9 - float64(int32(h.ts-s.prevTS))
		s.jitter += (math.Abs(d) - s.jitter) / 16
	}
	s.prevAt, s.prevTS, s.havePrev = arrivalNs, h.ts, true
	s.sinceSample++
	if sampleEvery > 0 && s.sinceSample >= sampleEvery {
		s.sinceSample = 0
		return true
	}
	return false
}

// jitterMs is the current jitter estimate in milliseconds.
func (s *rxStream) jitterMs() float64 { return s.jitter * 1000 / clockRate }

// rxMark is a stream's counters at one instant, to difference windows.
type rxMark struct {
	baseExt, maxExt, received uint64
	started                   bool
}

func (s *rxStream) mark() rxMark {
	return rxMark{baseExt: s.baseExt, maxExt: s.maxExt, received: s.received, started: s.started}
}

// windowLoss returns what a stream should have received between two marks
// (from sequence numbers) and what it did receive. A stream that started
// inside the window counts from its first packet.
func windowLoss(a, b rxMark) (expected, received uint64) {
	if !b.started {
		return 0, 0
	}
	if !a.started {
		// Started in the window: count from its first packet.
		return b.maxExt - b.baseExt + 1, b.received
	}
	if b.maxExt >= a.maxExt {
		expected = b.maxExt - a.maxExt
	}
	return expected, b.received - a.received
}

// percentile returns the p-th percentile (0-100, nearest rank) of xs,
// which it sorts; NaN for none.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	slices.Sort(xs)
	rank := int(math.Ceil(p / 100 * float64(len(xs))))
	rank = min(max(rank, 1), len(xs))
	return xs[rank-1]
}
