//go:build opus

package codec

// Opus (RFC 6716) through libopus, the reference implementation, by cgo:
// built only with the opus tag, so that the default build stays pure Go.
// pkg-config finds the library (Debian: libopus-dev).

/*
#cgo pkg-config: opus
#include <opus.h>

// opus_encoder_ctl is variadic, which cgo cannot call: one wrapper per
// request used.
static int kaopu_opus_set_bitrate(OpusEncoder *e, opus_int32 v) {
	return opus_encoder_ctl(e, OPUS_SET_BITRATE(v));
}
static int kaopu_opus_set_signal_voice(OpusEncoder *e) {
	return opus_encoder_ctl(e, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE));
}
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"
)

// Opus is RFC 7587's opus/48000/2: the RTP clock is always 48 kHz and the
// rtpmap always says two channels, whatever the audio is; its payload type
// is dynamic (111 is what this side offers). This side codes mono at 48 kHz
// and says so in a=fmtp (stereo=0, sprop-stereo=0; RFC 7587 §6.1); a
// stereo stream from the other side is mixed down to mono by the decoder.
var Opus = Info{Name: "opus", PayloadType: 111, ClockRate: 48000, SampleRate: 48000, Channels: 2,
	Fmtp:       "stereo=0;sprop-stereo=0",
	NewEncoder: func() Encoder { return mustOpusEncoder() },
	NewDecoder: func() Decoder { return mustOpusDecoder() }}

// tagged lists the codecs of optional build tags: Opus in this build.
func tagged() []Info { return []Info{Opus} }

const (
	opusRate = 48000
	// opusBitrate is the encoder's target: ample for fullband voice
	// (RFC 7587 §3.1.1 puts it at 28-40 kbit/s).
	opusBitrate = 32000
	// opusMaxPacket is the largest packet opus_encode is given room for;
	// libopus's own tools use 1500 (one MTU), enough for 60 ms at any rate
	// this side asks for.
	opusMaxPacket = 1500
	// opusMaxFrame is 120 ms at 48 kHz, the longest an Opus packet
	// decodes to (RFC 6716 §3.2.5).
	opusMaxFrame = 5760
)

// opusFrameSizes are the frame lengths the encoder takes, in samples at
// 48 kHz: 2.5, 5, 10, 20, 40 and 60 ms (RFC 6716 §2.1.4).
var opusFrameSizes = [...]int{120, 240, 480, 960, 1920, 2880}

// OpusEncoder encodes 48 kHz mono PCM to Opus packets.
type OpusEncoder struct {
	st  *C.OpusEncoder
	pad []int16
}

// NewOpusEncoder returns an encoder for voice (OPUS_APPLICATION_VOIP) at
// 32 kbit/s. Its libopus state is freed when it is garbage collected.
func NewOpusEncoder() (*OpusEncoder, error) {
	var cerr C.int
	st := C.opus_encoder_create(opusRate, 1, C.OPUS_APPLICATION_VOIP, &cerr)
	if cerr != C.OPUS_OK || st == nil {
		return nil, fmt.Errorf("codec: opus_encoder_create: %s", C.GoString(C.opus_strerror(cerr)))
	}
	e := &OpusEncoder{st: st}
	runtime.AddCleanup(e, func(st *C.OpusEncoder) { C.opus_encoder_destroy(st) }, st)
	if r := C.kaopu_opus_set_bitrate(st, opusBitrate); r != C.OPUS_OK {
		return nil, fmt.Errorf("codec: OPUS_SET_BITRATE: %s", C.GoString(C.opus_strerror(r)))
	}
	if r := C.kaopu_opus_set_signal_voice(st); r != C.OPUS_OK {
		return nil, fmt.Errorf("codec: OPUS_SET_SIGNAL: %s", C.GoString(C.opus_strerror(r)))
	}
	return e, nil
}

// mustOpusEncoder is NewOpusEncoder for Info: creating an encoder with
// constant, valid arguments fails only when memory runs out.
func mustOpusEncoder() *OpusEncoder {
	e, err := NewOpusEncoder()
	if err != nil {
		panic(err)
	}
	return e
}

// Encode appends one Opus packet for pcm to dst. pcm should be 2.5, 5, 10,
// 20, 40 or 60 ms long; a shorter length is padded with silence to the
// next of these, and a longer one is cut at 60 ms.
func (e *OpusEncoder) Encode(dst []byte, pcm []int16) []byte {
	if len(pcm) == 0 {
		return dst
	}
	n := opusFrameSizes[len(opusFrameSizes)-1]
	for _, size := range opusFrameSizes {
		if size >= len(pcm) {
			n = size
			break
		}
	}
	if len(pcm) != n {
		e.pad = append(e.pad[:0], pcm[:min(len(pcm), n)]...)
		for len(e.pad) < n {
			e.pad = append(e.pad, 0)
		}
		pcm = e.pad
	}
	at := len(dst)
	dst = append(dst, make([]byte, opusMaxPacket)...)
	r := C.opus_encode(e.st, (*C.opus_int16)(unsafe.Pointer(&pcm[0])), C.int(n),
		(*C.uchar)(unsafe.Pointer(&dst[at])), opusMaxPacket)
	runtime.KeepAlive(e)
	if r < 0 {
		return dst[:at]
	}
	return dst[:at+int(r)]
}

// OpusDecoder decodes Opus packets, mono or stereo, to 48 kHz mono PCM.
type OpusDecoder struct {
	st  *C.OpusDecoder
	pcm []int16
}

// NewOpusDecoder returns a decoder; its libopus state is freed when it is
// garbage collected.
func NewOpusDecoder() (*OpusDecoder, error) {
	var cerr C.int
	st := C.opus_decoder_create(opusRate, 1, &cerr)
	if cerr != C.OPUS_OK || st == nil {
		return nil, fmt.Errorf("codec: opus_decoder_create: %s", C.GoString(C.opus_strerror(cerr)))
	}
	d := &OpusDecoder{st: st, pcm: make([]int16, opusMaxFrame)}
	runtime.AddCleanup(d, func(st *C.OpusDecoder) { C.opus_decoder_destroy(st) }, st)
	return d, nil
}

func mustOpusDecoder() *OpusDecoder {
	d, err := NewOpusDecoder()
	if err != nil {
		panic(err)
	}
	return d
}

// Decode appends the samples of one Opus packet to dst. An empty or
// corrupt packet appends nothing: the caller conceals the loss.
func (d *OpusDecoder) Decode(dst []int16, payload []byte) []int16 {
	if len(payload) == 0 {
		return dst
	}
	r := C.opus_decode(d.st, (*C.uchar)(unsafe.Pointer(&payload[0])), C.opus_int32(len(payload)),
		(*C.opus_int16)(unsafe.Pointer(&d.pcm[0])), opusMaxFrame, 0)
	runtime.KeepAlive(d)
	if r <= 0 {
		return dst
	}
	return append(dst, d.pcm[:r]...)
}
