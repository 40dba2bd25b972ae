package sdpx

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// RewriteOptions says what Rewrite writes besides the address and port.
type RewriteOptions struct {
	// Origin is the server's o= line on the leg the SDP is for. Required.
	Origin *Origin
	// Codecs are the payload types to write, in order, usually Negotiate's
	// result. Nil means all of the stream's.
	Codecs []PT
	// AnswerTo, when the SDP is an answer on the target leg, is the offer
	// it answers (the one that leg sent). RFC 3264 §6 wants the answer to
	// have the offer's m= lines, in order, with the same transport: the
	// result then mirrors AnswerTo's m= lines, with the anchored audio
	// where AnswerTo's audio is and every other stream rejected. Nil for
	// an offer, which mirrors s's own m= lines.
	AnswerTo *Session
	// Crypto are the a=crypto lines to write, with the server's keys for
	// the leg the SDP goes to (RFC 4568): in an offer every suite offered,
	// in an answer the one line accepted, with the offer's tag. Empty
	// means plain RTP.
	Crypto []Crypto
	// Secure makes an offer's transport RTP/SAVP (SRTP required) rather
	// than RTP/AVP with a=crypto (best-effort SRTP, which a peer without
	// SRTP can still answer). Answers keep the offer's transport.
	Secure bool
}

// Rewrite writes the SDP the server sends on the other leg for s: the o=
// line is the leg's (opts.Origin), c= is addr (IP4 or IP6 as it is), the
// audio stream's port is the relay's port on that leg (RTCP on port + 1,
// so no a=rtcp), with only opts.Codecs (a=rtpmap for every named one,
// a=fmtp, a=ptime, a=maxptime) and the stream's effective direction, so
// hold (sendonly, inactive, c=0.0.0.0) passes across. A disabled stream
// stays disabled (port 0). Every other m= line is written with port 0 and
// its first format: rejected in an answer, offered disabled in an offer,
// which keeps the m= lines of both legs in step for later re-INVITEs.
//
// Everything else is dropped: ICE candidates and credentials, DTLS
// fingerprints, the peer's SDES keys (the server writes its own,
// opts.Crypto, never the other leg's), rtcp-mux, RTCP feedback, SSRCs,
// bandwidth and session attributes. The transport is RTP/AVP in an offer
// (RTP/SAVP with opts.Secure), and the offer's in an answer.
func Rewrite(s *Session, addr netip.Addr, port int, opts RewriteOptions) ([]byte, error) {
	if s == nil || opts.Origin == nil {
		return nil, fmt.Errorf("%w: no session or no origin", ErrInvalid)
	}
	addr = addr.Unmap()
	if !addr.IsValid() || addr.IsUnspecified() || addr.IsMulticast() || addr.Zone() != "" {
		return nil, fmt.Errorf("%w: address %v", ErrInvalid, addr)
	}
	if port <= 0 || port > 65535 {
		return nil, fmt.Errorf("%w: port %d", ErrInvalid, port)
	}
	codecs := opts.Codecs
	if codecs == nil {
		codecs = s.Audio.PTs
	}
	if err := checkCodecs(codecs); err != nil {
		return nil, err
	}

	lines, audio, proto := s.Media, s.Audio.Index, "RTP/AVP"
	if opts.Secure {
		if len(opts.Crypto) == 0 {
			return nil, fmt.Errorf("%w: RTP/SAVP offer without a=crypto", ErrInvalid)
		}
		proto = "RTP/SAVP"
	}
	disabled := s.Audio.Disabled()
	if a := opts.AnswerTo; a != nil {
		lines, audio, proto = a.Media, a.Audio.Index, a.Audio.Proto
		if a.Audio.Secure() && len(opts.Crypto) == 0 {
			return nil, fmt.Errorf("%w: cannot answer %s without SRTP", ErrUnsupported, proto)
		}
		disabled = disabled || a.Audio.Disabled() // RFC 3264 §6
	}
	if disabled {
		port = 0
	}

	addrType := "IP6"
	if addr.Is4() {
		addrType = "IP4"
	}
	host := addr.String()
	o := opts.Origin
	sd := sdp.SessionDescription{
		Origin: sdp.Origin{
			Username:       o.username(),
			SessionID:      o.SessionID,
			SessionVersion: o.Version,
			NetworkType:    "IN",
			AddressType:    addrType,
			UnicastAddress: host,
		},
		SessionName: "kaopu",
		ConnectionInformation: &sdp.ConnectionInformation{
			NetworkType: "IN",
			AddressType: addrType,
			Address:     &sdp.Address{Address: host},
		},
		TimeDescriptions:  []sdp.TimeDescription{{}},
		MediaDescriptions: make([]*sdp.MediaDescription, len(lines)),
	}
	for i, m := range lines {
		if i == audio {
			sd.MediaDescriptions[i] = audioSection(&s.Audio, port, proto, codecs, opts.Crypto)
			continue
		}
		format := "0"
		if len(m.Formats) > 0 {
			format = m.Formats[0]
		}
		sd.MediaDescriptions[i] = &sdp.MediaDescription{MediaName: sdp.MediaName{
			Media:   m.Kind,
			Protos:  strings.Split(m.Proto, "/"),
			Formats: []string{format},
		}}
	}

	out, err := sd.Marshal()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if len(out) > MaxSize {
		// Only reachable near the limit: the result can be a little longer
		// than the input (CRLF line ends, a=rtpmap for static types).
		return nil, fmt.Errorf("%w: rewritten SDP is %d bytes, limit %d", ErrTooLarge, len(out), MaxSize)
	}
	// The version depends on everything after the o= line.
	end := bytes.Index(out[len("v=0\r\n"):], []byte("\r\n")) + len("v=0\r\n\r\n")
	if v := o.stamp(out[end:]); v != sd.Origin.SessionVersion {
		sd.Origin.SessionVersion = v
		return sd.Marshal()
	}
	return out, nil
}

