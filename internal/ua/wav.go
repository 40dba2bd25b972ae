package ua

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/kaopu/kaopu/internal/media/codec"
	"github.com/kaopu/kaopu/internal/media/wav"
)

// AudioSource gives the audio a call sends: Read fills frame with the next
// samples at the rate the call asked for with Open. A source that runs out
// gives silence.
type AudioSource interface {
	Open(rate int) error
	Read(frame []int16)
	Close() error
}

// AudioSink takes the audio a call receives, one frame at a time, at the
// rate given to Open.
type AudioSink interface {
	Open(rate int) error
	Write(frame []int16) error
	Close() error
}

// WAVSource plays a mono or stereo 16-bit PCM WAV file (of any sample
// rate; the first channel of several) and then silence.
type WAVSource struct {
	Path string
	// Loop restarts the file at its end instead of falling silent.
	Loop bool

	pcm []int16
	pos int
}

// Open reads the file and converts it to rate.
func (w *WAVSource) Open(rate int) error {
	f, err := os.Open(w.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	samples, fileRate, err := ReadWAV(bufio.NewReader(f))
	if err != nil {
		return fmt.Errorf("%s: %w", w.Path, err)
	}
	w.pcm = codec.NewResampler(fileRate, rate).Process(nil, samples)
	w.pos = 0
	return nil
}

// Read fills frame with the next samples, silence after the end.
func (w *WAVSource) Read(frame []int16) {
	for i := range frame {
		if w.pos >= len(w.pcm) {
			if !w.Loop || len(w.pcm) == 0 {
				clear(frame[i:])
				return
			}
			w.pos = 0
		}
		frame[i] = w.pcm[w.pos]
		w.pos++
	}
}

// Close releases nothing: the file was read at Open.
func (w *WAVSource) Close() error { return nil }

// WAVSink records to a mono 16-bit PCM WAV file at the rate given to Open,
// or at Rate when that is set (resampling).
type WAVSink struct {
	Path string
	// Rate is the file's sample rate; 0 records at the call's rate.
	Rate int

	f   *os.File
	w   *bufio.Writer
	rs  *codec.Resampler
	n   int64 // data bytes written
	buf []int16
}

// Open creates the file and writes a header to be completed by Close.
func (s *WAVSink) Open(rate int) error {
	f, err := os.Create(s.Path)
	if err != nil {
		return err
	}
	fileRate := rate
	if s.Rate > 0 {
		fileRate = s.Rate
	}
	s.f, s.w, s.n = f, bufio.NewWriter(f), 0
	s.rs = codec.NewResampler(rate, fileRate)
	if _, err := s.w.Write(wavHeader(fileRate, 0)); err != nil {
		f.Close()
		return err
	}
	return nil
}

// Write appends one frame.
func (s *WAVSink) Write(frame []int16) error {
	if s.f == nil {
		return errors.New("ua: WAVSink not open")
	}
	s.buf = s.rs.Process(s.buf[:0], frame)
	if err := binary.Write(s.w, binary.LittleEndian, s.buf); err != nil {
		return err
	}
	s.n += int64(2 * len(s.buf))
	return nil
}

// Close completes the header with the data size and closes the file.
func (s *WAVSink) Close() error {
	if s.f == nil {
		return nil
	}
	f := s.f
	s.f = nil
	err := s.w.Flush()
	if err == nil {
		// Patch the RIFF and data chunk sizes.
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(36+s.n))
		_, err = f.WriteAt(b[:], 4)
		if err == nil {
			binary.LittleEndian.PutUint32(b[:], uint32(s.n))
			_, err = f.WriteAt(b[:], 40)
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func wavHeader(rate int, dataBytes uint32) []byte { return wav.Header(rate, dataBytes) }

// ReadWAV reads a RIFF WAVE file of 16-bit PCM and returns the first
// channel's samples and the sample rate (see wav.Read).
func ReadWAV(r io.Reader) (samples []int16, rate int, err error) { return wav.Read(r) }

// silence is the source of a call given no audio.
type silence struct{}

func (silence) Open(int) error      { return nil }
func (silence) Read(f []int16)      { clear(f) }
func (silence) Close() error        { return nil }
func (silence) Write([]int16) error { return nil }
