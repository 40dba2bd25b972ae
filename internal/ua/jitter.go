package ua

import (
	"math"
	"time"
)

// jitterBuffer reorders the received audio of one stream and hands out one
// frame per playout tick, concealing what is missing. Its delay adapts: it
// starts playing after startDelay, grows by a frame each time it runs dry
// (the packet due was late, not lost), and shrinks by dropping a frame when
// it has held more than the current jitter calls for over a whole second.
//
// Packets are keyed by their extended RTP timestamp, so any packet size
// works; the decoder runs in playout order, as ADPCM needs.
type jitterBuffer struct {
	frameTS      int64 // timestamp units per frame
	frameSamples int   // PCM samples per frame
	tsRatio      int   // PCM samples per timestamp unit (2 for G.722)
	clockRate    int
	decode       func(dst []int16, payload []byte) []int16

	packets  map[int64][]byte
	newest   int64 // highest extended timestamp buffered
	cursor   int64 // extended timestamp of the next frame to play
	started  bool
	firstAt  time.Time
	pcm      []int16 // decoded samples not yet played
	plc      plc
	overFor  int // consecutive ticks with more delay than needed
	lastTS   uint32
	haveTS   bool
	tsCycles int64

	// RFC 3550 §A.8 interarrival jitter, in timestamp units.
	jitter      float64
	lastTransit float64
	haveTransit bool
	epoch       time.Time

	stats jbStats
}

type jbStats struct {
	Played, Concealed, Late, Dropped, Resets int
}

const (
	jbStartDelay = 40 * time.Millisecond
	jbMaxPackets = 64
)

func newJitterBuffer(clockRate, sampleRate, frameMs int, decode func([]int16, []byte) []int16) *jitterBuffer {
	return &jitterBuffer{
		frameTS:      int64(clockRate * frameMs / 1000),
		frameSamples: sampleRate * frameMs / 1000,
		tsRatio:      max(1, sampleRate/clockRate),
		clockRate:    clockRate,
		decode:       decode,
		packets:      map[int64][]byte{},
		plc:          newPLC(sampleRate),
	}
}

// extend turns a 32-bit RTP timestamp into a monotonic 64-bit one.
func (j *jitterBuffer) extend(ts uint32) int64 {
	if !j.haveTS {
		j.haveTS, j.lastTS = true, ts
		return int64(ts)
	}
	diff := int32(ts - j.lastTS)
	if diff > 0 && ts < j.lastTS {
		j.tsCycles++
	} else if diff < 0 && ts > j.lastTS {
		// A late packet from before a wrap.
		return int64(ts) + (j.tsCycles-1)<<32
	}
	if diff > 0 {
		j.lastTS = ts
	}
	return int64(ts) + j.tsCycles<<32
}

// put stores one packet's payload, received at now.
func (j *jitterBuffer) put(ts uint32, payload []byte, now time.Time) {
	ext := j.extend(ts)
	// Interarrival jitter (RFC 3550 §6.4.1): transit time differences in
	// timestamp units, smoothed by 1/16.
	if j.epoch.IsZero() {
		j.epoch = now
	}
	arrival := now.Sub(j.epoch).Seconds() * float64(j.clockRate)
	transit := arrival - float64(ts)
	if j.haveTransit {
		d := math.Abs(transit - j.lastTransit)
		if d < float64(j.clockRate) { // ignore timestamp jumps
			j.jitter += (d - j.jitter) / 16
		}
	}
	j.lastTransit, j.haveTransit = transit, true

	if j.started {
		// A jump of more than two seconds either way is a new stream
		// (another source after a re-INVITE or transfer): start over.
		if d := ext - j.cursor; d > 2*int64(j.clockRate) || d < -2*int64(j.clockRate) {
			j.reset()
		} else if ext < j.cursor {
			j.stats.Late++
			return
		}
	}
	if _, dup := j.packets[ext]; dup {
		return
	}
	if len(j.packets) >= jbMaxPackets {
		j.stats.Dropped++
		return
	}
	j.packets[ext] = append([]byte(nil), payload...)
	if len(j.packets) == 1 && !j.started {
		j.firstAt = now
		j.newest = ext
	}
	j.newest = max(j.newest, ext)
}

func (j *jitterBuffer) reset() {
	clear(j.packets)
	j.pcm = j.pcm[:0]
	j.started = false
	j.stats.Resets++
}

// JitterMs is the current interarrival jitter estimate in milliseconds.
func (j *jitterBuffer) JitterMs() float64 { return j.jitter * 1000 / float64(j.clockRate) }

// target is the delay (in timestamp units) the buffer aims for: a frame
// plus three times the jitter, as the jitter's spread is about that wide.
func (j *jitterBuffer) target() int64 {
	return j.frameTS + int64(3*j.jitter)
}

