// Package codec turns linear PCM into RTP audio payloads and back: it sits
// below the user agent (internal/ua) and the media layer, and knows nothing
// of SIP, sockets or RTP headers.
//
// # Codecs
//
//   - G.711 (ITU-T G.711): µ-law (PCMU, payload type 0) and A-law (PCMA, 8)
//     compress one 16-bit sample at 8 kHz into one byte, companded in eight
//     segments of sixteen steps.
//   - G.722 (ITU-T G.722, mode 1, 64 kbit/s; payload type 9): 16 kHz audio
//     split by a 24-tap quadrature mirror filter into a lower and a higher
//     sub-band, each coded with adaptive differential PCM (6 and 2 bits per
//     sub-band sample). RFC 3551 §4.5.2 keeps its RTP clock at 8000 for
//     historical reasons, although it samples at 16 kHz.
//
// Encoders and decoders hold the state of one direction of one stream and are
// not safe for concurrent use. Decoders accept any bytes: a payload from the
// network is untrusted, and no input panics (see the fuzz targets).
//
// # Resampling
//
// Resampler converts between sample rates by a rational factor (8, 16 and
// 48 kHz, and the 44.1 kHz of many WAV files) with a windowed-sinc polyphase
// low-pass filter, keeping state across calls so that a stream can be
// resampled frame by frame.
package codec
