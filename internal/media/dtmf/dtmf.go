package dtmf

import (
	"encoding/binary"
	"strings"
)

// Events is the digit of each DTMF event code, 0 to 15 (RFC 4733 §3.2).
const Events = "0123456789*#ABCD"

// Code is the event code of a digit (0-9, *, #, A-D, a-d), -1 for a
// character that is not one.
func Code(r rune) int {
	if r >= 'a' && r <= 'd' {
		r -= 'a' - 'A'
	}
	return strings.IndexRune(Events, r)
}

// Digit is the digit of an event code, 0 when it is not a DTMF event.
func Digit(code int) rune {
	if code < 0 || code >= len(Events) {
		return 0
	}
	return rune(Events[code])
}

// Event is one telephone-event payload.
type Event struct {
	Code     int
	End      bool
	Volume   int    // dBm0 below zero, 0-63
	Duration uint16 // in RTP timestamp units since the event's start
}

// Parse reads a telephone-event payload; false when it is too short.
func Parse(p []byte) (Event, bool) {
	if len(p) < 4 {
		return Event{}, false
	}
	return Event{
		Code:     int(p[0]),
		End:      p[1]&0x80 != 0,
		Volume:   int(p[1] & 0x3F),
		Duration: binary.BigEndian.Uint16(p[2:]),
	}, true
}

// Append appends e's 4-byte payload to b.
func (e Event) Append(b []byte) []byte {
	flags := byte(e.Volume & 0x3F)
	if e.End {
		flags |= 0x80
	}
	return append(b, byte(e.Code), flags, byte(e.Duration>>8), byte(e.Duration))
}

// Receiver turns the telephone-event packets of one RTP stream into
// digits, one per event: the first packet of an event (any packet with a
// timestamp not seen last) gives its digit, and the event's later packets,
// its end packet and their retransmissions give nothing. A lost start
// packet costs nothing as long as one packet of the event arrives. The
// zero value is ready; it is not safe for concurrent use.
type Receiver struct {
	last uint32
	have bool
}

// Packet takes the timestamp and payload of one telephone-event packet
// and returns the digit it starts, if it starts one. Events that are not
// DTMF digits (flash, tones) are consumed and give nothing.
func (r *Receiver) Packet(ts uint32, payload []byte) (rune, bool) {
	ev, ok := Parse(payload)
	if !ok || (r.have && ts == r.last) {
		return 0, false
	}
	r.have, r.last = true, ts
	d := Digit(ev.Code)
	return d, d != 0
}
