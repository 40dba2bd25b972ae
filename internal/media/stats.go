package media

import (
	"math"
	"net/netip"
	"time"

	"github.com/pion/rtcp"
)

// Stats is a snapshot of one leg's counters, for CDRs and metrics. "In" is
// what the leg's peer sent to us, "out" what we sent to the peer. Byte
// counts are UDP payload bytes (RTP header included).
type Stats struct {
	PacketsIn, BytesIn   uint64 // RTP accepted from the peer
	PacketsOut, BytesOut uint64 // RTP sent to the peer
	RTCPIn, RTCPOut      uint64 // RTCP packets accepted from / sent to the peer

	// DroppedStrangers counts RTP and RTCP from a source the leg is not
	// latched to and may not latch to (RTP bleed attempts, stale senders).
	DroppedStrangers uint64
	// DroppedInvalid counts datagrams that are not RTP version 2 (or not
	// RTCP on the RTCP port), carry a payload type that was not negotiated,
	// or do not fit the receive buffer.
	DroppedInvalid uint64
	// DroppedCodec counts packets for the peer (accepted on the other leg)
	// not sent because this leg did not negotiate their payload type with
	// the same codec: this relay neither transcodes nor renumbers.
	DroppedCodec uint64
	// SendErrors counts packets for the peer that could not be sent: no
	// usable remote address yet (or on hold, 0.0.0.0), or the socket refused.
	SendErrors uint64
	// DroppedAuth counts SRTP and SRTCP packets from the peer that failed
	// authentication or the replay check (wrong key, forged, replayed),
	// and packets for an SRTP peer that could not be protected.
	DroppedAuth uint64
	// SRTP names the leg's crypto suite; empty for plain RTP.
	SRTP Suite

	// Expected and Lost follow RFC 3550 §A.3 from sequence numbers, summed
	// over every SSRC the peer used; Lost is negative when duplicates
	// outnumber losses.
	Expected uint64
	Lost     int64
	// Jitter is the RFC 3550 §6.4.1 interarrival jitter of the peer's
	// current stream, converted from timestamp units with its clock rate.
	Jitter time.Duration

	// Latched is the address RTP is sent to, once learned from the peer's
	// own packets (zero until then: RTP goes to the SDP address).
	Latched netip.AddrPort
	// LatchedRTCP is the same for RTCP.
	LatchedRTCP netip.AddrPort
	// LastActivity is when the last RTP packet was accepted from the peer.
	LastActivity time.Time
	// RTCP is the last sender or receiver report the peer sent; At is zero
	// if none came.
	RTCP RTCPReport
}

// RTCPReport is the useful part of an RTCP SR or RR (RFC 3550 §6.4).
type RTCPReport struct {
	At     time.Time // when it arrived
	SSRC   uint32    // of the reporting peer
	Sender bool      // an SR: the sender info below is set
	// Sender info (SR only).
	NTPTime     uint64
	RTPTime     uint32
	PacketCount uint32
	OctetCount  uint32
	// Blocks are the reception report blocks: what the peer received.
	Blocks []ReportBlock
}

// ReportBlock is one reception report block (RFC 3550 §6.4.1).
type ReportBlock struct {
	SSRC         uint32 // source reported on
	FractionLost uint8  // fixed point, /256, since the previous report
	TotalLost    uint32 // cumulative packets lost (24 bits)
	HighestSeq   uint32 // extended highest sequence number received
	Jitter       uint32 // interarrival jitter, timestamp units
	LSR, DLSR    uint32 // last SR timestamp and delay since it (1/65536 s)
}

// RFC 3550 §A.1 constants.
const (
	maxDropout    = 3000
	maxMisorder   = 100
	minSequential = 2
	seqMod        = 1 << 16
)

// seqState is RFC 3550 §A.1's source_s for one SSRC.
type seqState struct {
	maxSeq    uint16
	cycles    uint32 // shifted count of sequence number cycles
	baseSeq   uint32
	badSeq    uint32
	probation int
	received  uint64
}

// initSeq is §A.1 init_seq.
func (s *seqState) initSeq(seq uint16) {
	s.baseSeq = uint32(seq)
	s.maxSeq = seq
	s.badSeq = seqMod + 1 // so seq == badSeq is false
	s.cycles = 0
	s.received = 0
}

// start begins a new source: §A.1 "when a new source is heard".
func (s *seqState) start(seq uint16) {
	s.initSeq(seq)
	s.maxSeq = seq - 1
	s.probation = minSequential
}

// update is §A.1 update_seq: it reports whether the packet counts (a source
// on probation, or a big jump not yet confirmed, does not).
func (s *seqState) update(seq uint16) bool {
	udelta := seq - s.maxSeq
	switch {
	case s.probation > 0:
		// Source not valid until minSequential packets in sequence.
		if seq == s.maxSeq+1 {
			s.probation--
			s.maxSeq = seq
			if s.probation == 0 {
				s.initSeq(seq)
				s.received++
				return true
			}
		} else {
			s.probation = minSequential - 1
			s.maxSeq = seq
		}
		return false
	case udelta < maxDropout:
		// In order, with permissible gap.
		if seq < s.maxSeq {
			s.cycles += seqMod // wrapped
		}
		s.maxSeq = seq
	case uint32(udelta) <= seqMod-maxMisorder:
		// A very large jump: accept it only if the next packet follows
		// (the sender restarted), else treat as stray.
		if uint32(seq) == s.badSeq {
			s.initSeq(seq)
		} else {
			s.badSeq = (uint32(seq) + 1) & (seqMod - 1)
			return false
		}
	default:
		// Duplicate or reordered packet.
	}
	s.received++
	return true
}

