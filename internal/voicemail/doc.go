// Package voicemail is the PBX's voicemail application, one of the media
// applications internal/call runs on an answered call (beside conferences
// and IVR menus): it records a message for a user whose call was not
// answered (Deposit), plays a user's messages back with a key menu
// (Retrieve, after Login when the caller is not the user's own phone),
// and formats the RFC 3842 message-summary body a phone's
// message-waiting lamp follows (Summary). It talks to the caller through
// an *ivr.Endpoint and keeps messages in the store (store.Voicemail); it
// knows nothing of SIP.
//
// # Deposit
//
// The caller hears a greeting ("The person at extension 1 0 2 is not
// available. Please leave a message after the tone."; # skips it), a
// beep, and is recorded, at 8 kHz mono 16-bit, until it hangs up, presses
// #, stays silent for Config.MaxSilence, or talks for Config.MaxMessage.
// Trailing silence is cut; what is left is kept as a WAV file unless it
// is shorter than one second (a caller who hung up at the beep).
//
// # Retrieval
//
// "You have N new messages and M old messages", then each message, new
// ones first (oldest first within each), announced with the caller's
// number and the time it came, and followed by the menu: 1 replay, 2 or
// 6 next, 4 previous, 7 delete, 9 save (keep) and next, # exit. A
// message played is heard (old). Any key interrupts a prompt or a
// message (barge-in).
//
// # PINs
//
// A mailbox's PIN is asked only when the mailbox is reached from
// elsewhere than its user's own authenticated phone (a DID). It is kept
// as a PBKDF2-HMAC-SHA256 hash (HashPIN); a mailbox without a PIN cannot
// be reached that way at all.
package voicemail
