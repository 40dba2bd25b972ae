package pbx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/kaopu/kaopu/internal/ivr"
	"github.com/kaopu/kaopu/internal/media/codec"
	"github.com/kaopu/kaopu/internal/media/wav"
)

// MaxPrompt is the longest menu prompt accepted.
const MaxPrompt = 5 * time.Minute

// ConvertPrompt turns a WAV file of 16-bit PCM at any rate into what
// menus play, a WAV file of 8 kHz mono 16-bit PCM: the first channel,
// resampled. It returns the file and how long it plays.
func ConvertPrompt(in []byte) ([]byte, time.Duration, error) {
	pcm, rate, err := wav.Read(bytes.NewReader(in))
	if err != nil {
		return nil, 0, fmt.Errorf("prompt: %w", err)
	}
	if rate != ivr.Rate {
		pcm = codec.NewResampler(rate, ivr.Rate).Process(nil, pcm)
	}
	d := ivr.Audio(pcm).Duration()
	switch {
	case len(pcm) == 0:
		return nil, 0, errors.New("prompt: no audio")
	case d > MaxPrompt:
		return nil, 0, fmt.Errorf("prompt: %v long, at most %v", d.Round(time.Second), MaxPrompt)
	}
	out := wav.Header(ivr.Rate, uint32(2*len(pcm)))
	for _, s := range pcm {
		out = binary.LittleEndian.AppendUint16(out, uint16(s))
	}
	return out, d, nil
}

// decodePrompt reads a stored prompt, which must be 8 kHz (ConvertPrompt).
func decodePrompt(b []byte) (ivr.Audio, error) {
	pcm, rate, err := wav.Read(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	if rate != ivr.Rate {
		return nil, fmt.Errorf("prompt at %d Hz, want %d", rate, ivr.Rate)
	}
	return pcm, nil
}