func audioSection(st *Stream, port int, proto string, codecs []PT, crypto []Crypto) *sdp.MediaDescription {
	md := &sdp.MediaDescription{MediaName: sdp.MediaName{
		Media:   "audio",
		Port:    sdp.RangedPort{Value: port},
		Protos:  strings.Split(proto, "/"),
		Formats: make([]string, len(codecs)),
	}}
	md.Attributes = make([]sdp.Attribute, 0, 2*len(codecs)+3)
	for i, p := range codecs {
		num := strconv.Itoa(int(p.Number))
		md.MediaName.Formats[i] = num
		if p.Name != "" {
			md.Attributes = append(md.Attributes, sdp.NewAttribute("rtpmap", p.String()))
		}
		if p.Fmtp != "" {
			md.Attributes = append(md.Attributes, sdp.NewAttribute("fmtp", num+" "+p.Fmtp))
		}
	}
	if st.Ptime > 0 {
		md.Attributes = append(md.Attributes, sdp.NewAttribute("ptime", strconv.Itoa(st.Ptime)))
	}
	if st.MaxPtime > 0 {
		md.Attributes = append(md.Attributes, sdp.NewAttribute("maxptime", strconv.Itoa(st.MaxPtime)))
	}
	md.Attributes = append(md.Attributes, sdp.NewPropertyAttribute(st.Effective().String()))
	for _, c := range crypto {
		md.Attributes = append(md.Attributes, sdp.NewAttribute("crypto", c.attr()))
	}
	// WebRTC legs will add a=fingerprint, a=setup, a=ice-ufrag, a=ice-pwd
	// and a=candidate (RFC 8842, RFC 8839) plus a=rtcp-mux here.
	return md
}

// checkCodecs validates payload types handed to Rewrite: Parse's always
// pass, but Codecs may be built by hand.
func checkCodecs(codecs []PT) error {
	if len(codecs) == 0 || len(codecs) > MaxPayloadTypes {
		return fmt.Errorf("%w: %d payload types", ErrInvalid, len(codecs))
	}
	var seen [128]bool
	for _, p := range codecs {
		switch {
		case p.Number > 127 || seen[p.Number]:
			return fmt.Errorf("%w: payload type %d out of range or repeated", ErrInvalid, p.Number)
		case p.Name != "" && (!isToken(p.Name) || p.ClockRate == 0):
			return fmt.Errorf("%w: payload type %d: bad rtpmap %q/%d", ErrInvalid, p.Number, p.Name, p.ClockRate)
		case !isText(p.Fmtp) || strings.TrimSpace(p.Fmtp) != p.Fmtp:
			return fmt.Errorf("%w: payload type %d: bad fmtp %q", ErrInvalid, p.Number, p.Fmtp)
		}
		seen[p.Number] = true
	}
	return nil
}
