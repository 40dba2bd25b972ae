// Package sound connects a call's audio to the sound card: it sits beside
// the codecs, below the user agent (internal/ua), whose AudioSource and
// AudioSink its Source and Sink are, and knows nothing of SIP or RTP.
//
// # Devices
//
// Built with the soundcard tag, Open uses github.com/gen2brain/malgo
// (miniaudio, through cgo), which loads the machine's sound system when it
// runs — PulseAudio or PipeWire, ALSA or JACK on Linux; Core Audio on
// macOS; WASAPI on Windows — so building needs only a C compiler, no
// sound library's headers. The default capture and playback devices are
// opened at their own sample rate, 16-bit mono, with 10 ms periods, and
// the audio is converted to and from the call's rate with
// internal/media/codec's Resampler. Open fails with ErrNoDevice when the
// machine has no sound system or no default device (miniaudio's silent
// "null" device is never used), and without the tag with ErrNotBuilt: the
// default build stays pure Go.
//
// # Latency
//
// Between the device's thread and the call's 20 ms clock sit two small
// queues. The capture queue is read one frame per tick and never holds
// more than two frames and a period (50 ms): the oldest samples are
// dropped when the device runs ahead of the call's clock. The playback
// queue waits for a frame and a period (30 ms) before it plays, again
// after it runs dry, and is cut back to that when it holds more than
// 100 ms. Their limits bound what the sound card adds to mouth-to-ear
// delay.
package sound
