package sdpx

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// Bounds on untrusted input, checked before and after parsing.
const (
	// MaxSize is the largest SDP body Parse accepts, in bytes.
	MaxSize = 16 << 10
	// MaxMedia is the largest number of m= sections Parse accepts.
	MaxMedia = 16
	// MaxPayloadTypes is the largest number of formats on one m= line.
	MaxPayloadTypes = 64
	// MaxAttributes is the largest number of a= lines Parse accepts, all
	// sections together (a browser's audio and video offer has about 150).
	MaxAttributes = 512
)

// Direction is a stream's a=sendrecv/sendonly/recvonly/inactive attribute
// (RFC 4566 §6, RFC 3264 §5.1), seen from the side that wrote the SDP. The
// zero value is SendRecv, the default when no attribute is given.
type Direction uint8

// Directions.
const (
	SendRecv Direction = iota
	SendOnly
	RecvOnly
	Inactive
)

// String returns the attribute name.
func (d Direction) String() string {
	switch d {
	case SendOnly:
		return "sendonly"
	case RecvOnly:
		return "recvonly"
	case Inactive:
		return "inactive"
	}
	return "sendrecv"
}

// Sends reports whether the writer of the SDP sends media.
func (d Direction) Sends() bool { return d == SendRecv || d == SendOnly }

// Receives reports whether the writer of the SDP wants to receive media.
func (d Direction) Receives() bool { return d == SendRecv || d == RecvOnly }

func directionOf(key string) (Direction, bool) {
	switch key {
	case "sendrecv":
		return SendRecv, true
	case "sendonly":
		return SendOnly, true
	case "recvonly":
		return RecvOnly, true
	case "inactive":
		return Inactive, true
	}
	return 0, false
}

// PT is one RTP payload format of a stream: an m= format number with its
// a=rtpmap and a=fmtp. Number, Name and ClockRate are what
// media.PayloadType wants.
type PT struct {
	// Number is the RTP payload type, 0-127.
	Number uint8
	// Name is the encoding name ("PCMU", "opus", "telephone-event"), from
	// a=rtpmap or, for static payload types without one, from RFC 3551 §6.
	// Well-known names are spelled the registered way whatever the case
	// the peer used. Empty for a number nobody named.
	Name string
	// ClockRate is the RTP clock rate in Hz (8000 for G.722, RFC 3551
	// §4.5.2).
	ClockRate uint32
	// Channels is the number of audio channels, 1 when a=rtpmap omits it
	// (opus is always 2, RFC 7587 §7).
	Channels uint8
	// Fmtp is the a=fmtp parameter string, as written ("0-16",
	// "minptime=10;useinbandfec=1"), or empty.
	Fmtp string
}

// String returns the payload type as in a=rtpmap: "101 telephone-event/8000".
func (p PT) String() string {
	s := strconv.Itoa(int(p.Number)) + " " + p.Name + "/" + strconv.FormatUint(uint64(p.ClockRate), 10)
	if p.Channels > 1 {
		s += "/" + strconv.Itoa(int(p.Channels))
	}
	return s
}

// Media is one m= line as written: what the B2BUA needs to reject a stream
// (answer it with port 0) or to offer it disabled on the other leg.
type Media struct {
	// Kind is the media type: audio, video, text, application or message.
	Kind string
	// Port is the transport port; 0 means the stream is disabled or
	// rejected (RFC 3264 §5.1, §6).
	Port int
	// Proto is the transport protocol: RTP/AVP, RTP/SAVP, RTP/AVPF,
	// UDP/TLS/RTP/SAVPF...
	Proto string
	// Formats are the m= line's format tokens, in order.
	Formats []string
}

