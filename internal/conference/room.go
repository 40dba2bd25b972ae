package conference

import (
	"sync"
	"time"

	"github.com/kaopu/kaopu/internal/ivr"
)

const (
	frameSamples = ivr.FrameSamples
	framePeriod  = 20 * time.Millisecond
	// Input jitter buffer: play starts at 40 ms held; at most 120 ms.
	inPrime, inCap = 2 * frameSamples, 6 * frameSamples
	// Output buffer between the room's clock and the endpoint's: the two
	// 20 ms clocks run at the same rate but in any phase.
	outPrime, outCap = 2 * frameSamples, 5 * frameSamples
)

// participant is one caller in a room: the ivr.Frames its endpoint is
// connected to. Its endpoint's goroutines write input and read output;
// the room's clock does the opposite, under mu.
type participant struct {
	id     string
	joined time.Time

	mu  sync.Mutex
	in  pcmBuffer
	out pcmBuffer

	// The room clock's frames (room.mu).
	inFrame, outFrame []int16
}

func newParticipant(id string) *participant {
	return &participant{id: id, joined: time.Now(),
		in: newPCMBuffer(inCap, inPrime), out: newPCMBuffer(outCap, outPrime),
		inFrame: make([]int16, frameSamples), outFrame: make([]int16, frameSamples)}
}

// Heard implements ivr.Frames: the caller's audio into the jitter buffer.
func (p *participant) Heard(pcm []int16) {
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
	mixer  *Mixer

	mu      sync.Mutex
	parts   []*participant
	ins     [][]int16 // parts' inFrame, in order (rebuilt on join and leave)
	outs    [][]int16
	tone    ivr.Audio // join or leave tone being mixed in
	stop    chan struct{}
	stopped chan struct{}
}

func newRoom(number string) *room {
	return &room{number: number, mixer: NewMixer(frameSamples)}
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
		n := min(len(r.tone), frameSamples)
		tone, r.tone = r.tone[:n], r.tone[n:]
	}
	for _, p := range r.parts {
		addSat(p.outFrame, tone)
		p.mu.Lock()
		p.out.write(p.outFrame)
		p.mu.Unlock()
	}
}
