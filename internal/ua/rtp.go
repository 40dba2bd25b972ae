package ua

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/kaopu/kaopu/internal/media/codec"
	"github.com/kaopu/kaopu/internal/media/dtmf"
	"github.com/kaopu/kaopu/internal/sdpx"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// frameMs is the packet time this agent sends and plays out in.
const frameMs = 20

// dtmfTicks and dtmfGapTicks are a digit's length and the pause after it,
// in frames: 100 ms and 60 ms, above the 40 ms ITU-T Q.24 minimums.
const (
	dtmfTicks     = 5
	dtmfGapTicks  = 3
	dtmfEndCopies = 3 // RFC 4733 §2.5.1.4: the end packet is sent three times
)

// Stats are a call's live media figures.
type Stats struct {
	Codec      string  // negotiated codec, "" before media
	SRTP       bool    // media is encrypted
	Remote     string  // where RTP goes (latched: where it comes from)
	JitterMs   float64 // RFC 3550 interarrival jitter of what arrives
	LossPct    float64 // packets lost of those expected, percent
	PacketsIn  int
	PacketsOut int
	Lost       int // packets never received
	Late       int // received after their playout time
	Concealed  int // frames filled in by packet-loss concealment

	// MediaStart is when the call's 20 ms media clock first ticked (zero
	// before): the source's first frame was sent and the sink's first
	// frame played then, and one frame each 20 ms after. So sample n of a
	// WAVSink recording was played at MediaStart + n/rate (the sink gets
	// silence until the jitter buffer starts playing), and sample n of a
	// WAVSource was sent in the packet of MediaStart + (n/frame)*20 ms.
	// A late tick does the frames that were due; a stall of more than
	// 200 ms is skipped, and the timeline shifts by what was skipped.
	MediaStart time.Time
}

// stream is the RTP side of one call: a UDP socket, the encoder and
// jitter buffer for the negotiated codec, SRTP when agreed, and the audio
// source and sink.
type stream struct {
	log   *slog.Logger
	conn  *net.UDPConn
	local netip.AddrPort // the address given in SDP (public when STUN says so)

	// localKey is this side's SRTP master key and salt, offered before
	// the exchange completes.
	localKey []byte

	onDTMF func(rune)

	mu        sync.Mutex
	started   bool
	ag        agreed
	remote    netip.AddrPort
	latched   bool
	sendDir   bool // both sides' directions allow sending
	enc       codec.Encoder
	jb        *jitterBuffer
	src       AudioSource
	sink      AudioSink
	srtpOut   *srtp.Context
	srtpIn    *srtp.Context
	ssrc      uint32
	seq       uint16
	ts        uint32
	frame     []int16
	payload   []byte
	packet    []byte
	dtmfQueue []int
	dtmfCur   int // event code being sent, -1 for none
	dtmfTick  int
	dtmfStart uint32
	dtmfRx    dtmf.Receiver
	clock0    time.Time // the media clock's first tick
	frames    int64     // frames the clock has done since clock0
	behind    bool      // tick found frames due and asked to be called again

	// receive statistics (RFC 3550 §A.3)
	rxPackets, txPackets int
	baseSeq, maxSeq      int64
	haveSeq              bool
	seqCycles            int64
	lastSeq              uint16

	stop chan struct{}
	wg   sync.WaitGroup
}

// newStream binds an RTP socket on ip (port chosen by the kernel).
func newStream(ip netip.Addr, log *slog.Logger, onDTMF func(rune)) (*stream, error) {
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		return nil, fmt.Errorf("rtp socket: %w", err)
	}
	la := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	s := &stream{log: log, conn: conn, local: netip.AddrPortFrom(ip, la.Port()), onDTMF: onDTMF,
		dtmfCur: -1, stop: make(chan struct{})}
	var b [4]byte
	rand.Read(b[:])
	s.ssrc = binary.BigEndian.Uint32(b[:])
	rand.Read(b[:])
	s.seq, s.ts = binary.BigEndian.Uint16(b[:2]), uint32(binary.BigEndian.Uint16(b[2:]))<<8
	return s, nil
}