// Stream is the audio stream the B2BUA anchors: the session's first RTP
// audio m= section, with the attributes that matter for relaying it.
type Stream struct {
	Media
	// Index is the position of the stream among the session's m= lines.
	Index int
	// Addr is the connection address: the media-level c= if there is one,
	// else the session-level c=. 0.0.0.0 (or ::) is RFC 2543 hold, or an
	// ICE placeholder when ICE is set.
	Addr netip.Addr
	// PTs are the payload types, in m= line order.
	PTs []PT
	// Ptime and MaxPtime are a=ptime and a=maxptime in milliseconds, 0
	// when absent.
	Ptime, MaxPtime int
	// Direction is the direction attribute, media-level over session-level.
	Direction Direction
	// RTCP is the a=rtcp address (RFC 3605), its address defaulting to
	// Addr; zero when absent (RTCP then goes to port + 1, RFC 3550 §11).
	RTCP netip.AddrPort
	// RTCPMux is set when a=rtcp-mux (RFC 5761) was offered.
	RTCPMux bool
	// Crypto holds the a=crypto values (RFC 4568 SDES-SRTP keys) verbatim:
	// they carry keys, so never log them; SelectCrypto and AnswerCrypto
	// read them.
	Crypto []string
	// Fingerprint and Setup are a=fingerprint and a=setup (DTLS-SRTP,
	// RFC 8842), media-level over session-level.
	Fingerprint, Setup string
	// ICE is set when the stream carries ICE attributes (a=candidate,
	// a=ice-ufrag, a=ice-pwd, a=ice-lite; RFC 8839): a WebRTC peer.
	ICE bool
}

// Disabled reports whether the stream is disabled (port 0).
func (st *Stream) Disabled() bool { return st.Port == 0 }

// Secure reports whether the transport requires SRTP (RTP/SAVP, RTP/SAVPF,
// UDP/TLS/RTP/SAVPF).
func (st *Stream) Secure() bool { return secureProto(st.Proto) }

func secureProto(proto string) bool {
	return strings.Contains(proto, "SAVP") || strings.Contains(proto, "TLS")
}

// Effective returns the direction the stream really has. RFC 3264 §8.4: a
// c= address of 0.0.0.0 is the older way of putting a stream on hold: the
// writer receives nothing, so its receive half is dropped (sendrecv becomes
// sendonly, recvonly becomes inactive). WebRTC peers write 0.0.0.0 as an
// ICE placeholder (RFC 8839 §4.2.1.2), which means nothing of the kind.
func (st *Stream) Effective() Direction {
	if !st.Addr.IsUnspecified() || st.ICE {
		return st.Direction
	}
	switch st.Direction {
	case SendRecv:
		return SendOnly
	case RecvOnly:
		return Inactive
	}
	return st.Direction
}

// Session is a parsed offer or answer, reduced to what the B2BUA needs.
type Session struct {
	// SessionID and Version are the peer's o= sess-id and sess-version.
	// An unchanged version means an unchanged SDP (RFC 3264 §8), as in a
	// session refresh re-INVITE.
	SessionID, Version uint64
	// Media lists every m= line in order; Media[Audio.Index] is the
	// anchored audio stream. The others are reported so that the caller
	// can reject them (Rewrite writes them with port 0).
	Media []Media
	// Audio is the first RTP audio stream.
	Audio Stream
}

// Remote gives the relay what it needs to send to the peer that wrote s:
// the RTP address (c= and m= port), the RTCP address (a=rtcp, else port + 1)
// and the payload types. For a disabled stream both addresses are zero; for
// a held one (c=0.0.0.0) the RTP address is unspecified, which media.Remote
// takes as "send nothing until latched". The PTs map field by field onto
// media.PayloadType (Number, Name, ClockRate).
func (s *Session) Remote() (rtp, rtcp netip.AddrPort, pts []PT) {
	st := &s.Audio
	pts = slices.Clone(st.PTs)
	if st.Disabled() {
		return netip.AddrPort{}, netip.AddrPort{}, pts
	}
	rtp = netip.AddrPortFrom(st.Addr, uint16(st.Port))
	switch {
	case st.RTCP.IsValid():
		rtcp = st.RTCP
	case st.Port < 65535:
		rtcp = netip.AddrPortFrom(st.Addr, uint16(st.Port+1))
	}
	return rtp, rtcp, pts
}

