// Package media relays RTP and RTCP between the legs of a call: it sits
// below the B2BUA (internal/call), which allocates a port pair per leg,
// tells each leg what its peer's SDP said, and bridges the legs; it knows
// nothing of SIP.
//
// # Pieces
//
//   - PortPool hands out RTP/RTCP socket pairs from the configured range
//     (rtp.ports): RTP on an even port, RTCP on the next odd one, as
//     RFC 3550 §11 recommends. Allocate is O(1); ErrNoPorts means the range
//     is used up (answer 503). A pair is given back only through the
//     PortPair it was handed out as, once, so no call frees another's ports.
//   - Leg holds one pair, the peer's expected address and negotiated
//     payload types (from SDP, updatable on re-INVITE), the latched
//     address, and receive statistics for CDRs.
//   - Bridge joins two legs and forwards each peer's packets, untouched, to
//     the other peer: RTP between the RTP sockets, RTCP between the RTCP
//     sockets. A packet is forwarded only if the receiving leg negotiated
//     the same payload type with the same codec: this relay does not
//     transcode, and it does not renumber payload types.
//
// # Background (facts the rules rest on)
//
// RFC 3550 defines RTP: a 12-byte fixed header with version 2, payload
// type, sequence number, timestamp and SSRC (§5.1), and RTCP sender and
// receiver reports carrying loss and interarrival jitter (§6.4). Its
// appendices give the algorithms used here: sequence number validation and
// wraparound (§A.1), expected and lost packets (§A.3) and the jitter
// estimator J += (|D| - J)/16 computed in timestamp units (§6.4.1, §A.8).
//
// RFC 4961 defines symmetric RTP: a device sends its RTP from the same IP
// address and port it receives on. Phones behind NAT can then be reached by
// sending media back to the address their packets come from, whatever
// private address their SDP carries. RFC 7362 calls this technique
// latching and notes its weakness: whoever sends first may be latched to.
//
// The RTP Bleed vulnerability (Enable Security, 2017; Asterisk advisories
// AST-2017-005 and AST-2017-008, CVE-2017-14099) is that weakness
// exploited: relays that learned the peer address from incoming packets,
// at any point of a call and without checking them, let anyone who sent
// RTP to a relay port (found by scanning the port range) receive the
// call's audio, or cut it off. The usual mitigations limit when a relay may
// learn a new address and which packets may teach it.
//
// RFC 4733 carries DTMF as telephone-event RTP packets with their own
// dynamic payload type, in the same SSRC and sequence number space as the
// audio; all packets of one event share the event's start timestamp.
//
// # Latching rules (RTP)
//
// A datagram on a leg's RTP socket is considered only if it parses as RTP
// version 2 with a consistent header and its payload type is one the leg
// negotiated; anything else is dropped (DroppedInvalid) and can never latch.
// Then, by source address:
//
//  1. From the latched address: accepted.
//  2. Nothing latched yet, inside the latch window (DefaultLatchWindow, 5 s,
//     from Bridge.Start or from a SetRemote that changed the address): the
//     leg latches to the source and accepts the packet. This is the NAT
//     case: the SDP says 192.168.1.10:4000, packets come from the NAT's
//     public address.
//  3. Nothing latched yet, after the window: only a packet from exactly the
//     SDP address latches (a phone that is not behind NAT and started late).
//  4. Already latched, inside the window: the latch may move only to a
//     better-ranked source. Ranks: exactly the SDP address, then the SDP IP
//     with another port, then any other source. So a stranger who got in
//     first is displaced by the real phone when the phone is not behind NAT,
//     and nothing displaces a latch on the exact SDP address. LegConfig's
//     IgnoreSDPIP drops the middle rank.
//  5. Anything else is dropped and counted (DroppedStrangers): never
//     forwarded, never able to move the latch. After the window the latch is
//     frozen until the peer's SDP address changes (SetRemote), which resets
//     it and reopens the window.
//
// Until the leg latches, RTP for the peer goes to the SDP address.
//
// Residual risk, inherent to latching: inside the window, a stranger whose
// well-formed packet with a negotiated payload type arrives before the
// phone's first packet captures a NATed leg (ranks cannot tell a NAT from a
// stranger). Keeping the window short bounds it; SRTP removes it (see
// SRTP below: only authenticated packets latch).
//
// # Latching rules (RTCP)
//
// A datagram on the RTCP socket is considered only if it is a well-formed
// compound RTCP packet. It latches the RTCP address if nothing is latched
// and it comes either from the IP the RTP latched to (any port: NATs map
// the RTCP port separately) or from exactly the SDP RTCP address (a=rtcp,
// else RTP port + 1). There is no window, because the first RTCP report may
// come seconds after media starts; binding RTCP to the RTP latch's IP does
// the same job. Once latched, other sources are dropped as for RTP. RTCP
// for the peer goes to the RTCP latch, else to the RTP latch's port + 1
// when RTP latched away from the SDP address, else to the SDP RTCP address.
//
// # SRTP (SDES)
//
// A leg configured with SRTP (LegConfig.SRTP, Leg.SetSRTP) is an SRTP leg
// keyed by SDES (RFC 4568): AES_CM_128_HMAC_SHA1_80 or _32 (RFC 3711,
// RFC 4568 §6.2) or AEAD_AES_128_GCM (RFC 7714). Each direction has its
// own master key: the peer's (Remote) authenticates and decrypts what the
// peer sends, the server's (Local, generated for this leg alone) encrypts
// what goes to it, so a bridge can join SRTP and plain legs, and two SRTP
// legs are re-keyed rather than passed through. SRTP and SRTCP from the
// peer are authenticated and replay-checked (a window of 128) before any
// latching rule sees them: a stranger without the key can neither latch
// nor inject; failures are dropped and counted (DroppedAuth). Packets are
// decrypted and encrypted in place in the worker's buffer, which has room
// for the tag past bufSize, so SRTP adds no allocation per packet
// (BenchmarkRelaySRTP). Contexts are replaced on re-key only for the
// direction whose key changed, keeping rollover counters and replay
// windows across re-INVITEs that repeat the keys. Keys never appear in
// logs: SRTP's String and LogValue name the suite only.
//
// # Performance
//
// A call has no goroutines of its own. While any bridge of a pool is
// started, the pool's relay engine runs a few workers (GOMAXPROCS, or
// PortPoolConfig.Workers), and each bridge's four sockets belong to one of
// them. On Linux a worker is an epoll set of non-blocking sockets that the
// Go runtime's poller does not watch; the epoll descriptor itself is
// watched by the runtime, so an idle worker is a parked goroutine. Woken,
// it takes up to 128 ready sockets per epoll_wait and relays one datagram
// from each (recvfrom, checks, sendto: two system calls per packet, no
// goroutine switch per packet), until none is ready. Buffers are the
// worker's, not the leg's, so a call's relay state is a few hundred bytes
// plus its sockets (BenchmarkCallMemory). The workers stop when the last
// bridge closes. A bridge's io lock is held while one of its datagrams is
// relayed and while its sockets close, so a socket is never used after
// close, and an epoll event that names a pair since closed and handed out
// again is recognised by the pair's generation and ignored. Elsewhere than
// Linux each socket is read by a goroutine of its own.
//
// The relay path does not allocate (see BenchmarkRelay). Signalled state
// (remote address, payload types, window) is copy-on-write behind an
// atomic pointer; counters are atomics. RTCP reports are parsed with
// pion/rtcp into reused structs.
package media
