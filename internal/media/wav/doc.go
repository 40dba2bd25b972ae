// Package wav reads and writes RIFF WAVE files of 16-bit PCM, the audio
// files of the media layer: what the phone (internal/ua) plays and records
// and the prompts the server's media applications (internal/ivr) play.
package wav
