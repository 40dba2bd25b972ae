package ua

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/media/codec"
	"github.com/kaopu/kaopu/internal/media/dtmf"
)

// TestJitterBufferReordersAndConceals feeds 20 ms PCMU frames of a 440 Hz
// tone with 5% loss and up to 60 ms of random delay (so they arrive out of
// order) and plays one frame every 20 ms: every played frame after the
// start holds the tone, lost frames are concealed, and nothing plays twice.
func TestJitterBufferReordersAndConceals(t *testing.T) {
	c := codec.PCMU
	enc := c.NewEncoder()
	dec := c.NewDecoder()
	jb := newJitterBuffer(c.ClockRate, c.SampleRate, frameMs, dec.Decode)
	rng := rand.New(rand.NewPCG(1, 2))
	type arrival struct {
		at time.Time
		ts uint32
		p  []byte
	}
	start := time.Unix(1000, 0)
	var arrivals []arrival
	const frames = 500
	lost := 0
	for i := range frames {
		pcm := make([]int16, 160)
		for k := range pcm {
			n := i*160 + k
			pcm[k] = int16(8000 * math.Sin(2*math.Pi*440*float64(n)/8000))
		}
		if rng.Float64() < 0.05 {
			lost++
			continue
		}
		sent := start.Add(time.Duration(i) * 20 * time.Millisecond)
		arrivals = append(arrivals, arrival{sent.Add(time.Duration(rng.IntN(60)) * time.Millisecond),
			uint32(4000000000 + i*160), enc.Encode(nil, pcm)}) // the timestamp wraps mid-way
	}
	frame := make([]int16, 160)
	weak := 0
	for tick := 0; tick < frames+20; tick++ {
		now := start.Add(time.Duration(tick)*20*time.Millisecond + 10*time.Millisecond)
		for _, a := range arrivals {
			if !a.at.After(now) && !a.at.Before(now.Add(-20*time.Millisecond)) {
				jb.put(a.ts, a.p, a.at)
			}
		}
		jb.next(frame, now)
		if tick > 20 && tick < frames-10 {
			if amp := goertzel(frame, 8000, 440); amp < 2000 {
				weak++
			}
		}
	}
	if weak > 5 {
		t.Errorf("%d frames without the tone (of %d; %d lost)", weak, frames, lost)
	}
	if jb.stats.Concealed < lost/2 || jb.stats.Played < frames-lost-30 {
		t.Errorf("stats %+v with %d of %d frames lost", jb.stats, lost, frames)
	}
	if j := jb.JitterMs(); j < 5 || j > 40 {
		t.Errorf("jitter estimate %.1f ms for 0-60 ms random delay", j)
	}
}

func TestPLCFadesOut(t *testing.T) {
	p := newPLC(8000)
	for i := range 10 {
		f := make([]int16, 160)
		for k := range f {
			f[k] = int16(8000 * math.Sin(2*math.Pi*500*float64(i*160+k)/8000))
		}
		p.remember(f)
	}
	out := p.conceal(nil, 160) // 20 ms: mostly full level
	if a := goertzel(out, 8000, 500); a < 5000 {
		t.Errorf("first concealed frame has the tone at %.0f, want near 8000", a)
	}
	out = p.conceal(nil, 480) // to 80 ms: silent from 60 ms on
	for _, s := range out[320:] {
		if s != 0 {
			t.Fatalf("concealment still sounding after 60 ms: %d", s)
		}
	}
}

func FuzzParseCrypto(f *testing.F) {
	f.Add("1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:32")
	f.Add("x AES_CM_128_HMAC_SHA1_80 inline:")
	f.Fuzz(func(t *testing.T, v string) {
		if _, key, err := parseCrypto(v); err == nil && len(key) != 30 {
			t.Fatalf("accepted a %d-byte key", len(key))
		}
	})
}

func FuzzParseDTMF(f *testing.F) {
	f.Add("application/dtmf-relay", []byte("Signal=5\r\nDuration=160\r\n"))
	f.Add("application/dtmf", []byte("#"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		if r, ok := parseInfoDTMF(ct, body); ok && dtmf.Code(r) < 0 {
			t.Fatalf("returned %q, not a digit", r)
		}
		if ev, ok := dtmf.Parse(body); ok {
			if got, _ := dtmf.Parse(ev.Append(nil)); got != ev {
				t.Fatalf("event %+v does not survive a round trip: %+v", ev, got)
			}
		}
	})
}
