package ivr

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/kaopu/kaopu/internal/media"
	"github.com/kaopu/kaopu/internal/media/codec"
	"github.com/kaopu/kaopu/internal/media/dtmf"
	"github.com/kaopu/kaopu/internal/sdpx"
	"github.com/pion/rtp"
)

const (
	frameMs      = 20
	frameSamples = Rate * frameMs / 1000
	// maxCatchUp is the most frames one late tick sends (200 ms).
	maxCatchUp = 10
	// latchWindow: how long the endpoint may latch to a source other than
	// the SDP address (see doc.go; the relay's DefaultLatchWindow).
	latchWindow = media.DefaultLatchWindow
	// digitQueue is how many digits wait for CollectDigits; more are dropped.
	digitQueue = 64
	// maxPayload is the most payload bytes decoded for Frames: a
	// 1500-byte datagram's worth (G.711: a sample a byte; G.722: two).
	maxPayload = 1500
)

// FrameSamples is the number of samples in one 20 ms frame at Rate.
const FrameSamples = frameSamples

// Frames is an application that exchanges audio with the caller frame by
// frame (a conference mixer) rather than through Play and CollectDigits.
// Both methods run on the endpoint's goroutines, so they must not block
// and, to keep the media path allocation-free, should not allocate.
type Frames interface {
	// Heard gets each RTP payload of the caller's audio decoded to PCM at
	// the endpoint's SampleRate (telephone-events are not audio: they
	// stay digits), in arrival order, on the receive goroutine. pcm is
	// reused once Heard returns.
	Heard(pcm []int16)
	// Next fills the next 20 ms frame (SampleRate/50 samples) to send to
	// the caller. The media clock calls it every 20 ms while no prompt
	// plays (a prompt being played takes precedence).
	Next(frame []int16)
}

// Config is what Answer needs from the server.
type Config struct {
	Pool *media.PortPool
	// IP is the address written in SDP (public_ip, else the pool's).
	IP  netip.Addr
	Log *slog.Logger // nil discards
	// Wideband also accepts G.722 (16 kHz audio), when the offer lists it
	// before PCMU and PCMA; prompts are then resampled to 16 kHz. For
	// applications that take audio frames (Connect), such as conferences.
	Wideband bool
}

// Endpoint is the server's side of the media of one call that ends here.
// Play, PlayInterruptible and CollectDigits may be called from one
// goroutine at a time (the application's); Close from any.
type Endpoint struct {
	log    *slog.Logger
	pair   *media.PortPair
	conn   *net.UDPConn
	codec  codec.Info
	pt     uint8
	dtmfPT int // -1: none negotiated
	sdpRTP netip.AddrPort
	start  time.Time

	mu      sync.Mutex
	remote  netip.AddrPort
	latched bool
	digits  []rune
	queue   Audio         // prompt samples still to send
	done    chan struct{} // closed when queue runs dry; nil when idle
	lastRx  time.Time

	frames Frames // Connect's; nil: silence when no prompt plays

	digitCh chan struct{} // a digit arrived (capacity 1)
	stop    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
	closed  bool
	kept    bool // Release handed the pair on
}