// start begins sending and receiving with what the exchange agreed. The
// source and sink are opened at the codec's sample rate.
func (s *stream) start(ag agreed, ours sdpx.Direction, src AudioSource, sink AudioSink) error {
	if src == nil {
		src = silence{}
	}
	if sink == nil {
		sink = silence{}
	}
	if err := src.Open(ag.codec.SampleRate); err != nil {
		return fmt.Errorf("audio source: %w", err)
	}
	if err := sink.Open(ag.codec.SampleRate); err != nil {
		src.Close()
		return fmt.Errorf("audio sink: %w", err)
	}
	s.mu.Lock()
	s.src, s.sink = src, sink
	err := s.applyLocked(ag, ours)
	s.started = true
	s.mu.Unlock()
	if err != nil {
		s.close()
		return err
	}
	s.wg.Add(2)
	go s.readLoop()
	go s.tickLoop()
	return nil
}

// update applies a new offer/answer (re-INVITE: hold, resume, new address).
func (s *stream) update(ag agreed, ours sdpx.Direction) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applyLocked(ag, ours)
}

func (s *stream) applyLocked(ag agreed, ours sdpx.Direction) error {
	codecChanged := s.enc == nil || ag.codec.Name != s.ag.codec.Name
	if codecChanged && s.started && ag.codec.SampleRate != s.ag.codec.SampleRate {
		return fmt.Errorf("%w: changing the sample rate within a call", ErrNotAcceptable)
	}
	if codecChanged {
		s.enc = ag.codec.NewEncoder()
		dec := ag.codec.NewDecoder()
		s.jb = newJitterBuffer(ag.codec.ClockRate, ag.codec.SampleRate, frameMs, dec.Decode)
		s.frame = make([]int16, ag.codec.SamplesPer(frameMs))
	}
	if ag.srtp {
		if len(s.localKey) != 30 {
			return fmt.Errorf("%w: SRTP agreed without a local key", ErrNotAcceptable)
		}
		out, err := srtp.CreateContext(s.localKey[:16], s.localKey[16:], srtp.ProtectionProfileAes128CmHmacSha1_80)
		if err != nil {
			return err
		}
		in, err := srtp.CreateContext(ag.peerKey[:16], ag.peerKey[16:], srtp.ProtectionProfileAes128CmHmacSha1_80)
		if err != nil {
			return err
		}
		s.srtpOut, s.srtpIn = out, in
	} else {
		s.srtpOut, s.srtpIn = nil, nil
	}
	// A new remote address from SDP replaces the latched one; packets from
	// the peer latch again (symmetric RTP, RFC 4961).
	if ag.remote != s.ag.remote || !s.latched {
		s.remote, s.latched = ag.remote, false
	}
	s.ag = ag
	s.sendDir = ours.Sends() && ag.dir.Receives()
	return nil
}

// sendDTMF queues digits to send as RFC 4733 events.
func (s *stream) sendDTMF(digits string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ag.dtmfPT < 0 {
		return fmt.Errorf("%w: the other side did not agree to telephone-event", ErrCallState)
	}
	for _, r := range digits {
		c := dtmf.Code(r)
		if c < 0 {
			return fmt.Errorf("%q is not a DTMF digit (0-9 * # A-D)", r)
		}
		s.dtmfQueue = append(s.dtmfQueue, c)
	}
	return nil
}

