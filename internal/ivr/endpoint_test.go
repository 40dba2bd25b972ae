package ivr

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/media"
	"github.com/kaopu/kaopu/internal/media/codec"
	"github.com/kaopu/kaopu/internal/media/dtmf"
	"github.com/kaopu/kaopu/internal/media/mediatest"
	"github.com/kaopu/kaopu/internal/sdpx"
	"github.com/pion/rtp"
)

// The tests bind 127.78.1.1 (nothing else on the machine uses it) and
// ports outside the benchmarks' 16000-31999.
const testIP = "127.78.1.1"

var nextPorts atomic.Int32

func testPool(t *testing.T) *media.PortPool {
	t.Helper()
	low := 41000 + 20*int(nextPorts.Add(1))
	p, err := media.NewPortPool(media.PortPoolConfig{IP: netip.MustParseAddr(testIP), Low: low, High: low + 19})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func offer(addr netip.AddrPort, fmts string, extra ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=phone 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP %s\r\n",
		addr.Addr(), addr.Addr(), addr.Port(), fmts)
	for _, l := range extra {
		b.WriteString(l + "\r\n")
	}
	return []byte(b.String())
}

var stdOffer = []string{"a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", "a=sendrecv"}

// phone is the caller's side: a socket that sends RTP and DTMF events to
// the endpoint and reads what it sends.
type phone struct {
	*mediatest.Endpoint
	t  *testing.T
	to netip.AddrPort
}

func newCall(t *testing.T, pool *media.PortPool, fmts string, attrs ...string) (*Endpoint, *phone, *sdpx.Session) {
	t.Helper()
	ph := &phone{Endpoint: mediatest.NewEndpoint(t, testIP+":0"), t: t}
	ep, answer, err := Answer(Config{Pool: pool, IP: netip.MustParseAddr(testIP)}, offer(ph.Addr(), fmts, attrs...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	s, err := sdpx.Parse(answer)
	if err != nil {
		t.Fatalf("answer does not parse: %v\n%s", err, answer)
	}
	ph.to = netip.AddrPortFrom(s.Audio.Addr, uint16(s.Audio.Port))
	return ep, ph, s
}

// digit sends one RFC 4733 event the way phones do: three updates, then
// the end packet three times, all with the event's start timestamp.
func (p *phone) digit(d rune, pt uint8) {
	code := dtmf.Code(d)
	start := p.TS
	for i := 1; i <= 3; i++ {
		p.Send(p.to, mediatest.RTP(pt, i == 1, p.Seq, start, p.SSRC, dtmf.Event{Code: code, Volume: 10, Duration: uint16(160 * i)}.Append(nil)))
		p.Seq++
	}
	for range 3 {
		p.Send(p.to, mediatest.RTP(pt, false, p.Seq, start, p.SSRC, dtmf.Event{Code: code, End: true, Volume: 10, Duration: 480}.Append(nil)))
		p.Seq++
	}
	p.TS += 800
}

func (p *phone) digits(s string) {
	for _, d := range s {
		p.digit(d, 101)
	}
}

func TestAnswerSDP(t *testing.T) {
	pool := testPool(t)
	t.Run("offer order, PCMA first", func(t *testing.T) {
		ep, _, s := newCall(t, pool, "8 0 101", stdOffer...)
		if ep.Codec() != "PCMA" || !ep.DTMF() {
			t.Fatalf("codec %s dtmf %v", ep.Codec(), ep.DTMF())
		}
		var names []string
		for _, p := range s.Audio.PTs {
			names = append(names, p.String())
		}
		if got := strings.Join(names, ","); got != "8 PCMA/8000,101 telephone-event/8000" {
			t.Fatalf("answer codecs %s", got)
		}
		if s.Audio.Addr.String() != testIP || s.Audio.Port != int(ep.Local().Port()) || s.Audio.Direction != sdpx.SendRecv {
			t.Fatalf("answer %v:%d %v, endpoint %v", s.Audio.Addr, s.Audio.Port, s.Audio.Direction, ep.Local())
		}
	})
	t.Run("opus and G.722 skipped, no telephone-event", func(t *testing.T) {
		ep, _, s := newCall(t, pool, "111 9 0", "a=rtpmap:111 opus/48000/2", "a=rtpmap:9 G722/8000", "a=rtpmap:0 PCMU/8000")
		if ep.Codec() != "PCMU" || ep.DTMF() || len(s.Audio.PTs) != 1 {
			t.Fatalf("codec %s dtmf %v pts %v", ep.Codec(), ep.DTMF(), s.Audio.PTs)
		}
	})
	t.Run("sendonly offer gets recvonly", func(t *testing.T) {
		_, _, s := newCall(t, pool, "0 101", "a=rtpmap:101 telephone-event/8000", "a=sendonly")
		if s.Audio.Direction != sdpx.RecvOnly {
			t.Fatalf("direction %v", s.Audio.Direction)
		}
	})
	t.Run("video rejected", func(t *testing.T) {
		ph := mediatest.NewEndpoint(t, testIP+":0")
		body := append(offer(ph.Addr(), "0"), "m=video 5000 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"...)
		ep, answer, err := Answer(Config{Pool: pool, IP: netip.MustParseAddr(testIP)}, body)
		if err != nil {
			t.Fatal(err)
		}
		defer ep.Close()
		s, _ := sdpx.Parse(answer)
		if len(s.Media) != 2 || s.Media[1].Port != 0 || s.Media[0].Port == 0 {
			t.Fatalf("media %+v", s.Media)
		}
	})
	free := pool.Free()
	for _, c := range []struct {
		name string
		body []byte
		want error
	}{
		{"no G.711", offer(netip.MustParseAddrPort("127.0.0.1:4000"), "9 111", "a=rtpmap:111 opus/48000/2"), ErrNoCodec},
		{"SRTP only", []byte(strings.Replace(string(offer(netip.MustParseAddrPort("127.0.0.1:4000"), "0")), "RTP/AVP", "RTP/SAVP", 1)), ErrNoCodec},
		{"not SDP", []byte("hello"), ErrBadOffer},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := Answer(Config{Pool: pool, IP: netip.MustParseAddr(testIP)}, c.body); !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
			if pool.Free() != free {
				t.Fatalf("a refused offer kept ports: %d free, was %d", pool.Free(), free)
			}
		})
	}
}

