package main

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// A minimal SIP message (RFC 3261 §7): enough for the driver's two user
// agents, over UDP only.
type sipMsg struct {
	method string // requests
	uri    string // requests
	status int    // responses
	reason string
	hdrs   []sipHeader // in order, names canonical (long form)
	body   []byte
}

type sipHeader struct{ name, value string }

// compact header forms, RFC 3261 §7.3.3.
var compactNames = map[string]string{
	"v": "Via", "f": "From", "t": "To", "i": "Call-ID", "m": "Contact",
	"l": "Content-Length", "c": "Content-Type", "k": "Supported", "s": "Subject",
}

func canonicalName(n string) string {
	if long, ok := compactNames[strings.ToLower(n)]; ok {
		return long
	}
	switch strings.ToLower(n) {
	case "call-id":
		return "Call-ID"
	case "cseq":
		return "CSeq"
	case "www-authenticate":
		return "WWW-Authenticate"
	}
	parts := strings.Split(strings.ToLower(n), "-")
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "-")
}

var errSIP = errors.New("malformed SIP message")

// parseSIP parses one datagram. Headers folded over lines (obsolete but
// legal) are unfolded; the body is cut to Content-Length.
func parseSIP(b []byte) (*sipMsg, error) {
	head, body, ok := bytes.Cut(b, []byte("\r\n\r\n"))
	if !ok {
		return nil, fmt.Errorf("%w: no end of headers", errSIP)
	}
	lines := strings.Split(string(head), "\r\n")
	m := &sipMsg{}
	first := lines[0]
	if rest, ok := strings.CutPrefix(first, "SIP/2.0 "); ok {
		code, reason, _ := strings.Cut(rest, " ")
		n, err := strconv.Atoi(code)
		if err != nil || n < 100 || n > 699 {
			return nil, fmt.Errorf("%w: status line %q", errSIP, first)
		}
		m.status, m.reason = n, reason
	} else {
		f := strings.Fields(first)
		if len(f) != 3 || f[2] != "SIP/2.0" {
			return nil, fmt.Errorf("%w: request line %q", errSIP, first)
		}
		m.method, m.uri = f[0], f[1]
	}
	for _, l := range lines[1:] {
		if l == "" {
			continue
		}
		if (l[0] == ' ' || l[0] == '\t') && len(m.hdrs) > 0 {
			m.hdrs[len(m.hdrs)-1].value += " " + strings.TrimSpace(l)
			continue
		}
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			return nil, fmt.Errorf("%w: header line %q", errSIP, l)
		}
		m.hdrs = append(m.hdrs, sipHeader{canonicalName(strings.TrimSpace(name)), strings.TrimSpace(value)})
	}
	if cl := m.get("Content-Length"); cl != "" {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 || n > len(body) {
			return nil, fmt.Errorf("%w: Content-Length %q with %d body bytes", errSIP, cl, len(body))
		}
		body = body[:n]
	}
	m.body = body
	return m, nil
}

// get returns the first value of a header, "" if absent.
func (m *sipMsg) get(name string) string {
	for _, h := range m.hdrs {
		if h.name == name {
			return h.value
		}
	}
	return ""
}

// values returns every line of a header, unsplit (for challenges, which
// hold commas).
func (m *sipMsg) values(name string) []string {
	var out []string
	for _, h := range m.hdrs {
		if h.name == name {
			out = append(out, h.value)
		}
	}
	return out
}

// all returns every value of a header, split at commas that are not in
// quotes or angle brackets (several values may share a line).
func (m *sipMsg) all(name string) []string {
	var out []string
	for _, h := range m.hdrs {
		if h.name == name {
			out = append(out, splitHeaderList(h.value)...)
		}
	}
	return out
}

func splitHeaderList(v string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"' && (i == 0 || v[i-1] != '\\'):
			quoted = !quoted
		case quoted:
		case c == '<':
			depth++
		case c == '>':
			depth--
		case c == ',' && depth == 0:
			out = append(out, strings.TrimSpace(v[start:i]))
			start = i + 1
		}
	}
	if s := strings.TrimSpace(v[start:]); s != "" {
		out = append(out, s)
	}
	return out
}

// cseq returns the CSeq number and method.
func (m *sipMsg) cseq() (uint32, string) {
	num, method, _ := strings.Cut(m.get("CSeq"), " ")
	n, _ := strconv.ParseUint(strings.TrimSpace(num), 10, 32)
	return uint32(n), strings.TrimSpace(method)
}

// tagOf returns the tag parameter of a From or To value.
func tagOf(v string) string {
	// Parameters after the closing '>' (or the whole value without one).
	if i := strings.LastIndexByte(v, '>'); i >= 0 {
		v = v[i+1:]
	}
	for _, p := range strings.Split(v, ";") {
		if k, val, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(k, "tag") {
			return val
		}
	}
	return ""
}

// uriOf returns the URI inside <...> of a name-addr, or the bare value up to
// its first ';'.
func uriOf(v string) string {
	if i := strings.IndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i:], '>'); j > 0 {
			return v[i+1 : i+j]
		}
	}
	u, _, _ := strings.Cut(strings.TrimSpace(v), ";")
	return u
}

// userOf returns the user part of a sip: URI.
func userOf(uri string) string {
	rest, ok := strings.CutPrefix(uri, "sip:")
	if !ok {
		return ""
	}
	user, _, ok := strings.Cut(rest, "@")
	if !ok {
		return ""
	}
	return user
}

