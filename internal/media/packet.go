package media

import (
	"encoding/binary"
	"strings"
)

// packetKind is what a datagram on a media port is, by its first bytes.
type packetKind uint8

const (
	kindOther packetKind = iota
	kindRTP
	kindRTCP
	kindSTUN
	kindDTLS
)

// classify sorts a datagram by its first byte as RFC 7983 §7 does (0-3 STUN,
// 20-63 DTLS, 128-191 RTP or RTCP), then RTP from RTCP by the second byte
// (RFC 5761 §4: RTCP packet types 192-223 are RTP marker+payload types
// 64-95, which RTP must therefore not use). It looks at no more than two
// bytes and does not validate the rest.
func classify(b []byte) packetKind {
	if len(b) == 0 {
		return kindOther
	}
	switch c := b[0]; {
	case c <= 3:
		return kindSTUN
	case c >= 20 && c <= 63:
		return kindDTLS
	case c >= 128 && c <= 191:
		if len(b) >= 2 && b[1] >= 192 && b[1] <= 223 {
			return kindRTCP
		}
		return kindRTP
	}
	return kindOther
}

// rtpHeader is the part of the RTP fixed header (RFC 3550 §5.1) the relay
// needs. CSRCs and extensions are skipped, never copied.
type rtpHeader struct {
	pt     uint8
	marker bool
	seq    uint16
	ts     uint32
	ssrc   uint32
}

// parseRTP validates b as an RTP packet (RFC 3550 §5.1 and the checks of
// §A.1 that need no state): version 2, not an RTCP type, and a header whose
// CSRC list, extension and padding fit in the datagram. It never allocates.
func parseRTP(b []byte) (h rtpHeader, ok bool) {
	if len(b) < 12 || b[0]>>6 != 2 || classify(b) != kindRTP {
		return h, false
	}
	n := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 { // header extension (RFC 3550 §5.3.1)
		if len(b) < n+4 {
			return h, false
		}
		n += 4 + 4*int(binary.BigEndian.Uint16(b[n+2:]))
	}
	if n > len(b) {
		return h, false
	}
	if b[0]&0x20 != 0 { // padding: the last octet counts itself too
		pad := int(b[len(b)-1])
		if pad == 0 || n+pad > len(b) {
			return h, false
		}
	}
	h.marker = b[1]&0x80 != 0
	h.pt = b[1] & 0x7f
	h.seq = binary.BigEndian.Uint16(b[2:])
	h.ts = binary.BigEndian.Uint32(b[4:])
	h.ssrc = binary.BigEndian.Uint32(b[8:])
	return h, true
}

// validRTCP reports whether b is a well-formed compound RTCP packet
// (RFC 3550 §6.1 and the checks of §A.2): every packet has version 2, an
// RTCP type (192-223, RFC 5761 §4), a length that fits, padding only in the
// last one, and the lengths add up to the datagram. Like RFC 5506
// (reduced-size RTCP), it does not insist that the first packet be an SR or
// RR. It never allocates.
func validRTCP(b []byte) bool {
	if len(b) < 4 {
		return false
	}
	for len(b) > 0 {
		if len(b) < 4 || b[0]>>6 != 2 || b[1] < 192 || b[1] > 223 {
			return false
		}
		n := (int(binary.BigEndian.Uint16(b[2:])) + 1) * 4
		if n > len(b) || (b[0]&0x20 != 0 && n != len(b)) {
			return false
		}
		b = b[n:]
	}
	return true
}

// codec is one negotiated payload format, normalised for comparison.
type codec struct {
	name  string // lower case, e.g. "pcmu", "telephone-event"
	rate  uint32 // RTP clock rate, Hz
	event bool   // RFC 4733 telephone-event: timestamps do not advance per packet
}

// PayloadType is one payload format negotiated in SDP (an m= format with
// its a=rtpmap).
type PayloadType struct {
	// Number is the RTP payload type, 0-127.
	Number uint8
	// Name is the encoding name ("PCMU", "telephone-event"); empty means
	// the RFC 3551 static name for static numbers.
	Name string
	// ClockRate is the RTP clock rate; 0 means the RFC 3551 rate for static
	// numbers and 8000 otherwise. Note G.722's is 8000 (RFC 3551 §4.5.2).
	ClockRate uint32
}

// payloadTable maps payload type numbers to codecs: index+1 into codecs, 0
// for not negotiated.
type payloadTable struct {
	index  [128]uint8
	codecs []codec
}

func newPayloadTable(pts []PayloadType) (payloadTable, error) {
	var t payloadTable
	for _, p := range pts {
		if p.Number > 127 || t.index[p.Number] != 0 {
			return payloadTable{}, ErrPayloadType
		}
		name, rate := staticPayload(p.Number)
		if p.Name != "" {
			name = strings.ToLower(p.Name)
		}
		if p.ClockRate != 0 {
			rate = p.ClockRate
		}
		t.codecs = append(t.codecs, codec{name: name, rate: rate, event: name == "telephone-event"})
		t.index[p.Number] = uint8(len(t.codecs))
	}
	return t, nil
}

// lookup returns the codec of payload type pt and whether it was negotiated.
func (t *payloadTable) lookup(pt uint8) (codec, bool) {
	i := t.index[pt&0x7f]
	if i == 0 {
		return codec{}, false
	}
	return t.codecs[i-1], true
}

// staticPayload gives the name and clock rate of RFC 3551 §6's static
// payload types, and ("", 8000) for the others.
func staticPayload(pt uint8) (string, uint32) {
	switch pt {
	case 0:
		return "pcmu", 8000
	case 3:
		return "gsm", 8000
	case 4:
		return "g723", 8000
	case 5:
		return "dvi4", 8000
	case 6:
		return "dvi4", 16000
	case 7:
		return "lpc", 8000
	case 8:
		return "pcma", 8000
	case 9:
		return "g722", 8000
	case 10, 11:
		return "l16", 44100
	case 12:
		return "qcelp", 8000
	case 13:
		return "cn", 8000
	case 14:
		return "mpa", 90000
	case 15:
		return "g728", 8000
	case 16:
		return "dvi4", 11025
	case 17:
		return "dvi4", 22050
	case 18:
		return "g729", 8000
	case 25:
		return "celb", 90000
	case 26:
		return "jpeg", 90000
	case 28:
		return "nv", 90000
	case 31:
		return "h261", 90000
	case 32:
		return "mpv", 90000
	case 33:
		return "mp2t", 90000
	case 34:
		return "h263", 90000
	}
	return "", 8000
}
