// Package conference is the conference bridge, a media application
// (internal/ivr's Endpoint is each caller's media): callers who dial a
// room's number (our users, or a DID from a trunk) meet in a room where
// each hears the sum of all the others. The SIP side (internal/call)
// answers the call and hands the endpoint to Service.Serve; this package
// knows nothing of SIP.
//
// # Rooms
//
// Rooms are rows of the store (store.Conference, kaopu conf add); Service
// reads them again when the store's version moves (Run, every second), so
// a room added to a running server can be dialed within a second. A room
// with a PIN asks for it (prompt "enter_pin", digits ended by #, three
// tries; each failure counts toward the caller's ban like a failed login).
// A room with a maximum refuses callers once full: before answering with
// 486 Busy Here (Admit), or, when it filled up while a caller was entering
// the PIN, with the "busy" prompt and a hang-up.
//
// # Mixing
//
// While anyone is in a room, the room's clock mixes every 20 ms at
// 16 kHz. Each participant's audio arrives decoded to 16-bit PCM
// (ivr.Frames): G.722 callers at 16 kHz, G.711 (PCMU, PCMA) callers at
// 8 kHz, resampled up on the way in and down on the way out, so wideband
// callers hear each other in full and narrowband ones what their codec
// carries. The audio waits in a small jitter buffer (40 ms before play
// starts, 120 ms at most, the oldest dropped beyond); a participant whose
// packets are late contributes silence to that frame. Mixer sums all
// inputs in 32 bits and gives each participant the sum minus its own
// input, saturated to 16 bits, so nobody hears themselves. The result
// waits in the participant's output buffer until the endpoint's media
// clock sends it, encoded in the participant's codec. Digits (RFC 4733)
// are never mixed. Joining and leaving are announced with a short rising
// or falling two-note tone mixed into everyone's audio; a participant
// alone hears silence. A frame's mixing, resampling included, allocates
// nothing.
package conference