// Parse validates an SDP offer or answer received from the network and
// extracts the first RTP audio stream. It accepts what RFC 4566 allows and
// real peers send (LF or CRLF line ends, a missing final line end), and
// rejects with ErrTooLarge, ErrMalformed, ErrNoAudio or ErrUnsupported
// (wrapped, with the reason) what the B2BUA cannot relay. Malformed
// optional attributes it does not need (a=ptime, a=rtcp) are ignored, as
// RFC 4566 §5.13 allows; a broken a=rtpmap or a=fmtp is an error.
func Parse(body []byte) (*Session, error) {
	if len(body) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(body), MaxSize)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, fmt.Errorf("%w: empty body", ErrMalformed)
	}
	// Count m= lines before handing the body to the parser, so that a body
	// of thousands of tiny sections is refused cheaply.
	n := bytes.Count(body, []byte("\nm=")) + bytes.Count(body, []byte("\rm="))
	if bytes.HasPrefix(body, []byte("m=")) {
		n++
	}
	if n > MaxMedia {
		return nil, fmt.Errorf("%w: %d media sections, limit %d", ErrTooLarge, n, MaxMedia)
	}
	na := bytes.Count(body, []byte("\na=")) + bytes.Count(body, []byte("\ra="))
	if bytes.HasPrefix(body, []byte("a=")) {
		na++
	}
	if na > MaxAttributes {
		return nil, fmt.Errorf("%w: %d attributes, limit %d", ErrTooLarge, na, MaxAttributes)
	}
	text := string(body)
	if !strings.HasSuffix(text, "\n") {
		text += "\r\n" // pion needs a line end after attribute lines
	}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(text); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(sd.MediaDescriptions) > MaxMedia {
		return nil, fmt.Errorf("%w: %d media sections, limit %d", ErrTooLarge, len(sd.MediaDescriptions), MaxMedia)
	}

	s := &Session{
		SessionID: sd.Origin.SessionID,
		Version:   sd.Origin.SessionVersion,
		Media:     make([]Media, len(sd.MediaDescriptions)),
	}
	audio := -1
	for i, md := range sd.MediaDescriptions {
		m := &s.Media[i]
		mn := &md.MediaName
		if len(mn.Formats) > MaxPayloadTypes {
			return nil, fmt.Errorf("%w: m=%s line %d has %d formats, limit %d", ErrTooLarge, mn.Media, i+1, len(mn.Formats), MaxPayloadTypes)
		}
		m.Kind = intern(mn.Media)
		m.Port = mn.Port.Value
		m.Proto = intern(strings.Join(mn.Protos, "/"))
		m.Formats = make([]string, len(mn.Formats))
		for j, f := range mn.Formats {
			if !isToken(f) {
				return nil, fmt.Errorf("%w: m=%s line %d: bad format %q", ErrMalformed, mn.Media, i+1, f)
			}
			m.Formats[j] = internFormat(f)
		}
		if audio < 0 && m.Kind == "audio" && slices.Contains(mn.Protos, "RTP") {
			if mn.Port.Range != nil && *mn.Port.Range != 1 {
				return nil, fmt.Errorf("%w: audio port range %s", ErrUnsupported, mn.Port.String())
			}
			audio = i
		}
	}
	if audio < 0 {
		return nil, ErrNoAudio
	}
	if err := parseStream(&sd, audio, s.Media[audio], &s.Audio); err != nil {
		return nil, err
	}
	return s, nil
}