func (s *stream) readLoop() {
	defer s.wg.Done()
	buf := make([]byte, 1500)
	var plain []byte
	var pkt rtp.Packet
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		now := time.Now()
		s.mu.Lock()
		data := buf[:n]
		if s.srtpIn != nil {
			plain, err = s.srtpIn.DecryptRTP(plain[:0], data, nil)
			if err != nil {
				s.mu.Unlock()
				continue // not ours, or tampered with
			}
			data = plain
		}
		if pkt.Unmarshal(data) != nil || pkt.Version != 2 {
			s.mu.Unlock()
			continue
		}
		pt := int(pkt.PayloadType)
		if pt != int(s.ag.pt) && pt != s.ag.dtmfPT {
			s.mu.Unlock()
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if !s.latched || s.remote != from {
			s.remote, s.latched = from, true
		}
		s.countSeq(pkt.SequenceNumber)
		var digit rune
		if pt == s.ag.dtmfPT {
			digit, _ = s.dtmfRx.Packet(pkt.Timestamp, pkt.Payload)
		} else {
			s.jb.put(pkt.Timestamp, pkt.Payload, now)
		}
		s.mu.Unlock()
		if digit != 0 && s.onDTMF != nil {
			s.onDTMF(digit)
		}
	}
}

// countSeq keeps the RFC 3550 §A.1/A.3 receive counters.
func (s *stream) countSeq(seq uint16) {
	s.rxPackets++
	if !s.haveSeq {
		s.haveSeq, s.lastSeq = true, seq
		s.baseSeq, s.maxSeq = int64(seq), int64(seq)
		return
	}
	d := int16(seq - s.lastSeq)
	if d > 0 {
		if seq < s.lastSeq {
			s.seqCycles++
		}
		s.lastSeq = seq
		s.maxSeq = int64(seq) + s.seqCycles<<16
	}
	if d > 3000 || d < -3000 {
		// A new source: restart counting.
		s.haveSeq = false
		s.seqCycles = 0
		s.rxPackets = 0
		s.countSeq(seq)
	}
}

func (s *stream) tickLoop() {
	defer s.wg.Done()
	t := time.NewTicker(frameMs * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			for s.tick(now) {
				// Behind: let the reader take the packets that came
				// meanwhile before the frames they belong to are played.
				select {
				case <-s.stop:
					return
				case <-time.After(time.Millisecond):
				}
				now = time.Now()
			}
		}
	}
}

// maxCatchUp is the most frames one late tick does (200 ms); a longer
// stall (a suspended process) is skipped rather than sent in one burst.
const maxCatchUp = 10

// tick runs the media clock at now: it does every frame due since the
// clock's first tick, normally one. A tick that comes late (the process was
// not scheduled in time, and the ticker drops ticks for a slow receiver)
// catches up, so that the source is read and the sink written in real
// time, one frame per 20 ms from Stats.MediaStart. When more than one frame
// is due it first returns true, asking to be called again a moment later:
// the packets that arrived while this process was stalled are then in the
// jitter buffer, rather than concealed as missing.
func (s *stream) tick(now time.Time) (again bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.clock0.IsZero() {
		s.clock0 = now
	}
	const frame = frameMs * time.Millisecond
	// Frames due by now, to the nearest: ticks come a little early or late.
	due := 1 + int64((now.Sub(s.clock0)+frame/2)/frame)
	if due-s.frames > 1 && !s.behind {
		s.behind = true
		return true
	}
	s.behind = false
	if due-s.frames > maxCatchUp {
		s.frames = due - maxCatchUp
	}
	for ; s.frames < due; s.frames++ {
		s.frameLocked(s.clock0.Add(time.Duration(s.frames) * frame))
	}
	return false
}

// frameLocked sends one frame (audio or a DTMF event) and plays one frame.
func (s *stream) frameLocked(now time.Time) {
	frameTS := s.ag.codec.TimestampsPer(frameMs)
	if s.sendDir && s.remote.IsValid() && !s.remote.Addr().IsUnspecified() {
		if !s.sendEventLocked(frameTS) {
			s.src.Read(s.frame)
			s.payload = s.enc.Encode(s.payload[:0], s.frame)
			s.writeLocked(s.ag.pt, false, s.ts, s.payload)
		}
	}
	s.ts += frameTS
	s.jb.next(s.frame, now)
	if err := s.sink.Write(s.frame); err != nil {
		s.log.Warn("recording failed", "error", err)
		s.sink = silence{}
	}
}

