package wav

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Header is the 44-byte header of a mono 16-bit PCM file at rate holding
// dataBytes of samples.
func Header(rate int, dataBytes uint32) []byte {
	b := make([]byte, 0, 44)
	le32 := func(v uint32) { b = binary.LittleEndian.AppendUint32(b, v) }
	le16 := func(v uint16) { b = binary.LittleEndian.AppendUint16(b, v) }
	b = append(b, "RIFF"...)
	le32(36 + dataBytes)
	b = append(b, "WAVEfmt "...)
	le32(16)
	le16(1) // PCM
	le16(1) // mono
	le32(uint32(rate))
	le32(uint32(2 * rate))
	le16(2)
	le16(16)
	b = append(b, "data"...)
	le32(dataBytes)
	return b
}

// Read reads a RIFF WAVE file of 16-bit PCM and returns the first
// channel's samples and the sample rate. A data chunk whose size says more
// than the file holds (a writer that never finished) is read to the end.
func Read(r io.Reader) (samples []int16, rate int, err error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil || string(hdr[:4]) != "RIFF" || string(hdr[8:]) != "WAVE" {
		return nil, 0, errors.New("not a RIFF WAVE file")
	}
	channels := 0
	for {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			return nil, 0, errors.New("no data chunk")
		}
		id, size := string(ch[:4]), int64(binary.LittleEndian.Uint32(ch[4:]))
		switch id {
		case "fmt ":
			if size < 16 || size > 1<<16 {
				return nil, 0, errors.New("bad fmt chunk")
			}
			b := make([]byte, size+size%2)
			if _, err := io.ReadFull(r, b); err != nil {
				return nil, 0, err
			}
			format := binary.LittleEndian.Uint16(b[0:])
			channels = int(binary.LittleEndian.Uint16(b[2:]))
			rate = int(binary.LittleEndian.Uint32(b[4:]))
			bits := binary.LittleEndian.Uint16(b[14:])
			if (format != 1 && format != 0xFFFE) || bits != 16 || channels < 1 || rate < 1000 || rate > 192000 {
				return nil, 0, fmt.Errorf("format %#x, %d bits, %d channels at %d Hz: want 16-bit PCM", format, bits, channels, rate)
			}
		case "data":
			if channels == 0 {
				return nil, 0, errors.New("data chunk before fmt chunk")
			}
			data, err := io.ReadAll(io.LimitReader(r, size))
			if err != nil {
				return nil, 0, err
			}
			frame := 2 * channels
			samples = make([]int16, 0, len(data)/frame)
			for i := 0; i+frame <= len(data); i += frame {
				samples = append(samples, int16(binary.LittleEndian.Uint16(data[i:])))
			}
			return samples, rate, nil
		default:
			if _, err := io.CopyN(io.Discard, r, size+size%2); err != nil {
				return nil, 0, errors.New("no data chunk")
			}
		}
	}
}
