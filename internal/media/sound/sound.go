package sound

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/kaopu/kaopu/internal/media/codec"
)

var (
	// ErrNoDevice means the machine has no sound system or no default
	// capture or playback device.
	ErrNoDevice = errors.New("no sound device")
	// ErrNotBuilt means this binary was built without the soundcard tag.
	ErrNotBuilt = errors.New("this kaopu was built without sound card support (build it with -tags soundcard)")
)

// periodMs is the device period asked for: short, for latency, and long
// enough that a Go callback per period keeps up. frameMs is the call's
// frame (internal/ua sends and plays 20 ms at a time).
const (
	periodMs = 10
	frameMs  = 20
)

// Card is the machine's default capture and playback devices.
type Card struct {
	sys system
}

// system is what a sound library gives: devices that call back with
// 16-bit mono samples at their rate.
type system interface {
	// openCapture starts the default capture device; push gets what it
	// records.
	openCapture(push func([]int16)) (device, error)
	// openPlayback starts the default playback device; pull fills what
	// it plays.
	openPlayback(pull func([]int16)) (device, error)
	close() error
}

type device interface {
	rate() int
	close() error
}

// Open finds the default capture and playback devices (see the package
// documentation); it returns ErrNoDevice, wrapped with the reason, when
// there are none.
func Open() (*Card, error) {
	sys, err := openSystem()
	if err != nil {
		return nil, err
	}
	return &Card{sys: sys}, nil
}

// Close releases the sound system; close every Source and Sink first.
func (c *Card) Close() error { return c.sys.close() }

// Source is the microphone: an AudioSource of internal/ua.
func (c *Card) Source() *Source { return &Source{card: c} }

// Sink is the speaker: an AudioSink of internal/ua.
func (c *Card) Sink() *Sink { return &Sink{card: c} }

// Source records from the default capture device. A call opens and
// closes it; when a transfer hands it to a new call before the old one
// closes it, the device stays open for the new call, at the new call's
// rate.
type Source struct {
	card  *Card
	mu    sync.Mutex
	dev   device
	opens int
	q     atomic.Pointer[captureQueue]
}

// Open starts the device and converts its audio to rate.
func (s *Source) Open(rate int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dev == nil {
		// The device's thread may call back before the queue, which
		// needs the device's rate, exists: until then what it records
		// is dropped.
		dev, err := s.card.sys.openCapture(func(pcm []int16) {
			if q := s.q.Load(); q != nil {
				q.push(pcm)
			}
		})
		if err != nil {
			return err
		}
		s.dev = dev
	}
	s.q.Store(newCaptureQueue(s.dev.rate(), rate))
	s.opens++
	return nil
}

// Read fills frame with the oldest recorded frame, or silence while the
// device has not recorded a frame yet.
func (s *Source) Read(frame []int16) {
	if q := s.q.Load(); q != nil {
		q.read(frame)
		return
	}
	clear(frame)
}

// Close stops the device once every Open has been closed.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opens == 0 {
		return nil
	}
	if s.opens--; s.opens > 0 {
		return nil
	}
	err := s.dev.close()
	s.dev = nil
	return err
}

// Sink plays to the default playback device; like Source, it may be
// opened again before it is closed.
type Sink struct {
	card  *Card
	mu    sync.Mutex
	dev   device
	opens int
	q     atomic.Pointer[playbackQueue]
}

// Open starts the device; frames come at rate.
func (s *Sink) Open(rate int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dev == nil {
		dev, err := s.card.sys.openPlayback(func(out []int16) {
			if q := s.q.Load(); q != nil {
				q.pull(out)
			} else {
				clear(out)
			}
		})
		if err != nil {
			return err
		}
		s.dev = dev
	}
	s.q.Store(newPlaybackQueue(rate, s.dev.rate(), rate*frameMs/1000))
	s.opens++
	return nil
}

// Write queues one frame to play.
func (s *Sink) Write(frame []int16) error {
	if q := s.q.Load(); q != nil {
		q.write(frame)
	}
	return nil
}

// Close stops the device once every Open has been closed.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opens == 0 {
		return nil
	}
	if s.opens--; s.opens > 0 {
		return nil
	}
	err := s.dev.close()
	s.dev = nil
	return err
}

// captureQueue holds recorded audio, converted to the call's rate, from
// the device's thread until the call's clock reads it.
type captureQueue struct {
	mu      sync.Mutex
	rs      *codec.Resampler
	buf     []int16
	maxLag  int // samples kept at most beyond one frame
	stats   queueStats
	scratch []int16
}

// queueStats count the glitches: reads or device periods that found the
// queue empty, and samples dropped to keep the delay down.
type queueStats struct {
	Underruns int
	Dropped   int
}

func newCaptureQueue(deviceRate, callRate int) *captureQueue {
	return &captureQueue{rs: codec.NewResampler(deviceRate, callRate), maxLag: callRate * (20 + periodMs) / 1000}
}

func (q *captureQueue) push(pcm []int16) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.scratch = q.rs.Process(q.scratch[:0], pcm)
	q.buf = append(q.buf, q.scratch...)
}

func (q *captureQueue) read(frame []int16) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.buf) < len(frame) {
		clear(frame)
		q.stats.Underruns++
		return
	}
	copy(frame, q.buf)
	n := copy(q.buf, q.buf[len(frame):])
	q.buf = q.buf[:n]
	// The device's clock ran ahead of the call's: drop the oldest.
	if excess := len(q.buf) - q.maxLag; excess > 0 {
		q.buf = q.buf[:copy(q.buf, q.buf[excess:])]
		q.stats.Dropped += excess
	}
}

// playbackQueue holds received audio, converted to the device's rate,
// from the call's clock until the device's thread plays it.
type playbackQueue struct {
	mu      sync.Mutex
	rs      *codec.Resampler
	buf     []int16
	playing bool
	prime   int // samples to hold before playing: a frame and a period
	max     int // samples held at most
	stats   queueStats
	scratch []int16
}

func newPlaybackQueue(callRate, deviceRate, frameSamples int) *playbackQueue {
	frame := frameSamples * deviceRate / callRate
	return &playbackQueue{rs: codec.NewResampler(callRate, deviceRate),
		prime: frame + deviceRate*periodMs/1000, max: deviceRate / 10}
}

func (q *playbackQueue) write(frame []int16) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.scratch = q.rs.Process(q.scratch[:0], frame)
	q.buf = append(q.buf, q.scratch...)
	if excess := len(q.buf) - q.max; excess > 0 {
		// Frames came faster than the device plays: back to the
		// priming level.
		cut := len(q.buf) - q.prime
		q.buf = q.buf[:copy(q.buf, q.buf[cut:])]
		q.stats.Dropped += cut
	}
}

func (q *playbackQueue) pull(out []int16) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.playing && len(q.buf) >= q.prime {
		q.playing = true
	}
	if !q.playing {
		clear(out)
		return
	}
	n := copy(out, q.buf)
	q.buf = q.buf[:copy(q.buf, q.buf[n:])]
	if n < len(out) {
		// Ran dry: silence, and wait to be primed again.
		clear(out[n:])
		q.playing = false
		q.stats.Underruns++
	}
}