// Answer takes a port pair and answers the caller's SDP offer: it returns
// the endpoint, already sending silence, and the SDP answer to send in the
// 200 OK. Errors: ErrBadOffer, ErrNoCodec, or media.ErrNoPorts wrapped.
func Answer(cfg Config, offer []byte) (*Endpoint, []byte, error) {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	off, err := sdpx.Parse(offer)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrBadOffer, err)
	}
	st := &off.Audio
	if st.Secure() {
		return nil, nil, fmt.Errorf("%w: %s needs SRTP", ErrNoCodec, st.Proto)
	}
	var chosen, event *sdpx.PT
	for i := range st.PTs {
		p := &st.PTs[i]
		switch {
		case p.ClockRate != 8000:
		case chosen == nil && (strings.EqualFold(p.Name, "PCMU") || strings.EqualFold(p.Name, "PCMA") ||
			cfg.Wideband && strings.EqualFold(p.Name, "G722")):
			chosen = p
		case event == nil && strings.EqualFold(p.Name, "telephone-event"):
			event = p
		}
	}
	if chosen == nil || st.Disabled() {
		return nil, nil, ErrNoCodec
	}
	info, _ := codec.Lookup(chosen.Name)
	pts := []sdpx.PT{*chosen}
	ep := &Endpoint{log: log, codec: info, pt: chosen.Number, dtmfPT: -1,
		digitCh: make(chan struct{}, 1), stop: make(chan struct{})}
	if event != nil {
		ev := *event
		ev.Fmtp = "0-16"
		pts = append(pts, ev)
		ep.dtmfPT = int(ev.Number)
	}
	ep.pair, err = cfg.Pool.Allocate()
	if err != nil {
		return nil, nil, err
	}
	if ep.conn, err = ep.pair.Conn(); err != nil {
		ep.pair.Close()
		return nil, nil, err
	}
	// The answer: the offer's m= lines, our address and port, the codec
	// and telephone-event, and the direction RFC 3264 §6.1 derives from
	// the offer's (we both send and receive).
	ans := &sdpx.Session{Media: off.Media, Audio: *st}
	ans.Audio.Addr = cfg.IP
	ans.Audio.PTs = pts
	ans.Audio.Direction = answerDirection(st.Effective())
	body, err := sdpx.Rewrite(ans, cfg.IP, int(ep.pair.RTP().Port()), sdpx.RewriteOptions{
		Origin: sdpx.NewOrigin(), Codecs: pts, AnswerTo: off})
	if err != nil {
		ep.conn.Close()
		ep.pair.Close()
		return nil, nil, fmt.Errorf("%w: %w", ErrBadOffer, err)
	}
	if !st.Addr.IsUnspecified() {
		ep.sdpRTP = netip.AddrPortFrom(st.Addr, uint16(st.Port))
		ep.remote = ep.sdpRTP
	}
	ep.start = time.Now()
	ep.wg.Add(2)
	go ep.receive()
	go ep.clock()
	return ep, body, nil
}

func answerDirection(offer sdpx.Direction) sdpx.Direction {
	switch offer {
	case sdpx.SendOnly:
		return sdpx.RecvOnly
	case sdpx.RecvOnly:
		return sdpx.SendOnly
	case sdpx.Inactive:
		return sdpx.Inactive
	}
	return sdpx.SendRecv
}

// SampleRate is the rate of the audio Frames exchange: 8000, or 16000
// with G.722.
func (ep *Endpoint) SampleRate() int { return ep.codec.SampleRate }

// Codec is the negotiated codec's name ("PCMU", "PCMA" or "G722").
func (ep *Endpoint) Codec() string { return ep.codec.Name }

// DTMF reports whether telephone-event was negotiated.
func (ep *Endpoint) DTMF() bool { return ep.dtmfPT >= 0 }

// Local is the RTP address the answer gave.
func (ep *Endpoint) Local() netip.AddrPort { return ep.pair.RTP() }

// LastReceived is when the last RTP packet from the caller arrived (zero
// before any): the SIP side hangs up a call whose media stopped.
func (ep *Endpoint) LastReceived() time.Time {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return ep.lastRx
}

// Connect hands the caller's audio to f and takes what the endpoint sends
// between prompts from it (see Frames); nil disconnects, back to silence.
// Digits still go to CollectDigits, and Play still works: a prompt is sent
// instead of f's frames while it plays.
func (ep *Endpoint) Connect(f Frames) {
	ep.mu.Lock()
	ep.frames = f
	ep.mu.Unlock()
}

// Play sends the prompts one after another and returns when the last
// sample has been sent, or at once with ctx's error (the rest is dropped)
// or ErrClosed.
func (ep *Endpoint) Play(ctx context.Context, prompts ...Audio) error {
	_, err := ep.play(ctx, false, prompts)
	return err
}

// PlayInterruptible is Play that stops at the first digit the caller
// presses (barge-in), or at once if digits are already waiting; the digit
// stays queued for CollectDigits. interrupted says whether it stopped so.
func (ep *Endpoint) PlayInterruptible(ctx context.Context, prompts ...Audio) (interrupted bool, err error) {
	return ep.play(ctx, true, prompts)
}

