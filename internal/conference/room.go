package conference

import (
	"sync"
	"time"

	"github.com/kaopu/kaopu/internal/ivr"
	"github.com/kaopu/kaopu/internal/media/codec"
)

const (
	// mixRate is the rate rooms mix at: wideband, so G.722 callers hear
	// each other in full; G.711 callers are resampled to and from it.
	mixRate      = 16000
	frameSamples = ivr.FrameSamples // at 8 kHz
	framePeriod  = 20 * time.Millisecond
	// Input jitter buffer: play starts at 40 ms held; at most 120 ms.
	inPrimeFrames, inCapFrames = 2, 6
	// Output buffer between the room's clock and the endpoint's: the two
	// 20 ms clocks run at the same rate but in any phase.
	outPrimeFrames, outCapFrames = 2, 5
	// maxHeard is the most samples one payload brings (ivr: 1500 bytes of
	// G.722, two samples a byte); more are cut.
	maxHeard = 3000
)

// samplesPerFrame is a 20 ms frame's length at rate.
func samplesPerFrame(rate int) int { return rate / 50 }

// participant is one caller in a room: the ivr.Frames its endpoint is
// connected to. Its endpoint's goroutines write input and read output;
// the room's clock does the opposite, under mu.
// Its input buffer holds audio at the room's rate, its output buffer at
// its own (the endpoint's): a participant at another rate than the room's
// is resampled on the way in (on the receive goroutine) and out (on the
// room's clock).
type participant struct {
	id     string
	rate   int
	joined time.Time

	mu  sync.Mutex
	in  pcmBuffer
	out pcmBuffer

	up     *codec.Resampler // rate -> room's; nil when the same (Heard's)
	upBuf  []int16
	down   *codec.Resampler // room's -> rate; nil when the same (room.mu)
	downTo []int16

	// The room clock's frames, at the room's rate (room.mu).
	inFrame, outFrame []int16
}

func newParticipant(id string, rate, roomRate int) *participant {
	n, own := samplesPerFrame(roomRate), samplesPerFrame(rate)
	p := &participant{id: id, rate: rate, joined: time.Now(),
		in:      newPCMBuffer(inCapFrames*n, inPrimeFrames*n),
		out:     newPCMBuffer(outCapFrames*own, outPrimeFrames*own),
		inFrame: make([]int16, n), outFrame: make([]int16, n)}
	if rate != roomRate {
		p.up, p.upBuf = codec.NewResampler(rate, roomRate), make([]int16, 0, maxHeard*roomRate/rate+64)
		p.down, p.downTo = codec.NewResampler(roomRate, rate), make([]int16, 0, own+64)
	}
	return p
}

// Heard implements ivr.Frames: the caller's audio into the jitter buffer.
func (p *participant) Heard(pcm []int16) {
	pcm = pcm[:min(len(pcm), maxHeard)]
	if p.up != nil {
		pcm = p.up.Process(p.upBuf[:0], pcm)
	}
	p.mu.Lock()
	p.in.write(pcm)
	p.mu.Unlock()
}

// Next implements ivr.Frames: the mix for the caller, or silence.
func (p *participant) Next(frame []int16) {
	p.mu.Lock()
	p.out.read(frame)
	p.mu.Unlock()
}

// room is a conference in progress: its participants and its clock.
type room struct {
	number string
	rate   int
	frame  int // samples a frame at rate
	mixer  *Mixer

	mu      sync.Mutex
	parts   []*participant
	ins     [][]int16 // parts' inFrame, in order (rebuilt on join and leave)
	outs    [][]int16
	tone    ivr.Audio // join or leave tone being mixed in
	stop    chan struct{}
	stopped chan struct{}
}

func newRoom(number string, rate int) *room {
	n := samplesPerFrame(rate)
	return &room{number: number, rate: rate, frame: n, mixer: NewMixer(n)}
}

// add puts p in the room, starts the clock for the first one and mixes
// tone in for everyone. It returns how many are in the room now.
func (r *room) add(p *participant, tone ivr.Audio) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.parts = append(r.parts, p)
	r.rebuild()
	r.tone = tone
	if r.stop == nil {
		r.stop, r.stopped = make(chan struct{}), make(chan struct{})
		go r.run(r.stop, r.stopped)
	}
	return len(r.parts)
}

// remove takes p out of the room, mixes tone in for those left and stops
// the clock when nobody is left. It returns how many are left.
func (r *room) remove(p *participant, tone ivr.Audio) int {
	r.mu.Lock()
	for i, q := range r.parts {
		if q == p {
			r.parts = append(r.parts[:i], r.parts[i+1:]...)
			break
		}
	}
	r.rebuild()
	r.tone = tone
	left := len(r.parts)
	var stopped chan struct{}
	if left == 0 && r.stop != nil {
		close(r.stop)
		stopped = r.stopped
		r.stop, r.stopped = nil, nil
	}
	r.mu.Unlock()
	if stopped != nil {
		<-stopped
	}
	return left
}

func (r *room) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.parts)
}

func (r *room) rebuild() {
	r.ins, r.outs = r.ins[:0], r.outs[:0]
	for _, p := range r.parts {
		r.ins = append(r.ins, p.inFrame)
		r.outs = append(r.outs, p.outFrame)
	}
}

// run is the room's clock: one mix every 20 ms until stop closes. A late
// tick is not made up for: the jitter buffers absorb it.
func (r *room) run(stop, stopped chan struct{}) {
	defer close(stopped)
	t := time.NewTicker(framePeriod)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			r.tick()
		}
	}
}

// tick mixes one frame: every participant's next input frame (silence
// when late), each one's mix of the others plus the tone under way,
// queued for its endpoint. It allocates nothing.
func (r *room) tick() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.parts {
		p.mu.Lock()
		p.in.read(p.inFrame)
		p.mu.Unlock()
	}
	r.mixer.Mix(r.ins, r.outs)
	var tone ivr.Audio
	if len(r.tone) > 0 {
		n := min(len(r.tone), r.frame)
		tone, r.tone = r.tone[:n], r.tone[n:]
	}
	for _, p := range r.parts {
		addSat(p.outFrame, tone)
		out := p.outFrame
		if p.down != nil {
			out = p.down.Process(p.downTo[:0], out)
		}
		p.mu.Lock()
		p.out.write(out)
		p.mu.Unlock()
	}
}