// String renders the message for the wire, with a correct Content-Length.
func (m *sipMsg) String() string {
	var b strings.Builder
	if m.method != "" {
		fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", m.method, m.uri)
	} else {
		fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", m.status, m.reason)
	}
	for _, h := range m.hdrs {
		if h.name == "Content-Length" {
			continue
		}
		fmt.Fprintf(&b, "%s: %s\r\n", h.name, h.value)
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(m.body))
	b.Write(m.body)
	return b.String()
}

func (m *sipMsg) add(name, value string) { m.hdrs = append(m.hdrs, sipHeader{name, value}) }

// response builds a response to req (RFC 3261 §8.2.6): Via, From, Call-ID,
// CSeq and Record-Route copied, To given a tag when toTag is set and it
// has none.
func response(req *sipMsg, status int, reason, toTag string) *sipMsg {
	r := &sipMsg{status: status, reason: reason}
	for _, h := range req.hdrs {
		switch h.name {
		case "Via", "From", "Call-ID", "CSeq", "Record-Route":
			r.hdrs = append(r.hdrs, h)
		case "To":
			v := h.value
			if toTag != "" && tagOf(v) == "" {
				v += ";tag=" + toTag
			}
			r.hdrs = append(r.hdrs, sipHeader{"To", v})
		}
	}
	return r
}

// sdpMedia returns the c= address and first audio m= port of an SDP body.
func sdpMedia(body []byte) (netip.AddrPort, error) {
	var ip netip.Addr
	var port int
	var mediaIP netip.Addr
	inAudio := false
	for _, line := range strings.Split(string(body), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "c="):
			f := strings.Fields(line[2:])
			if len(f) == 3 {
				a, err := netip.ParseAddr(f[2])
				if err != nil {
					return netip.AddrPort{}, fmt.Errorf("SDP %q: %w", line, err)
				}
				if inAudio {
					mediaIP = a
				} else if port == 0 {
					ip = a
				}
			}
		case strings.HasPrefix(line, "m="):
			f := strings.Fields(line[2:])
			inAudio = false
			if len(f) >= 3 && f[0] == "audio" && port == 0 {
				p, err := strconv.Atoi(f[1])
				if err != nil || p <= 0 || p > 65535 {
					return netip.AddrPort{}, fmt.Errorf("SDP %q: bad port", line)
				}
				port, inAudio = p, true
			}
		}
	}
	if mediaIP.IsValid() {
		ip = mediaIP
	}
	if !ip.IsValid() || port == 0 {
		return netip.AddrPort{}, errors.New("SDP without c= address or audio m= port")
	}
	return netip.AddrPortFrom(ip, uint16(port)), nil
}

// offerSDP is a phone's PCMU offer or answer for media at addr.
func offerSDP(addr netip.AddrPort, sessID uint64) []byte {
	return []byte(fmt.Sprintf("v=0\r\no=- %d 1 IN IP4 %s\r\ns=relaybench\r\nc=IN IP4 %s\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n",
		sessID, addr.Addr(), addr.Addr(), addr.Port()))
}

// srtpSDP is offerSDP with an SDES key (an a=crypto value) in transport
// proto (RTP/SAVP, or RTP/AVP in an answer to a best-effort offer).
func srtpSDP(addr netip.AddrPort, sessID uint64, proto, crypto string) []byte {
	return []byte(fmt.Sprintf("v=0\r\no=- %d 1 IN IP4 %s\r\ns=relaybench\r\nc=IN IP4 %s\r\nt=0 0\r\n"+
		"m=audio %d %s 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\na=crypto:%s\r\n",
		sessID, addr.Addr(), addr.Addr(), addr.Port(), proto, crypto))
}

// digestParams parses the parameters of a Digest challenge.
func digestParams(ch string) (map[string]string, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(ch), "Digest ")
	if !ok {
		return nil, false
	}
	out := map[string]string{}
	for _, p := range splitHeaderList(rest) {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		out[strings.ToLower(strings.TrimSpace(k))] = strings.Trim(strings.TrimSpace(v), `"`)
	}
	return out, true
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// digestAnswer answers an MD5 challenge (RFC 2617 §3.2.2; qop=auth when
// offered) for user/password, method and uri.
func digestAnswer(challenge, user, password, method, uri, cnonce string) (string, error) {
	p, ok := digestParams(challenge)
	if !ok {
		return "", errors.New("not a Digest challenge")
	}
	if a := p["algorithm"]; a != "" && !strings.EqualFold(a, "MD5") {
		return "", fmt.Errorf("algorithm %s (want MD5)", a)
	}
	ha1 := md5hex(user + ":" + p["realm"] + ":" + password)
	ha2 := md5hex(method + ":" + uri)
	qop := ""
	for _, q := range strings.Split(p["qop"], ",") {
		if strings.TrimSpace(q) == "auth" {
			qop = "auth"
		}
	}
	var resp string
	if qop == "" {
		resp = md5hex(ha1 + ":" + p["nonce"] + ":" + ha2)
	} else {
		resp = md5hex(ha1 + ":" + p["nonce"] + ":00000001:" + cnonce + ":auth:" + ha2)
	}
	v := fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=MD5`,
		user, p["realm"], p["nonce"], uri, resp)
	if qop != "" {
		v += fmt.Sprintf(`, qop=auth, nc=00000001, cnonce="%s"`, cnonce)
	}
	if op := p["opaque"]; op != "" {
		v += fmt.Sprintf(`, opaque="%s"`, op)
	}
	return v, nil
}

// pickMD5 returns the first MD5 challenge of a list.
func pickMD5(challenges []string) (string, bool) {
	for _, c := range challenges {
		p, ok := digestParams(c)
		if ok && (p["algorithm"] == "" || strings.EqualFold(p["algorithm"], "MD5")) {
			return c, true
		}
	}
	return "", false
}