func (ep *Endpoint) play(ctx context.Context, barge bool, prompts []Audio) (bool, error) {
	ep.mu.Lock()
	if ep.closed {
		ep.mu.Unlock()
		return false, ErrClosed
	}
	if barge && len(ep.digits) > 0 {
		ep.mu.Unlock()
		return true, nil
	}
	for _, p := range prompts {
		ep.queue = append(ep.queue, p...)
	}
	done := make(chan struct{})
	if len(ep.queue) == 0 {
		close(done) // nothing to play; the clock must not close it again
	} else {
		ep.done = done
	}
	ep.mu.Unlock()
	digitCh := ep.digitCh
	if !barge {
		digitCh = nil
	}
	for {
		select {
		case <-done:
			return false, nil
		case <-ep.stop:
			return false, ErrClosed
		case <-ctx.Done():
			ep.flush()
			return false, ctx.Err()
		case <-digitCh:
			ep.mu.Lock()
			n := len(ep.digits)
			ep.mu.Unlock()
			ep.signalDigit() // leave the signal for CollectDigits
			if n > 0 {
				ep.flush()
				return true, nil
			}
		}
	}
}

// flush drops what is left of the prompt being played.
func (ep *Endpoint) flush() {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	ep.queue = ep.queue[:0]
	if ep.done != nil {
		close(ep.done)
		ep.done = nil
	}
}

// ClearDigits drops the digits typed so far (before a prompt whose answer
// must not be typed ahead, such as a PIN after a failure).
func (ep *Endpoint) ClearDigits() {
	ep.mu.Lock()
	ep.digits = ep.digits[:0]
	ep.mu.Unlock()
}

// CollectDigits returns the digits the caller enters: up to max digits
// (0: no limit), ended early by the terminator digit (0: none; it is not
// included), each within timeout of the previous one (or of the call, for
// the first). Digits typed before the call count (type-ahead). On
// ErrTimeout the digits entered so far are returned too: a caller who
// typed a number and waited instead of pressing # has still entered it.
func (ep *Endpoint) CollectDigits(ctx context.Context, max int, terminator rune, timeout time.Duration) (string, error) {
	var got []rune
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		ep.mu.Lock()
		for len(ep.digits) > 0 {
			d := ep.digits[0]
			ep.digits = ep.digits[1:]
			if terminator != 0 && d == terminator {
				ep.mu.Unlock()
				return string(got), nil
			}
			got = append(got, d)
			if max > 0 && len(got) >= max {
				ep.mu.Unlock()
				return string(got), nil
			}
			if !t.Stop() {
				<-t.C
			}
			t.Reset(timeout)
		}
		closed := ep.closed
		ep.mu.Unlock()
		if closed {
			return string(got), ErrClosed
		}
		select {
		case <-ep.digitCh:
		case <-ep.stop:
			return string(got), ErrClosed
		case <-ctx.Done():
			return string(got), ctx.Err()
		case <-t.C:
			return string(got), ErrTimeout
		}
	}
}

func (ep *Endpoint) signalDigit() {
	select {
	case ep.digitCh <- struct{}{}:
	default:
	}
}