// TestPlayPacedTone plays a one-second 1 kHz tone: it arrives as 50
// consecutive 20 ms PCMU frames holding the tone, paced in real time,
// with consecutive sequence numbers and timestamps, and silence around it.
func TestPlayPacedTone(t *testing.T) {
	ep, ph, _ := newCall(t, testPool(t), "0 101", stdOffer...)
	// The endpoint sends silence from the start, to the SDP address.
	if b, _ := ph.MustRecv(time.Second); len(b) != 12+160 {
		t.Fatalf("first packet %d bytes", len(b))
	}
	ph.Drain()
	type arrival struct {
		at time.Time
		b  []byte
	}
	got := make(chan []arrival)
	go func() {
		var as []arrival
		end := time.Now().Add(1600 * time.Millisecond)
		for time.Now().Before(end) {
			b, _, err := ph.Recv(100 * time.Millisecond)
			if err == nil {
				as = append(as, arrival{time.Now(), b})
			}
		}
		got <- as
	}()
	start := time.Now()
	if err := ep.Play(context.Background(), Tone(1000, time.Second)); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if took < 900*time.Millisecond || took > 1500*time.Millisecond {
		t.Fatalf("Play of 1 s returned after %v", took)
	}
	var toneFrames int
	var lastSeq uint16
	var lastTS uint32
	var firstTone, lastTone time.Time
	have := false
	for _, a := range <-got {
		var p rtp.Packet
		if err := p.Unmarshal(a.b); err != nil || p.PayloadType != 0 || len(p.Payload) != 160 {
			t.Fatalf("bad packet: %v pt %d len %d", err, p.PayloadType, len(p.Payload))
		}
		if have && (p.SequenceNumber != lastSeq+1 || p.Timestamp != lastTS+160) {
			t.Fatalf("seq %d ts %d after %d %d", p.SequenceNumber, p.Timestamp, lastSeq, lastTS)
		}
		have, lastSeq, lastTS = true, p.SequenceNumber, p.Timestamp
		pcm := codec.PCMU.NewDecoder().Decode(nil, p.Payload)
		if power(pcm, 1000) > 0.1 {
			toneFrames++
			if firstTone.IsZero() {
				firstTone = a.at
			}
			lastTone = a.at
		}
	}
	// 8000 samples: 50 frames exactly.
	if toneFrames != 50 {
		t.Fatalf("%d frames held the tone, want 50", toneFrames)
	}
	if span := lastTone.Sub(firstTone); span < 800*time.Millisecond || span > 1300*time.Millisecond {
		t.Fatalf("tone frames arrived over %v, want about 980 ms (paced)", span)
	}
}

