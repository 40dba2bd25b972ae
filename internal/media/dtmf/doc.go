// Package dtmf reads and writes RFC 4733 telephone-events, the DTMF digits
// carried in RTP beside a call's audio. It sits below everything that
// terminates media: the phone (internal/ua) sends and receives digits with
// it, and the server's media applications (internal/ivr) receive them.
// It knows nothing of sockets or SIP.
//
// RFC 4733 §2.3: the payload is the event code (8 bits), the end bit, a
// reserved bit and 6 bits of volume (dBm0 below zero), then the duration
// in timestamp units (16 bits). DTMF digits are events 0-15 (§3.2, table 7:
// 0-9, *, #, A-D); 16 is flash. Every packet of one event carries the
// event's start timestamp (§2.5.1.1), and the end packet is sent three
// times (§2.5.1.4), so a receiver counts a digit once per timestamp.
package dtmf
