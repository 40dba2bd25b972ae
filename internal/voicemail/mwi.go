package voicemail

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Summary is a mailbox's message counts, as RFC 3842 reports them.
type Summary struct {
	New, Old int
}

// Waiting is the lamp: are there new messages?
func (s Summary) Waiting() bool { return s.New > 0 }

// ContentType is the type of a message-summary body (RFC 3842 §6).
const ContentType = "application/simple-message-summary"

// Body is the RFC 3842 §5.2 body of a NOTIFY for the mailbox of account
// (a SIP URI, may be ""): "Messages-Waiting", then the voice-message
// counts (urgent counts are not kept, so always 0).
func (s Summary) Body(account string) []byte {
	var b bytes.Buffer
	yes := "no"
	if s.Waiting() {
		yes = "yes"
	}
	fmt.Fprintf(&b, "Messages-Waiting: %s\r\n", yes)
	if account != "" {
		fmt.Fprintf(&b, "Message-Account: %s\r\n", account)
	}
	fmt.Fprintf(&b, "Voice-Message: %d/%d (0/0)\r\n", s.New, s.Old)
	return b.Bytes()
}

// ErrSummary: a message-summary body that does not follow RFC 3842.
var ErrSummary = errors.New("voicemail: malformed message-summary")

// ParseSummary reads a message-summary body (what a phone receives; the
// harness's phones and tests use it): the Messages-Waiting line is
// required, the voice-message counts are read when present; other
// message classes and headers are skipped. waiting is the
// Messages-Waiting value.
func ParseSummary(body []byte) (s Summary, waiting bool, err error) {
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 1024), 64*1024)
	seen := false
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue // a blank line, or the optional message headers
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "messages-waiting":
			switch strings.ToLower(value) {
			case "yes":
				waiting = true
			case "no":
			default:
				return Summary{}, false, fmt.Errorf("%w: Messages-Waiting %q", ErrSummary, value)
			}
			seen = true
		case "voice-message":
			// new/old [(urgent-new/urgent-old)]
			counts, _, _ := strings.Cut(value, " ")
			n, o, ok := strings.Cut(counts, "/")
			if !ok {
				return Summary{}, false, fmt.Errorf("%w: Voice-Message %q", ErrSummary, value)
			}
			if s.New, err = count(n); err == nil {
				s.Old, err = count(o)
			}
			if err != nil {
				return Summary{}, false, fmt.Errorf("%w: Voice-Message %q", ErrSummary, value)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return Summary{}, false, fmt.Errorf("%w: %w", ErrSummary, err)
	}
	if !seen {
		return Summary{}, false, fmt.Errorf("%w: no Messages-Waiting", ErrSummary)
	}
	return s, waiting, nil
}

func count(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 || n > 1_000_000 {
		return 0, ErrSummary
	}
	return n, nil
}