// power is the share of pcm's energy at freq (Goertzel).
func power(pcm []int16, freq float64) float64 {
	k := 2 * math.Cos(2*math.Pi*freq/Rate)
	var s1, s2, total float64
	for _, v := range pcm {
		x := float64(v)
		s1, s2 = x+k*s1-s2, s1
		total += x * x
	}
	if total == 0 {
		return 0
	}
	return (s1*s1 + s2*s2 - k*s1*s2) / (total * float64(len(pcm)) / 2)
}

func TestCollectDigits(t *testing.T) {
	pool := testPool(t)
	ctx := context.Background()
	t.Run("terminated by #, each event once", func(t *testing.T) {
		ep, ph, _ := newCall(t, pool, "0 101", stdOffer...)
		ph.digits("1234#")
		got, err := ep.CollectDigits(ctx, 10, '#', 2*time.Second)
		if err != nil || got != "1234" {
			t.Fatalf("%q %v", got, err)
		}
	})
	t.Run("max digits, the rest stays queued", func(t *testing.T) {
		ep, ph, _ := newCall(t, pool, "0 101", stdOffer...)
		ph.digits("98765")
		if got, err := ep.CollectDigits(ctx, 3, '#', 2*time.Second); err != nil || got != "987" {
			t.Fatalf("%q %v", got, err)
		}
		if got, err := ep.CollectDigits(ctx, 2, 0, 2*time.Second); err != nil || got != "65" {
			t.Fatalf("%q %v", got, err)
		}
	})
	t.Run("typed during a prompt (type-ahead)", func(t *testing.T) {
		ep, ph, _ := newCall(t, pool, "0 101", stdOffer...)
		go func() {
			time.Sleep(100 * time.Millisecond)
			ph.digits("42#")
		}()
		if err := ep.Play(ctx, Silence(400*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if got, err := ep.CollectDigits(ctx, 0, '#', time.Second); err != nil || got != "42" {
			t.Fatalf("%q %v", got, err)
		}
	})
	t.Run("inter-digit timeout returns what was typed", func(t *testing.T) {
		ep, ph, _ := newCall(t, pool, "0 101", stdOffer...)
		ph.digits("77")
		start := time.Now()
		got, err := ep.CollectDigits(ctx, 0, '#', 300*time.Millisecond)
		if !errors.Is(err, ErrTimeout) || got != "77" {
			t.Fatalf("%q %v", got, err)
		}
		if d := time.Since(start); d < 250*time.Millisecond || d > time.Second {
			t.Fatalf("timed out after %v", d)
		}
	})
	t.Run("clear drops type-ahead", func(t *testing.T) {
		ep, ph, _ := newCall(t, pool, "0 101", stdOffer...)
		ph.digits("5")
		mediatest.Eventually(t, time.Second, "digit queued", func() bool {
			ep.mu.Lock()
			defer ep.mu.Unlock()
			return len(ep.digits) == 1
		})
		ep.ClearDigits()
		if got, err := ep.CollectDigits(ctx, 1, 0, 100*time.Millisecond); !errors.Is(err, ErrTimeout) || got != "" {
			t.Fatalf("%q %v", got, err)
		}
	})
	t.Run("a stranger's digits after the latch are ignored", func(t *testing.T) {
		ep, ph, _ := newCall(t, pool, "0 101", stdOffer...)
		ph.digits("1")
		if got, err := ep.CollectDigits(ctx, 1, 0, time.Second); got != "1" || err != nil {
			t.Fatalf("%q %v", got, err)
		}
		stranger := &phone{Endpoint: mediatest.NewEndpoint(t, testIP+":0"), t: t, to: ph.to}
		stranger.digits("666")
		ph.digits("2")
		if got, err := ep.CollectDigits(ctx, 1, 0, time.Second); got != "2" || err != nil {
			t.Fatalf("%q %v", got, err)
		}
	})
	t.Run("context cancelled", func(t *testing.T) {
		ep, _, _ := newCall(t, pool, "0 101", stdOffer...)
		c, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if _, err := ep.CollectDigits(c, 1, 0, 10*time.Second); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%v", err)
		}
	})
}

// TestBargeIn: a key pressed during a long prompt stops it at once, and
// the key is then collected.
func TestBargeIn(t *testing.T) {
	ep, ph, _ := newCall(t, testPool(t), "0 101", stdOffer...)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		time.Sleep(200 * time.Millisecond)
		ph.digits("3")
	}()
	start := time.Now()
	interrupted, err := ep.PlayInterruptible(context.Background(), Tone(440, 5*time.Second))
	if err != nil || !interrupted {
		t.Fatalf("interrupted %v err %v", interrupted, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("stopped after %v", d)
	}
	if got, err := ep.CollectDigits(context.Background(), 1, 0, time.Second); got != "3" || err != nil {
		t.Fatalf("%q %v", got, err)
	}
	// Digits already waiting: a new interruptible prompt does not start.
	<-sent
	ph.digits("4")
	mediatest.Eventually(t, time.Second, "digit queued", func() bool {
		ep.mu.Lock()
		defer ep.mu.Unlock()
		return len(ep.digits) == 1
	})
	if interrupted, err := ep.PlayInterruptible(context.Background(), Tone(440, 5*time.Second)); !interrupted || err != nil {
		t.Fatalf("interrupted %v err %v", interrupted, err)
	}
}

// TestCloseNoLeak: Close ends a Play and a CollectDigits under way with
// ErrClosed, stops both goroutines and gives the ports back; Release hands
// the pair on instead.
func TestCloseNoLeak(t *testing.T) {
	pool := testPool(t)
	before := runtime.NumGoroutine()
	free := pool.Free()
	for range 5 {
		ep, _, _ := newCall(t, pool, "0 101", stdOffer...)
		errs := make(chan error, 2)
		go func() { errs <- ep.Play(context.Background(), Tone(440, 10*time.Second)) }()
		go func() {
			_, err := ep.CollectDigits(context.Background(), 4, '#', 10*time.Second)
			errs <- err
		}()
		time.Sleep(50 * time.Millisecond)
		if err := ep.Close(); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			select {
			case err := <-errs:
				if !errors.Is(err, ErrClosed) {
					t.Fatalf("after Close: %v", err)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("Play or CollectDigits still blocked after Close")
			}
		}
		if err := ep.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if err := ep.Play(context.Background(), Silence(time.Second)); !errors.Is(err, ErrClosed) {
			t.Fatalf("Play after Close: %v", err)
		}
	}
	if pool.Free() != free {
		t.Fatalf("%d pairs free, was %d", pool.Free(), free)
	}
	ep, ph, _ := newCall(t, pool, "0 101", stdOffer...)
	ph.digits("1")
	mediatest.Eventually(t, time.Second, "latched", func() bool { return !ep.LastReceived().IsZero() })
	pair, remote := ep.Release()
	if pair == nil || remote != ph.Addr() || pair.RTP() != ep.Local() {
		t.Fatalf("Release: %v %v", pair, remote)
	}
	if pool.Free() != free-1 {
		t.Fatal("Release freed the pair")
	}
	pair.Close()
	mediatest.Eventually(t, 2*time.Second, "goroutines gone", func() bool { return runtime.NumGoroutine() <= before })
}

// frameTap is a Frames that keeps what it heard and sends a constant.
type frameTap struct {
	mu    sync.Mutex
	heard []int16
	level int16
}

func (f *frameTap) Heard(pcm []int16) {
	f.mu.Lock()
	f.heard = append(f.heard, pcm...)
	f.mu.Unlock()
}

func (f *frameTap) Next(frame []int16) {
	for i := range frame {
		frame[i] = f.level
	}
}

// TestConnectFrames: once connected, the caller's audio reaches Heard
// decoded (and its digits do not, they stay digits), what Next writes is
// what the caller receives, a prompt played meanwhile replaces it, and
// Connect(nil) brings back silence.
func TestConnectFrames(t *testing.T) {
	ep, ph, _ := newCall(t, testPool(t), "8 101", "a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000", "a=sendrecv")
	// A level that A-law carries exactly, so the comparison can be exact.
	level := codec.DecodeAlaw(codec.EncodeAlaw(3000))
	tap := &frameTap{level: level}
	ep.Connect(tap)
	sent := make([]byte, 160)
	want := make([]int16, 160)
	for i := range sent {
		sent[i] = codec.EncodeAlaw(int16(i * 100))
		want[i] = codec.DecodeAlaw(sent[i])
	}
	ph.SendRTP(ph.to, 8, sent)
	ph.digits("5")
	deadline := time.Now().Add(2 * time.Second)
	for {
		tap.mu.Lock()
		n := len(tap.heard)
		tap.mu.Unlock()
		if n >= 160 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	tap.mu.Lock()
	heard := append([]int16(nil), tap.heard...)
	tap.mu.Unlock()
	if len(heard) != 160 || !slices.Equal(heard, want) {
		t.Fatalf("Heard %d samples %v..., want the 160 decoded ones %v...", len(heard), heard[:min(8, len(heard))], want[:8])
	}
	if d, err := ep.CollectDigits(context.Background(), 1, 0, time.Second); err != nil || d != "5" {
		t.Fatalf("digit while connected: %q %v", d, err)
	}
	// What the caller receives is Next's frames.
	ph.Drain()
	recvLevel := func() int16 {
		t.Helper()
		b, _ := ph.MustRecv(time.Second)
		var p rtp.Packet
		if err := p.Unmarshal(b); err != nil || p.PayloadType != 8 {
			t.Fatalf("packet: %v pt %d", err, p.PayloadType)
		}
		pcm := codec.PCMA.NewDecoder().Decode(nil, p.Payload)
		for _, v := range pcm[1:] {
			if v != pcm[0] {
				return math.MaxInt16 // not a constant frame
			}
		}
		return pcm[0]
	}
	if got := recvLevel(); got != level {
		t.Fatalf("caller received level %d, want Next's %d", got, level)
	}
	// A prompt takes precedence while it plays.
	done := make(chan error, 1)
	go func() { done <- ep.Play(context.Background(), Tone(1000, 200*time.Millisecond)) }()
	sawTone := false
	for range 15 {
		if recvLevel() == math.MaxInt16 {
			sawTone = true
		}
	}
	if err := <-done; err != nil || !sawTone {
		t.Fatalf("Play while connected: %v, tone heard %v", err, sawTone)
	}
	ep.Connect(nil)
	ph.Drain()
	recvLevel()
	if got := recvLevel(); got != codec.DecodeAlaw(codec.EncodeAlaw(0)) {
		t.Fatalf("after Connect(nil) the caller receives level %d, want silence", got)
	}
}

// TestWideband: with Config.Wideband an offer of G.722 first is answered
// with G.722; Heard then gets 16 kHz audio (two samples a payload byte),
// Next fills 320-sample frames, and a prompt (8 kHz) still reaches the
// caller, resampled: its tone is what the caller decodes.
func TestWideband(t *testing.T) {
	ph := &phone{Endpoint: mediatest.NewEndpoint(t, testIP+":0"), t: t}
	ep, answer, err := Answer(Config{Pool: testPool(t), IP: netip.MustParseAddr(testIP), Wideband: true},
		offer(ph.Addr(), "9 0", "a=rtpmap:9 G722/8000", "a=rtpmap:0 PCMU/8000"))
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	s, _ := sdpx.Parse(answer)
	ph.to = netip.AddrPortFrom(s.Audio.Addr, uint16(s.Audio.Port))
	if ep.Codec() != "G722" || ep.SampleRate() != 16000 || len(s.Audio.PTs) != 1 || s.Audio.PTs[0].Number != 9 {
		t.Fatalf("codec %s rate %d pts %v", ep.Codec(), ep.SampleRate(), s.Audio.PTs)
	}
	tap := &frameTap{level: 0}
	ep.Connect(tap)
	ph.SendRTP(ph.to, 9, make([]byte, 160))
	deadline := time.Now().Add(2 * time.Second)
	for {
		tap.mu.Lock()
		n := len(tap.heard)
		tap.mu.Unlock()
		if n >= 320 || time.Now().After(deadline) {
			if n != 320 {
				t.Fatalf("Heard %d samples of a 160-byte G.722 payload, want 320", n)
			}
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	done := make(chan error, 1)
	go func() { done <- ep.Play(context.Background(), Tone(1000, 400*time.Millisecond)) }()
	dec := codec.G722.NewDecoder()
	var pcm []int16
	for range 25 {
		b, _ := ph.MustRecv(time.Second)
		var p rtp.Packet
		if err := p.Unmarshal(b); err != nil || p.PayloadType != 9 || len(p.Payload) != 160 {
			t.Fatalf("packet: %v pt %d len %d", err, p.PayloadType, len(p.Payload))
		}
		pcm = dec.Decode(pcm, p.Payload)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	best := 0.0
	for i := 0; i+320 <= len(pcm); i += 320 {
		best = max(best, power16k(pcm[i:i+320], 1000))
	}
	if best < 0.5 {
		t.Fatalf("the 1 kHz prompt reached the G.722 caller at most at %.2f of a frame's energy", best)
	}
}

// power16k is power at 16 kHz.
func power16k(pcm []int16, freq float64) float64 {
	k := 2 * math.Cos(2*math.Pi*freq/16000)
	var s1, s2, total float64
	for _, v := range pcm {
		x := float64(v)
		s1, s2 = x+k*s1-s2, s1
		total += x * x
	}
	if total == 0 {
		return 0
	}
	return (s1*s1 + s2*s2 - k*s1*s2) / (total * float64(len(pcm)) / 2)
}