// receive reads the caller's RTP: it latches the address, queues the
// digits of telephone-events and, when Connect gave it Frames, decodes the
// audio for them.
func (ep *Endpoint) receive() {
	defer ep.wg.Done()
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	var rx dtmf.Receiver
	dec := ep.codec.NewDecoder()
	pcm := make([]int16, 0, 2*maxPayload)
	for {
		n, from, err := ep.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if pkt.Unmarshal(buf[:n]) != nil || pkt.Version != 2 {
			continue
		}
		pt := int(pkt.PayloadType)
		if pt != int(ep.pt) && pt != ep.dtmfPT {
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		now := time.Now()
		ep.mu.Lock()
		ep.lastRx = now
		switch {
		case from == ep.remote && ep.latched:
		case from == ep.sdpRTP, !ep.latched && now.Sub(ep.start) < latchWindow:
			if ep.remote != from || !ep.latched {
				ep.log.Debug("media latched", "remote", from)
			}
			ep.remote, ep.latched = from, true
		default:
			ep.mu.Unlock()
			continue // a stranger: never a digit
		}
		var digit rune
		if pt == ep.dtmfPT {
			digit, _ = rx.Packet(pkt.Timestamp, pkt.Payload)
		}
		if digit != 0 && len(ep.digits) < digitQueue {
			ep.digits = append(ep.digits, digit)
		}
		frames := ep.frames
		ep.mu.Unlock()
		if frames != nil && pt == int(ep.pt) && len(pkt.Payload) <= maxPayload {
			pcm = dec.Decode(pcm[:0], pkt.Payload)
			frames.Heard(pcm)
		}
		if digit != 0 {
			ep.log.Debug("digit", "digit", string(digit))
			ep.signalDigit()
		}
	}
}

// clock sends one frame every 20 ms: prompt audio, else the connected
// Frames' audio, else silence.
func (ep *Endpoint) clock() {
	defer ep.wg.Done()
	var b [8]byte
	rand.Read(b[:])
	ssrc, seq, ts := binary.BigEndian.Uint32(b[:]), binary.BigEndian.Uint16(b[4:]), uint32(binary.BigEndian.Uint16(b[6:]))<<8
	enc := ep.codec.NewEncoder()
	// prompt is a frame of the prompt queue (at Rate); frame is what is
	// encoded, at the codec's rate: prompts are resampled for G.722.
	prompt := make([]int16, frameSamples)
	frame := make([]int16, ep.codec.SamplesPer(frameMs))
	var up *codec.Resampler
	if ep.codec.SampleRate != Rate {
		up = codec.NewResampler(Rate, ep.codec.SampleRate)
	}
	var payload, packet []byte
	const period = frameMs * time.Millisecond
	t0 := time.Now()
	sent := int64(0)
	tick := time.NewTicker(period)
	defer tick.Stop()
	marker := true
	for {
		now := time.Now()
		due := 1 + int64(now.Sub(t0)/period)
		if due-sent > maxCatchUp {
			// A stall: skip it rather than send a burst; the timestamp
			// still moves by the time skipped.
			ts += uint32((due - sent - 1) * frameSamples)
			sent = due - 1
			marker = true
		}
		for ; sent < due; sent++ {
			ep.mu.Lock()
			playing := ep.done != nil
			n := copy(prompt, ep.queue)
			ep.queue = ep.queue[n:]
			clear(prompt[n:])
			if len(ep.queue) == 0 && ep.done != nil {
				close(ep.done)
				ep.done = nil
			}
			dst, frames := ep.remote, ep.frames
			ep.mu.Unlock()
			switch {
			case !playing && frames != nil:
				frames.Next(frame)
			case up != nil:
				// The resampler gives a frame's worth once primed; a
				// short first frame is padded.
				n := copy(frame, up.Process(frame[:0], prompt))
				clear(frame[n:])
			default:
				copy(frame, prompt)
			}
			payload = enc.Encode(payload[:0], frame)
			h := rtp.Header{Version: 2, PayloadType: ep.pt, Marker: marker, SequenceNumber: seq, Timestamp: ts, SSRC: ssrc}
			marker = false
			seq++
			ts += frameSamples
			if dst.IsValid() && dst.Port() != 0 {
				if need := h.MarshalSize() + len(payload); cap(packet) < need {
					packet = make([]byte, need)
				}
				if n, err := h.MarshalTo(packet[:cap(packet)]); err == nil {
					packet = append(packet[:n], payload...)
					ep.conn.WriteToUDPAddrPort(packet, dst)
				}
			}
		}
		select {
		case <-ep.stop:
			return
		case <-tick.C:
		}
	}
}

// Close stops the endpoint, waits for its goroutines, closes its socket
// and gives its ports back (unless Release took them). Plays and
// CollectDigits under way return ErrClosed. A second Close does nothing.
func (ep *Endpoint) Close() error {
	var err error
	ep.once.Do(func() {
		ep.mu.Lock()
		ep.closed = true
		kept := ep.kept
		ep.mu.Unlock()
		close(ep.stop)
		err = ep.conn.Close()
		ep.wg.Wait()
		if !kept {
			err = errors.Join(err, ep.pair.Close())
		}
	})
	return err
}

// Release stops the endpoint like Close but hands its port pair to the
// caller instead of freeing it, with where the caller's media comes from:
// the call layer then makes a media.Leg of it and bridges the caller to
// an outbound leg without a re-INVITE (the caller's media address stays
// the same). The caller of Release owns the pair and must close it. After
// Close it returns nil.
func (ep *Endpoint) Release() (*media.PortPair, netip.AddrPort) {
	ep.mu.Lock()
	if ep.closed {
		ep.mu.Unlock()
		return nil, netip.AddrPort{}
	}
	ep.kept = true
	ep.mu.Unlock()
	ep.Close()
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return ep.pair, ep.remote
}
