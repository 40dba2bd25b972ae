package sdpx

import "errors"

// Sentinel errors; callers match them with errors.Is. The call layer turns
// them into SIP status codes in one place:
//
//   - ErrTooLarge, ErrMalformed: 400 Bad Request (the body is not usable SDP;
//     ErrTooLarge may also be 413 for a whole request).
//   - ErrNoAudio, ErrNoCommonCodec, ErrUnsupported: 488 Not Acceptable Here
//     (the SDP is fine but we cannot take part in this session).
//   - ErrInvalid: 500; a bug in the caller of Rewrite, never caused by a peer.
var (
	// ErrTooLarge means the body, its number of media sections or
	// attributes, or the number of payload types on one m= line exceeds
	// MaxSize, MaxMedia, MaxAttributes or MaxPayloadTypes.
	ErrTooLarge = errors.New("sdpx: SDP too large")
	// ErrMalformed means the body is not valid SDP (RFC 4566), or a line
	// the B2BUA relies on (c=, m=, a=rtpmap, a=fmtp) is broken.
	ErrMalformed = errors.New("sdpx: malformed SDP")
	// ErrNoAudio means the session has no RTP audio stream.
	ErrNoAudio = errors.New("sdpx: no RTP audio stream")
	// ErrNoCommonCodec means no offered codec is in the supported list.
	ErrNoCommonCodec = errors.New("sdpx: no common codec")
	// ErrUnsupported means the SDP is valid but asks for something the
	// relay does not do (yet): SRTP or DTLS-SRTP only transports, multicast,
	// host names instead of addresses, port ranges.
	ErrUnsupported = errors.New("sdpx: unsupported media description")
	// ErrInvalid means Rewrite was called with arguments no SDP can carry
	// (no Origin, an unusable address or port, bad payload types).
	ErrInvalid = errors.New("sdpx: invalid rewrite arguments")
)
