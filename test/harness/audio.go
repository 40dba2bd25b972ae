package harness

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"time"
)

// Audio is mono linear PCM, one float64 per sample in 16-bit units
// (-32768..32767).
type Audio struct {
	Rate    int // samples per second
	Samples []float64
}

// Duration is how long the audio plays.
func (a Audio) Duration() time.Duration {
	if a.Rate == 0 {
		return 0
	}
	return time.Duration(len(a.Samples)) * time.Second / time.Duration(a.Rate)
}

// Windows splits the audio into consecutive pieces of length d; a shorter
// tail is dropped.
func (a Audio) Windows(d time.Duration) []Audio {
	n := int(d * time.Duration(a.Rate) / time.Second)
	if n <= 0 {
		return nil
	}
	var out []Audio
	for i := 0; i+n <= len(a.Samples); i += n {
		out = append(out, Audio{Rate: a.Rate, Samples: a.Samples[i : i+n]})
	}
	return out
}

// Tone is the amplitude of the freq Hz component (Goertzel).
func (a Audio) Tone(freq float64) float64 { return Goertzel(a.Samples, a.Rate, freq) }

// Goertzel estimates the amplitude, in sample units, of the sinusoid at freq
// Hz in samples taken rate times a second: a pure tone of amplitude A at freq
// gives A. Tones other than freq give close to 0 when the window holds a
// whole number of their periods and of freq's, and leak a little otherwise.
func Goertzel(samples []float64, rate int, freq float64) float64 {
	n := len(samples)
	if n == 0 || rate <= 0 {
		return 0
	}
	w := 2 * math.Pi * freq / float64(rate)
	coeff := 2 * math.Cos(w)
	var s1, s2 float64 // s[n-1], s[n-2]
	for _, x := range samples {
		s1, s2 = x+coeff*s1-s2, s1
	}
	// |X(freq)|² of the n-point DFT at freq, scaled to an amplitude.
	power := s1*s1 + s2*s2 - coeff*s1*s2
	return 2 * math.Sqrt(math.Max(power, 0)) / float64(n)
}

// ToneWAV is d of a sine at freq Hz with the given peak amplitude
// (at most 32767), as a mono 16-bit PCM WAV file sampled at rate.
func ToneWAV(freq float64, rate int, d time.Duration, amplitude float64) []byte {
	n := int(d * time.Duration(rate) / time.Second)
	samples := make([]int16, n)
	for i := range samples {
		samples[i] = int16(math.Round(amplitude * math.Sin(2*math.Pi*freq*float64(i)/float64(rate))))
	}
	return EncodeWAV(rate, samples)
}

// EncodeWAV is a RIFF WAVE file of mono 16-bit PCM samples.
func EncodeWAV(rate int, samples []int16) []byte {
	var b bytes.Buffer
	le := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("RIFF")
	le(uint32(36 + 2*len(samples)))
	b.WriteString("WAVEfmt ")
	le(uint32(16))
	le(uint16(1)) // WAVE_FORMAT_PCM
	le(uint16(1)) // mono
	le(uint32(rate))
	le(uint32(2 * rate)) // bytes per second
	le(uint16(2))        // block align
	le(uint16(16))       // bits per sample
	b.WriteString("data")
	le(uint32(2 * len(samples)))
	le(samples)
	return b.Bytes()
}

// ReadWAV reads a 16-bit PCM WAV file (the format baresip's sndfile
// writes); of several channels it keeps the first.
func ReadWAV(path string) (Audio, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Audio{}, err
	}
	a, err := DecodeWAV(b)
	if err != nil {
		return Audio{}, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// DecodeWAV parses a 16-bit PCM RIFF WAVE file. A data chunk that claims
// more than the file holds (a writer that never finished) is read to the
// end of the file.
func DecodeWAV(b []byte) (Audio, error) {
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return Audio{}, errors.New("not a RIFF WAVE file")
	}
	var (
		a        Audio
		channels int
		haveFmt  bool
	)
	for p := 12; p+8 <= len(b); {
		id, size := string(b[p:p+4]), int(binary.LittleEndian.Uint32(b[p+4:p+8]))
		p += 8
		if size < 0 || p+size > len(b) {
			size = len(b) - p
		}
		chunk := b[p : p+size]
		switch id {
		case "fmt ":
			if len(chunk) < 16 {
				return Audio{}, errors.New("short fmt chunk")
			}
			format := binary.LittleEndian.Uint16(chunk[0:2])
			channels = int(binary.LittleEndian.Uint16(chunk[2:4]))
			a.Rate = int(binary.LittleEndian.Uint32(chunk[4:8]))
			bits := binary.LittleEndian.Uint16(chunk[14:16])
			// 0xFFFE is WAVE_FORMAT_EXTENSIBLE, PCM in practice here.
			if (format != 1 && format != 0xFFFE) || bits != 16 || channels < 1 || a.Rate <= 0 {
				return Audio{}, fmt.Errorf("format %#x, %d bits, %d channels at %d Hz: want 16-bit PCM",
					format, bits, channels, a.Rate)
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return Audio{}, errors.New("data chunk before fmt chunk")
			}
			frame := 2 * channels
			for i := 0; i+frame <= len(chunk); i += frame {
				a.Samples = append(a.Samples, float64(int16(binary.LittleEndian.Uint16(chunk[i:]))))
			}
			return a, nil
		}
		p += size + size%2 // chunks are padded to even sizes
	}
	return Audio{}, errors.New("no data chunk")
}
