package ua

import (
	"strings"

	"github.com/kaopu/kaopu/internal/media/dtmf"
)

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
	if c := dtmf.Code(r); c >= 0 {
		return dtmf.Digit(c), true
	}
	return 0, false
}