func parseStream(sd *sdp.SessionDescription, index int, m Media, st *Stream) error {
	md := sd.MediaDescriptions[index]
	st.Media = m
	st.Index = index
	if len(m.Formats) == 0 {
		return fmt.Errorf("%w: audio m= line lists no formats", ErrMalformed)
	}

	// c=: media level over session level (RFC 4566 §5.7).
	ci := md.ConnectionInformation
	if ci == nil || ci.Address == nil {
		ci = sd.ConnectionInformation
	}
	if ci == nil || ci.Address == nil {
		return fmt.Errorf("%w: audio stream has no c= address", ErrMalformed)
	}
	addr, err := parseAddr(ci.AddressType, ci.Address.Address)
	if err != nil {
		return err
	}
	st.Addr = addr

	// Payload types, in m= order.
	var seen [128]int // index+1 into st.PTs
	st.PTs = make([]PT, len(m.Formats))
	for i, f := range m.Formats {
		n, err := strconv.ParseUint(f, 10, 8)
		if err != nil || n > 127 {
			return fmt.Errorf("%w: audio payload type %q is not 0-127", ErrMalformed, f)
		}
		if seen[n] != 0 {
			return fmt.Errorf("%w: audio payload type %d listed twice", ErrMalformed, n)
		}
		seen[n] = i + 1
		st.PTs[i] = staticPT(uint8(n))
	}

	// Session-level defaults. Of several direction attributes, the first
	// counts.
	direction := false
	for _, a := range sd.Attributes {
		if d, ok := directionOf(a.Key); ok {
			if !direction {
				st.Direction, direction = d, true
			}
			continue
		}
		switch a.Key {
		case "fingerprint":
			st.Fingerprint = strings.Clone(a.Value)
		case "setup":
			st.Setup = strings.Clone(a.Value)
		case "ice-ufrag", "ice-pwd", "ice-lite":
			st.ICE = true
		}
	}

	var mapped, withFmtp [128]bool
	direction = false
	for _, a := range md.Attributes {
		if d, ok := directionOf(a.Key); ok {
			if !direction {
				st.Direction, direction = d, true
			}
			continue
		}
		switch a.Key {
		case "rtpmap":
			n, name, rate, ch, err := parseRtpmap(a.Value)
			if err != nil {
				return err
			}
			if seen[n] == 0 || mapped[n] {
				continue // not on the m= line, or a repeat: ignored
			}
			mapped[n] = true
			p := &st.PTs[seen[n]-1]
			p.Name, p.ClockRate, p.Channels = name, rate, ch
		case "fmtp":
			num, params, _ := strings.Cut(a.Value, " ")
			n, err := strconv.ParseUint(num, 10, 8)
			if err != nil || n > 127 {
				return fmt.Errorf("%w: a=fmtp:%s", ErrMalformed, a.Value)
			}
			params = strings.TrimSpace(params)
			if !isText(params) {
				return fmt.Errorf("%w: a=fmtp:%d has control characters", ErrMalformed, n)
			}
			if seen[n] == 0 || withFmtp[n] {
				continue
			}
			withFmtp[n] = true
			st.PTs[seen[n]-1].Fmtp = strings.Clone(params)
		case "ptime":
			st.Ptime = parseMillis(a.Value)
		case "maxptime":
			st.MaxPtime = parseMillis(a.Value)
		case "rtcp":
			st.RTCP = parseRTCP(a.Value, st.Addr)
		case "rtcp-mux":
			st.RTCPMux = true
		case "crypto":
			st.Crypto = append(st.Crypto, strings.Clone(a.Value))
		case "fingerprint":
			st.Fingerprint = strings.Clone(a.Value)
		case "setup":
			st.Setup = strings.Clone(a.Value)
		case "candidate", "ice-ufrag", "ice-pwd":
			st.ICE = true
		}
	}
	for i := range st.PTs {
		canonical(&st.PTs[i])
	}
	return nil
}

// parseAddr checks a c= address. Host names are allowed by RFC 4566 but
// would have to be resolved, and multicast makes no sense for a relay
// (and would let a caller point our media at a group), so both are refused.
func parseAddr(addrType, s string) (netip.Addr, error) {
	addr, err := netip.ParseAddr(s)
	if err != nil {
		if strings.Contains(s, "/") {
			return netip.Addr{}, fmt.Errorf("%w: c= %s has a TTL or range (multicast)", ErrUnsupported, s)
		}
		return netip.Addr{}, fmt.Errorf("%w: c= %q is not an IP address", ErrUnsupported, s)
	}
	switch {
	case addr.Zone() != "":
		return netip.Addr{}, fmt.Errorf("%w: c= %s has a zone", ErrMalformed, s)
	case addrType == "IP4" && !addr.Is4():
		return netip.Addr{}, fmt.Errorf("%w: c=IN IP4 with address %s", ErrMalformed, s)
	case addrType == "IP6" && !addr.Is6():
		return netip.Addr{}, fmt.Errorf("%w: c=IN IP6 with address %s", ErrMalformed, s)
	case addr.IsMulticast():
		return netip.Addr{}, fmt.Errorf("%w: multicast c= %s", ErrUnsupported, s)
	}
	return addr.Unmap(), nil
}

// parseRtpmap parses "<pt> <name>/<rate>[/<channels>]" (RFC 4566 §6).
func parseRtpmap(v string) (n uint8, name string, rate uint32, ch uint8, err error) {
	bad := fmt.Errorf("%w: a=rtpmap:%s", ErrMalformed, v)
	num, enc, ok := strings.Cut(v, " ")
	if !ok {
		return 0, "", 0, 0, bad
	}
	pt, err := strconv.ParseUint(num, 10, 8)
	if err != nil || pt > 127 {
		return 0, "", 0, 0, bad
	}
	parts := strings.Split(strings.TrimSpace(enc), "/")
	if len(parts) < 2 || len(parts) > 3 || !isToken(parts[0]) {
		return 0, "", 0, 0, bad
	}
	r, err := strconv.ParseUint(parts[1], 10, 32)
	if err != nil || r == 0 {
		return 0, "", 0, 0, bad
	}
	ch = 1
	if len(parts) == 3 {
		c, err := strconv.ParseUint(parts[2], 10, 8)
		if err != nil || c == 0 {
			return 0, "", 0, 0, bad
		}
		ch = uint8(c)
	}
	return uint8(pt), parts[0], uint32(r), ch, nil
}

