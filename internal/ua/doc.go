// Package ua is a SIP user agent: the softphone behind `kaopu phone` and a
// test client for the server. It sits beside the server, not inside it: it
// speaks SIP through github.com/emiago/sipgo (transports, transactions,
// dialogs), reads SDP with internal/sdpx and codes audio with
// internal/media/codec.
//
// # What it does
//
//   - Registers over UDP, TCP or TLS with digest authentication and keeps
//     the binding fresh (RFC 3261 §10), following rport/received (RFC 3581)
//     when a NAT rewrites its address.
//   - Places and receives calls: answer, reject, hang up, cancel; hold and
//     resume by re-INVITE with a=sendonly / a=sendrecv (RFC 3264 §8.4);
//     blind transfer by REFER (RFC 3515), in both directions.
//   - Calls sip:user@host:port directly, without a server or registration.
//   - Sends and receives DTMF as RFC 4733 telephone-events (and receives
//     SIP INFO application/dtmf-relay and application/dtmf).
//   - Sends and receives instant messages (SIP MESSAGE, RFC 3428).
//   - Learns the public address of its RTP socket from a STUN server
//     (RFC 5389 Binding) and sends RTP back where the peer's comes from
//     (symmetric RTP, RFC 4961).
//
// # Media
//
// Each call has one UDP socket for RTP, a 20 ms clock that sends a frame and
// plays one, an adaptive jitter buffer with packet-loss concealment (pitch
// repetition with fade-out), and SRTP (RFC 3711) keyed by SDES (RFC 4568,
// AES_CM_128_HMAC_SHA1_80) when both sides agree. Audio comes from an
// AudioSource and goes to an AudioSink: WAV files (WAVSource, WAVSink,
// resampled as needed) or anything else that implements them.
package ua
