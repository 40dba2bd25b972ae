// Package sdpx reads and writes the SDP of a call's legs: it sits between
// call control (internal/call, the B2BUA), which hands it the offers and
// answers it receives, and the media relay (internal/media), which it tells
// where each peer wants its RTP and which payload types were agreed. It
// knows nothing of SIP or sockets; SDP syntax is github.com/pion/sdp/v3's.
//
// # Flow
//
// Media is anchored: each leg talks to a relay port pair of the server,
// never to the other peer. For an INVITE from A to B:
//
//	offer, err := sdpx.Parse(body)            // A's offer (untrusted)
//	codecs, err := sdpx.Negotiate(offer, nil) // ErrNoCommonCodec -> 488
//	// offer to B: our address, B-side relay port
//	out, err := sdpx.Rewrite(offer, public, portB,
//		sdpx.RewriteOptions{Origin: legB, Codecs: codecs})
//	...
//	answer, err := sdpx.Parse(body) // B's answer
//	agreed, err := sdpx.Negotiate(answer, codecs)
//	// answer to A: our address, A-side relay port, A's m= lines
//	out, err = sdpx.Rewrite(answer, public, portA,
//		sdpx.RewriteOptions{Origin: legA, Codecs: agreed, AnswerTo: offer})
//	rtpA, rtcpA, _ := offer.Remote()  // where A wants media: leg A's media.Remote
//	rtpB, rtcpB, _ := answer.Remote() // where B wants media: leg B's media.Remote
//
// Both legs' media.Remote take agreed as their payload types (PT's Number,
// Name and ClockRate are media.PayloadType's fields), not all that a peer
// listed: the relay accepts only negotiated payload types from a peer.
//
// A re-INVITE or UPDATE (hold, unhold, codec change) takes the same path in
// whichever direction it comes, with the same Origin per leg: the version
// on each leg goes up only when what the server says on it changes (RFC
// 3264 §8). Direction attributes pass across unchanged, and RFC 2543 hold
// (c=0.0.0.0) becomes sendonly or inactive with the server's address.
//
// The relay forwards packets without renumbering payload types, so the
// call layer passes the agreed list to both legs; if B's answer gives a
// codec another number than A's offer did (RFC 3264 §6.1 says the answer
// SHOULD keep the offer's numbers, not MUST), the relay drops packets of
// that codec.
//
// # Untrusted input
//
// Parse refuses bodies over MaxSize, more than MaxMedia m= lines, more
// than MaxAttributes a= lines or more than MaxPayloadTypes formats on one
// m= line, before or right after parsing;
// multicast and host-name c= addresses (which would point the relay at
// somewhere the peer is not); and broken rtpmap/fmtp lines. Everything the
// server writes is built from validated fields (numbers, tokens, fmtp
// without control characters), never copied lines, so a peer cannot smuggle
// attributes to the other leg.
//
// # SRTP (SDES)
//
// Each leg's keys are its own (RFC 4568): a=crypto lines are never copied
// from one leg to the other. Stream.SelectCrypto picks the first offered
// line the media layer supports (the caller passes media's KeyLen); the
// server answers with that tag and suite and a key it generated for that
// leg (RewriteOptions.Crypto). Toward the other leg it offers its own keys
// for every supported suite, in RTP/AVP ("best effort", which a peer
// without SRTP can answer plainly) or RTP/SAVP (RewriteOptions.Secure);
// Stream.AnswerCrypto reads which one the answer took. ParseCrypto refuses
// MKIs, several keys and session parameters, and its errors never quote
// the key; Crypto's String hides it.
//
// # Not yet
//
// DTLS-SRTP: Negotiate refuses WebRTC's UDP/TLS/RTP/SAVPF (and RTP/SAVP
// without a=crypto) with ErrUnsupported, and Rewrite strips a=fingerprint,
// ICE candidates and credentials. Parse keeps them (Stream's Fingerprint,
// Setup, ICE) for the WebRTC work, which adds them back where audioSection
// says. T.38 (m=image ... udptl) is not SDP pion accepts, so such a
// re-INVITE is ErrMalformed.
package sdpx