// parseMillis reads a=ptime or a=maxptime; 0 if unusable.
func parseMillis(v string) int {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 || n > 10000 {
		return 0
	}
	return n
}

// parseRTCP reads a=rtcp:<port> [IN IP4|IP6 <addr>] (RFC 3605); zero if
// unusable, so that RTCP goes to port + 1.
func parseRTCP(v string, def netip.Addr) netip.AddrPort {
	f := strings.Fields(v)
	if len(f) != 1 && len(f) != 4 {
		return netip.AddrPort{}
	}
	port, err := strconv.ParseUint(f[0], 10, 16)
	if err != nil || port == 0 {
		return netip.AddrPort{}
	}
	addr := def
	if len(f) == 4 {
		if f[1] != "IN" {
			return netip.AddrPort{}
		}
		a, err := parseAddr(f[2], f[3])
		if err != nil {
			return netip.AddrPort{}
		}
		addr = a
	}
	return netip.AddrPortFrom(addr, uint16(port))
}

// staticPT returns payload type n as RFC 3551 §6 defines it, or with no
// name for dynamic and unassigned numbers (a=rtpmap fills those in).
func staticPT(n uint8) PT {
	p := PT{Number: n, ClockRate: 8000, Channels: 1}
	switch n {
	case 0:
		p.Name = "PCMU"
	case 3:
		p.Name = "GSM"
	case 4:
		p.Name = "G723"
	case 5:
		p.Name = "DVI4"
	case 6:
		p.Name, p.ClockRate = "DVI4", 16000
	case 7:
		p.Name = "LPC"
	case 8:
		p.Name = "PCMA"
	case 9:
		p.Name = "G722"
	case 10:
		p.Name, p.ClockRate, p.Channels = "L16", 44100, 2
	case 11:
		p.Name, p.ClockRate = "L16", 44100
	case 12:
		p.Name = "QCELP"
	case 13:
		p.Name = "CN"
	case 14:
		p.Name, p.ClockRate = "MPA", 90000
	case 15:
		p.Name = "G728"
	case 16:
		p.Name, p.ClockRate = "DVI4", 11025
	case 17:
		p.Name, p.ClockRate = "DVI4", 22050
	case 18:
		p.Name = "G729"
	default:
		p.ClockRate, p.Channels = 0, 0
	}
	return p
}

// canonical spells well-known encoding names the registered way (so the
// strings are constants, not copies of the peer's input) and fixes G.722's
// clock rate, which some devices write as 16000: RFC 3551 §4.5.2 makes it
// 8000 whatever the sampling rate.
func canonical(p *PT) {
	for _, name := range knownNames {
		if strings.EqualFold(p.Name, name) {
			p.Name = name
			if name == "G722" && p.ClockRate == 16000 {
				p.ClockRate = 8000
			}
			return
		}
	}
	p.Name = strings.Clone(p.Name)
}

var knownNames = [...]string{
	"PCMU", "PCMA", "G722", "opus", "telephone-event", "CN", "G729",
	"GSM", "iLBC", "speex", "AMR", "AMR-WB", "red", "L16",
}

// intern returns a constant for common m= media and proto strings.
func intern(s string) string {
	for _, c := range [...]string{
		"audio", "video", "text", "application", "message",
		"RTP/AVP", "RTP/SAVP", "RTP/AVPF", "RTP/SAVPF", "UDP/TLS/RTP/SAVPF",
	} {
		if s == c {
			return c
		}
	}
	return strings.Clone(s)
}

// internFormat copies an m= format token, without allocating for the
// usual payload type numbers below 100 (strconv keeps those as constants).
func internFormat(f string) string {
	if n, err := strconv.Atoi(f); err == nil && n >= 0 && n < 100 && strconv.Itoa(n) == f {
		return strconv.Itoa(n)
	}
	return strings.Clone(f)
}

// isToken reports whether s is a non-empty RFC 4566 token of at most 64
// bytes.
func isToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]", c) >= 0 {
			return false
		}
	}
	return true
}

// isText reports whether s has no control characters.
func isText(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
