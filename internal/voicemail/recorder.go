package voicemail

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/kaopu/kaopu/internal/ivr"
	"github.com/kaopu/kaopu/internal/media/wav"
)

// silenceLevel is the mean absolute sample value under which a frame
// counts as silence: about -50 dBFS, below a quiet voice and above the
// comfort noise and line hiss of a phone.
const silenceLevel = 100

// recorder is the ivr.Frames a deposit connects while recording: it keeps
// what the caller says (at ivr.Rate), up to max samples, and tells when
// the message is over (full, or silent for silence samples). It sends the
// caller silence.
type recorder struct {
	mu       sync.Mutex
	pcm      []int16
	max      int
	silence  int // samples of silence that end the message
	quiet    int // samples of silence at the end of pcm
	done     chan struct{}
	finished bool
}

func newRecorder(maxLen, silence time.Duration) *recorder {
	return &recorder{max: samples(maxLen), silence: samples(silence), done: make(chan struct{}),
		pcm: make([]int16, 0, min(samples(maxLen), 60*ivr.Rate))}
}

func samples(d time.Duration) int { return int(d * ivr.Rate / time.Second) }

// Heard keeps a frame of the caller's audio (on the endpoint's receive
// goroutine: it only appends).
func (r *recorder) Heard(pcm []int16) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return
	}
	room := r.max - len(r.pcm)
	if len(pcm) > room {
		pcm = pcm[:room]
	}
	r.pcm = append(r.pcm, pcm...)
	if level(pcm) < silenceLevel {
		r.quiet += len(pcm)
	} else {
		r.quiet = 0
	}
	if len(r.pcm) >= r.max || (r.silence > 0 && r.quiet >= r.silence) {
		r.finished = true
		close(r.done)
	}
}

// Next sends silence while recording.
func (r *recorder) Next(frame []int16) { clear(frame) }

// level is a frame's mean absolute sample value.
func level(pcm []int16) int {
	if len(pcm) == 0 {
		return 0
	}
	sum := 0
	for _, s := range pcm {
		if s < 0 {
			sum -= int(s)
		} else {
			sum += int(s)
		}
	}
	return sum / len(pcm)
}

// message is what was recorded, its trailing silence cut down to a
// quarter of a second (the caller who stopped talking and waited, or hung
// up a moment later).
func (r *recorder) message() ivr.Audio {
	r.mu.Lock()
	defer r.mu.Unlock()
	keep := len(r.pcm) - max(0, r.quiet-ivr.Rate/4)
	return append(ivr.Audio(nil), r.pcm[:keep]...)
}

// encodeWAV writes 8 kHz mono 16-bit PCM as a WAV file.
func encodeWAV(a ivr.Audio) []byte {
	b := wav.Header(ivr.Rate, uint32(2*len(a)))
	for _, s := range a {
		b = binary.LittleEndian.AppendUint16(b, uint16(s))
	}
	return b
}
