package harness

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Message is a parsed SIP message: start line, header fields in the order
// received, body. It is deliberately lenient: it exists to inspect what the
// server sent, not to validate it.
type Message struct {
	StartLine string
	Headers   []Header
	Body      []byte
}

// Header is one header field line.
type Header struct{ Name, Value string }

// compactForms maps RFC 3261 §7.3.3 compact header names to full names.
var compactForms = map[string]string{
	"i": "call-id", "m": "contact", "e": "content-encoding", "l": "content-length",
	"c": "content-type", "f": "from", "s": "subject", "k": "supported", "t": "to",
	"v": "via", "o": "event", "u": "allow-events", "r": "refer-to", "b": "referred-by",
	"x": "session-expires",
}

// CanonicalName lower-cases a header name and expands compact forms.
func CanonicalName(name string) string {
	n := strings.ToLower(strings.TrimSpace(name))
	if full, ok := compactForms[n]; ok {
		return full
	}
	return n
}

// ParseMessage parses one SIP message (head and, when present, body).
func ParseMessage(b []byte) (*Message, error) {
	head, body, found := bytes.Cut(b, []byte("\r\n\r\n"))
	if !found {
		head, body, _ = bytes.Cut(b, []byte("\n\n"))
	}
	lines := strings.Split(strings.ReplaceAll(string(head), "\r\n", "\n"), "\n")
	if len(lines) == 0 || strings.TrimSpace(lines[0]) == "" {
		return nil, errors.New("empty message")
	}
	m := &Message{StartLine: strings.TrimSpace(lines[0]), Body: body}
	for _, line := range lines[1:] {
		if line == "" {
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && len(m.Headers) > 0 { // folded
			m.Headers[len(m.Headers)-1].Value += " " + strings.TrimSpace(line)
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("header line without colon: %q", line)
		}
		m.Headers = append(m.Headers, Header{strings.TrimSpace(name), strings.TrimSpace(value)})
	}
	return m, nil
}

// IsResponse reports whether the message is a response.
func (m *Message) IsResponse() bool { return strings.HasPrefix(m.StartLine, "SIP/2.0 ") }

// StatusCode is the status code of a response, 0 for a request.
func (m *Message) StatusCode() int {
	if !m.IsResponse() {
		return 0
	}
	f := strings.Fields(m.StartLine)
	if len(f) < 2 {
		return 0
	}
	c, _ := strconv.Atoi(f[1])
	return c
}

// Reason is the reason phrase of a response.
func (m *Message) Reason() string {
	parts := strings.SplitN(m.StartLine, " ", 3)
	if !m.IsResponse() || len(parts) < 3 {
		return ""
	}
	return parts[2]
}

// Status is "CODE Reason".
func (m *Message) Status() string { return strings.TrimPrefix(m.StartLine, "SIP/2.0 ") }

// Get is the value of the first header field named name ("" when absent).
func (m *Message) Get(name string) string {
	v := m.Values(name)
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// Has reports whether a header field named name is present.
func (m *Message) Has(name string) bool { return len(m.Values(name)) > 0 }

// Values are the values of every header field named name, in order.
func (m *Message) Values(name string) []string {
	want := CanonicalName(name)
	var out []string
	for _, h := range m.Headers {
		if CanonicalName(h.Name) == want {
			out = append(out, h.Value)
		}
	}
	return out
}

// HeaderNames is the sorted set of canonical header names.
func (m *Message) HeaderNames() []string {
	seen := map[string]bool{}
	var out []string
	for _, h := range m.Headers {
		n := CanonicalName(h.Name)
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// Contacts are the Contact values, one per contact even when several share a
// header line.
func (m *Message) Contacts() []string {
	var out []string
	for _, v := range m.Values("Contact") {
		out = append(out, SplitList(v)...)
	}
	return out
}

// CSeqMethod is the method in the CSeq header.
func (m *Message) CSeqMethod() string {
	f := strings.Fields(m.Get("CSeq"))
	if len(f) != 2 {
		return ""
	}
	return f[1]
}

// String is the message as text, for test logs.
func (m *Message) String() string {
	var sb strings.Builder
	sb.WriteString(m.StartLine + "\r\n")
	for _, h := range m.Headers {
		sb.WriteString(h.Name + ": " + h.Value + "\r\n")
	}
	sb.WriteString("\r\n")
	sb.Write(m.Body)
	return sb.String()
}

// SplitList splits a header value on commas that are outside quotes and
// angle brackets.
func SplitList(v string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == '<' && !quoted:
			depth++
		case c == '>' && !quoted:
			depth--
		case c == ',' && !quoted && depth == 0:
			out = append(out, strings.TrimSpace(v[start:i]))
			start = i + 1
		}
	}
	if s := strings.TrimSpace(v[start:]); s != "" {
		out = append(out, s)
	}
	return out
}

// ContactExpires is the expires parameter of one Contact value, -1 when absent.
func ContactExpires(contact string) int {
	// Parameters after the closing '>' belong to the header field; without
	// angle brackets they follow the URI.
	params := contact
	if i := strings.LastIndex(contact, ">"); i >= 0 {
		params = contact[i+1:]
	}
	for _, p := range strings.Split(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(k, "expires") {
			n, err := strconv.Atoi(strings.Trim(v, `" `))
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// ContactURI is the URI of one Contact value, without angle brackets or
// header parameters.
func ContactURI(contact string) string {
	if i := strings.Index(contact, "<"); i >= 0 {
		if j := strings.Index(contact[i:], ">"); j >= 0 {
			return contact[i+1 : i+j]
		}
	}
	uri, _, _ := strings.Cut(contact, ";")
	return strings.TrimSpace(uri)
}