// sendEventLocked sends the current DTMF event's next packet, if any, and
// reports whether it took this tick.
func (s *stream) sendEventLocked(frameTS uint32) bool {
	if s.dtmfCur < 0 {
		if len(s.dtmfQueue) == 0 || s.ag.dtmfPT < 0 {
			return false
		}
		s.dtmfCur, s.dtmfQueue = s.dtmfQueue[0], s.dtmfQueue[1:]
		s.dtmfTick, s.dtmfStart = 0, s.ts
	}
	i := s.dtmfTick
	s.dtmfTick++
	switch {
	case i < dtmfTicks:
		ev := dtmf.Event{Code: s.dtmfCur, Volume: 10, Duration: uint16(uint32(i+1) * frameTS)}
		s.payload = ev.Append(s.payload[:0])
		s.writeLocked(uint8(s.ag.dtmfPT), i == 0, s.dtmfStart, s.payload)
		return true
	case i < dtmfTicks+dtmfEndCopies:
		ev := dtmf.Event{Code: s.dtmfCur, End: true, Volume: 10, Duration: uint16(dtmfTicks * frameTS)}
		s.payload = ev.Append(s.payload[:0])
		s.writeLocked(uint8(s.ag.dtmfPT), false, s.dtmfStart, s.payload)
		return true
	case i < dtmfTicks+dtmfEndCopies+dtmfGapTicks:
		return false // audio between digits
	}
	s.dtmfCur = -1
	return false
}

func (s *stream) writeLocked(pt uint8, marker bool, ts uint32, payload []byte) {
	h := rtp.Header{Version: 2, PayloadType: pt, Marker: marker, SequenceNumber: s.seq, Timestamp: ts, SSRC: s.ssrc}
	s.seq++
	need := h.MarshalSize() + len(payload)
	if cap(s.packet) < need {
		s.packet = make([]byte, 0, need+64)
	}
	n, err := h.MarshalTo(s.packet[:need])
	if err != nil {
		return
	}
	s.packet = append(s.packet[:n], payload...)
	out := s.packet
	if s.srtpOut != nil {
		enc, err := s.srtpOut.EncryptRTP(nil, s.packet, &h)
		if err != nil {
			return
		}
		out = enc
	}
	if _, err := s.conn.WriteToUDPAddrPort(out, s.remote); err == nil {
		s.txPackets++
	}
}

// stats reports the live figures.
func (s *stream) stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Codec: s.ag.codec.Name, SRTP: s.srtpOut != nil, PacketsIn: s.rxPackets, PacketsOut: s.txPackets,
		MediaStart: s.clock0}
	if s.remote.IsValid() {
		st.Remote = s.remote.String()
	}
	if s.jb != nil {
		st.JitterMs = s.jb.JitterMs()
		st.Late = s.jb.stats.Late
		st.Concealed = s.jb.stats.Concealed
	}
	if s.haveSeq {
		expected := int(s.maxSeq-s.baseSeq) + 1
		// DTMF packets share the sequence space and are counted as well.
		st.Lost = max(0, expected-s.rxPackets)
		if expected > 0 {
			st.LossPct = 100 * float64(st.Lost) / float64(expected)
		}
	}
	return st
}

// close stops the loops, closes the socket and the audio files.
func (s *stream) close() {
	s.mu.Lock()
	select {
	case <-s.stop:
		s.mu.Unlock()
		return
	default:
	}
	close(s.stop)
	s.mu.Unlock()
	s.conn.Close()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.src != nil {
		s.src.Close()
	}
	if s.sink != nil {
		if err := s.sink.Close(); err != nil {
			s.log.Warn("closing the recording", "error", err)
		}
	}
}
