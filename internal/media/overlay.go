package media

import (
	"encoding/binary"
	"sync/atomic"
)

// overlay is audio laid over what a leg's peer hears (a warning tone): the
// payloads of the next relayed packets are replaced, their RTP headers
// kept, so the peer's jitter buffer sees one unbroken stream.
type overlay struct {
	audio map[string][]byte // encoded samples by codec name ("pcmu", "pcma")
	pos   atomic.Int64      // bytes of audio laid so far
}

// Overlay lays audio over the next packets this leg's peer is sent by the
// relay, until the audio runs out; audio maps a codec name ("pcmu",
// "pcma": one byte a sample) to the samples in that codec. Packets of
// other codecs, and telephone-events, pass untouched. An SRTP leg
// encrypts them as usual. A later Overlay replaces an unfinished one.
func (l *Leg) Overlay(audio map[string][]byte) {
	l.overlay.Store(&overlay{audio: audio})
}

// apply writes the next part of the audio over b's payload (b is a
// plain, parsed RTP packet of codec c) and reports whether the audio is
// used up. It never allocates.
func (o *overlay) apply(b []byte, c codec) (done bool) {
	src := o.audio[c.name]
	if src == nil || b[0]&0x20 != 0 { // another codec, or padding to keep
		return o.pos.Load() >= int64(maxLen(o.audio))
	}
	n := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 {
		n += 4 + 4*int(binary.BigEndian.Uint16(b[n+2:]))
	}
	payload := b[n:]
	start := o.pos.Add(int64(len(payload))) - int64(len(payload))
	if start >= int64(len(src)) {
		return true
	}
	copy(payload, src[start:])
	return start+int64(len(payload)) >= int64(len(src))
}

func maxLen(m map[string][]byte) int {
	n := 0
	for _, b := range m {
		n = max(n, len(b))
	}
	return n
}