// expected is §A.3: extended highest sequence number - base + 1.
func (s *seqState) expected() uint64 {
	if s.probation > 0 {
		return 0
	}
	return uint64(s.cycles) + uint64(s.maxSeq) - uint64(s.baseSeq) + 1
}

// rxStats is the receive side of one leg: loss and jitter of the peer's
// stream. Only the relay touches it, under the bridge's io lock.
type rxStats struct {
	started bool
	ssrc    uint32
	seq     seqState
	// Totals of earlier SSRCs (a peer may change SSRC, e.g. after a
	// re-INVITE or a transfer on its side).
	doneExpected uint64
	doneReceived uint64

	// §A.8 jitter, in timestamp units of rate.
	rate        uint32
	haveTransit bool
	transit     uint32
	jitter      float64
}

// packet accounts one accepted RTP packet that arrived `arrival` after the
// leg's epoch. c is its payload's codec.
func (r *rxStats) packet(h rtpHeader, c codec, arrival time.Duration) {
	if !r.started || h.ssrc != r.ssrc {
		if r.started {
			r.doneExpected += r.seq.expected()
			r.doneReceived += r.seq.received
		}
		r.started = true
		r.ssrc = h.ssrc
		r.seq.start(h.seq)
		r.haveTransit = false
		r.jitter = 0
	}
	if !r.seq.update(h.seq) || c.event {
		// RFC 4733 events repeat one timestamp over a whole event: they
		// count for loss (same sequence space) but not for jitter.
		return
	}
	if c.rate != r.rate {
		// A payload with another clock: rescale and restart transit.
		if r.rate != 0 {
			r.jitter *= float64(c.rate) / float64(r.rate)
		}
		r.rate = c.rate
		r.haveTransit = false
	}
	// §6.4.1 and §A.8: D(i-1,i) = (Rj - Ri) - (Sj - Si), J += (|D| - J)/16,
	// with the arrival time R in timestamp units; modulo 2^32 arithmetic.
	transit := units(arrival, c.rate) - h.ts
	if r.haveTransit {
		d := float64(int32(transit - r.transit))
		r.jitter += (math.Abs(d) - r.jitter) / 16
	}
	r.transit = transit
	r.haveTransit = true
}

// units converts a duration to RTP timestamp units of rate (mod 2^32),
// without overflowing for long calls.
func units(d time.Duration, rate uint32) uint32 {
	sec := int64(d / time.Second)
	frac := int64(d % time.Second)
	return uint32(sec*int64(rate) + frac*int64(rate)/int64(time.Second))
}

// totals returns expected and lost over every SSRC so far.
func (r *rxStats) totals() (expected uint64, lost int64) {
	expected = r.doneExpected + r.seq.expected()
	received := r.doneReceived + r.seq.received
	return expected, int64(expected) - int64(received)
}

// jitterDuration converts the jitter to time.
func (r *rxStats) jitterDuration() time.Duration {
	if r.rate == 0 {
		return 0
	}
	return time.Duration(r.jitter / float64(r.rate) * float64(time.Second))
}

// rtcpParser extracts the first SR or RR of a compound RTCP packet with
// pion/rtcp, reusing its structs so that steady state does not allocate.
type rtcpParser struct {
	sr rtcp.SenderReport
	rr rtcp.ReceiverReport
}

// parse fills rep from b (already checked by validRTCP) and reports whether
// b held an SR or RR. rep.Blocks is reused.
func (p *rtcpParser) parse(b []byte, rep *RTCPReport) bool {
	for len(b) >= 4 {
		var h rtcp.Header
		if h.Unmarshal(b) != nil {
			return false
		}
		n := (int(h.Length) + 1) * 4
		if n > len(b) {
			return false
		}
		pkt := b[:n]
		b = b[n:]
		var reports []rtcp.ReceptionReport
		switch h.Type {
		case rtcp.TypeSenderReport:
			p.sr.Reports = p.sr.Reports[:0]
			if p.sr.Unmarshal(pkt) != nil {
				return false
			}
			*rep = RTCPReport{
				SSRC: p.sr.SSRC, Sender: true, NTPTime: p.sr.NTPTime, RTPTime: p.sr.RTPTime,
				PacketCount: p.sr.PacketCount, OctetCount: p.sr.OctetCount, Blocks: rep.Blocks[:0],
			}
			reports = p.sr.Reports
		case rtcp.TypeReceiverReport:
			p.rr.Reports = p.rr.Reports[:0]
			if p.rr.Unmarshal(pkt) != nil {
				return false
			}
			*rep = RTCPReport{SSRC: p.rr.SSRC, Blocks: rep.Blocks[:0]}
			reports = p.rr.Reports
		default:
			continue
		}
		for _, r := range reports {
			rep.Blocks = append(rep.Blocks, ReportBlock{
				SSRC: r.SSRC, FractionLost: r.FractionLost, TotalLost: r.TotalLost,
				HighestSeq: r.LastSequenceNumber, Jitter: r.Jitter, LSR: r.LastSenderReport, DLSR: r.Delay,
			})
		}
		return true
	}
	return false
}