// next fills frame with the next frame to play at now.
func (j *jitterBuffer) next(frame []int16, now time.Time) {
	if !j.started {
		if len(j.packets) == 0 || now.Sub(j.firstAt) < jbStartDelay {
			clear(frame)
			return
		}
		j.started = true
		j.cursor = j.newest
		for ts := range j.packets {
			j.cursor = min(j.cursor, ts)
		}
	}
	for len(j.pcm) < len(frame) {
		if p, ok := j.packets[j.cursor]; ok {
			delete(j.packets, j.cursor)
			before := len(j.pcm)
			j.pcm = j.decode(j.pcm, p)
			n := len(j.pcm) - before
			if n == 0 {
				// An empty payload: treat as a lost frame.
				j.pcm = j.plc.conceal(j.pcm, j.frameSamples)
				j.cursor += j.frameTS
				j.stats.Concealed++
				continue
			}
			j.plc.recover(j.pcm[before:])
			j.cursor += int64(n / j.tsRatio)
			j.stats.Played++
			continue
		}
		next, ok := j.following()
		if ok && next-j.cursor < j.frameTS {
			j.cursor = next // packets of another size: realign
			continue
		}
		j.pcm = j.plc.conceal(j.pcm, j.frameSamples)
		j.stats.Concealed++
		if ok {
			j.cursor += j.frameTS // lost: skip it
		}
		// Else the buffer ran dry: the frame due is late, not lost.
		// Keep waiting for it, which makes the delay one frame longer.
	}
	copy(frame, j.pcm)
	j.pcm = j.pcm[:copy(j.pcm, j.pcm[len(frame):])]
	j.plc.remember(frame)

	// Shrink: more buffered than the target for a whole second of ticks.
	if j.newest-j.cursor > j.target()+2*j.frameTS {
		j.overFor++
	} else {
		j.overFor = 0
	}
	if j.overFor >= 50 {
		j.overFor = 0
		delete(j.packets, j.cursor)
		j.cursor += j.frameTS
		j.stats.Dropped++
	}
}

// following returns the lowest buffered timestamp after the cursor, and
// drops any packets the cursor has passed.
func (j *jitterBuffer) following() (int64, bool) {
	var best int64
	found := false
	for ts := range j.packets {
		if ts < j.cursor {
			delete(j.packets, ts)
			j.stats.Late++
			continue
		}
		if !found || ts < best {
			best, found = ts, true
		}
	}
	return best, found
}

// plc conceals lost frames by repeating the last pitch period of what was
// played (found by autocorrelation), fading out after 10 ms and falling
// silent after 60 ms of loss, and cross-fades back into the real signal
// when packets return.
type plc struct {
	rate     int
	hist     []int16 // the last histLen samples played
	histLen  int
	minP     int
	maxP     int
	period   []int16 // the pitch period being repeated
	phase    int
	lost     int // samples concealed in the current burst
	fadeFrom int // lost samples at which the fade starts
	fadeLen  int
}

func newPLC(rate int) plc {
	maxP := rate * 15 / 1000 // 15 ms: below 67 Hz
	return plc{
		rate:     rate,
		histLen:  3 * maxP,
		minP:     rate * 25 / 10000, // 2.5 ms: above 400 Hz
		maxP:     maxP,
		fadeFrom: rate / 100,
		fadeLen:  rate / 20,
	}
}

// remember keeps the samples just played as history.
func (p *plc) remember(frame []int16) {
	p.hist = append(p.hist, frame...)
	if over := len(p.hist) - p.histLen; over > 0 {
		p.hist = p.hist[:copy(p.hist, p.hist[over:])]
	}
}

// conceal appends n synthetic samples to dst.
func (p *plc) conceal(dst []int16, n int) []int16 {
	if p.lost == 0 {
		p.period = append(p.period[:0], p.hist[len(p.hist)-p.findPeriod():]...)
		p.phase = 0
	}
	for range n {
		dst = append(dst, int16(float64(p.synth())*p.gain()))
		p.lost++
	}
	return dst
}

func (p *plc) synth() int16 {
	if len(p.period) == 0 {
		return 0
	}
	s := p.period[p.phase]
	p.phase = (p.phase + 1) % len(p.period)
	return s
}

func (p *plc) gain() float64 {
	switch {
	case p.lost < p.fadeFrom:
		return 1
	case p.lost >= p.fadeFrom+p.fadeLen:
		return 0
	}
	return 1 - float64(p.lost-p.fadeFrom)/float64(p.fadeLen)
}

// recover cross-fades the first 2.5 ms of real audio after a loss with the
// continued synthetic signal, so the seam does not click.
func (p *plc) recover(frame []int16) {
	if p.lost == 0 {
		return
	}
	n := min(len(frame), p.rate/400)
	for i := range n {
		w := float64(i+1) / float64(n+1)
		syn := float64(p.synth()) * p.gain()
		frame[i] = int16(max(-32768, min(32767, w*float64(frame[i])+(1-w)*syn)))
	}
	p.lost = 0
}

// findPeriod is the lag between minP and maxP with the highest normalized
// autocorrelation over the last maxP samples of history (the whole history
// when it is shorter than that can measure).
func (p *plc) findPeriod() int {
	h := p.hist
	if len(h) < 2*p.maxP {
		return len(h)
	}
	n, win := len(h), p.maxP
	best, bestLag := -1.0, p.maxP
	for lag := p.minP; lag <= p.maxP; lag++ {
		var xy, xx, yy float64
		for i := n - win; i < n; i++ {
			x, y := float64(h[i]), float64(h[i-lag])
			xy += x * y
			xx += x * x
			yy += y * y
		}
		if xx == 0 || yy == 0 {
			continue
		}
		if c := xy / math.Sqrt(xx*yy); c > best {
			best, bestLag = c, lag
		}
	}
	return bestLag
}
