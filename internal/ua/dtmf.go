package ua

import (
	"encoding/binary"
	"strings"
)

// RFC 4733 §3.2: the telephone-event payload is the event code (8 bits),
// the end bit, a reserved bit and 6 bits of volume (dBm0 below zero), then
// the duration in timestamp units (16 bits). DTMF digits are events 0-15
// (§3.2, table 7: 0-9, *, #, A-D) and 16 is flash.

const dtmfEvents = "0123456789*#ABCD"

// dtmfCode is the event code of a digit, -1 for a character that is not one.
func dtmfCode(r rune) int {
	if r >= 'a' && r <= 'd' {
		r -= 'a' - 'A'
	}
	return strings.IndexRune(dtmfEvents, r)
}

// dtmfDigit is the digit of an event code, 0 when it is not a DTMF event.
func dtmfDigit(code int) rune {
	if code < 0 || code >= len(dtmfEvents) {
		return 0
	}
	return rune(dtmfEvents[code])
}

type dtmfEvent struct {
	code     int
	end      bool
	volume   int
	duration uint16
}

func parseDTMFEvent(p []byte) (dtmfEvent, bool) {
	if len(p) < 4 {
		return dtmfEvent{}, false
	}
	return dtmfEvent{
		code:     int(p[0]),
		end:      p[1]&0x80 != 0,
		volume:   int(p[1] & 0x3F),
		duration: binary.BigEndian.Uint16(p[2:]),
	}, true
}

func (e dtmfEvent) append(b []byte) []byte {
	flags := byte(e.volume & 0x3F)
	if e.end {
		flags |= 0x80
	}
	return append(b, byte(e.code), flags, byte(e.duration>>8), byte(e.duration))
}

// parseInfoDTMF reads a digit from a SIP INFO body: application/dtmf-relay
// ("Signal=5\r\nDuration=160") or application/dtmf ("5").
func parseInfoDTMF(contentType string, body []byte) (rune, bool) {
	ct := strings.ToLower(strings.TrimSpace(strings.Split(contentType, ";")[0]))
	text := strings.TrimSpace(string(body))
	switch ct {
	case "application/dtmf-relay":
		for _, line := range strings.Split(text, "\n") {
			k, v, ok := strings.Cut(line, "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "signal") {
				text = strings.TrimSpace(v)
				break
			}
		}
	case "application/dtmf":
	default:
		return 0, false
	}
	if len(text) != 1 {
		// "10" and "11" are * and # in some phones' dtmf-relay.
		switch text {
		case "10":
			return '*', true
		case "11":
			return '#', true
		}
		return 0, false
	}
	r := rune(text[0])
	if c := dtmfCode(r); c >= 0 {
		return dtmfDigit(c), true
	}
	return 0, false
}
