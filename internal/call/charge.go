package call

import (
	"context"
	"math"
	"sync/atomic"
	"time"

	"github.com/kaopu/kaopu/internal/media/codec"
	"github.com/kaopu/kaopu/internal/store"
)

// Charger is the money side of a rated call (internal/billing through
// the server's Config.OnTrunkCall hook): how long the call may last, and
// what it cost once it ended.
type Charger interface {
	// Limit is how long the call may last from its answer, and when (from
	// the answer) the caller hears the warning tone; max 0: no limit.
	Limit() (max, warn time.Duration)
	// End is called once, when the call ends, with the seconds it was up;
	// the rating goes into the call's record.
	End(ctx context.Context, billsec int, cdrID int64) (store.CDRRating, error)
}

// SetCharger makes c a rated call (from the OnTrunkCall hook).
func (c *Call) SetCharger(ch Charger) { c.charger = ch }

// armLimit hangs up an answered call when its money runs out, and plays
// the warning tone to the caller before that; the timers stop with the call.
func (m *Manager) armLimit(c *Call) {
	if c.charger == nil {
		return
	}
	max, warn := c.charger.Limit()
	if max <= 0 {
		return
	}
	since := time.Since(c.Answered)
	cut := time.AfterFunc(max-since, func() {
		c.Log.Info("credit exhausted, hanging up", "after", max.String())
		m.hangUp(c, "credit exhausted")
	})
	var beep atomic.Pointer[time.Timer]
	if c.med != nil && warn < max {
		beep.Store(time.AfterFunc(max0(warn-since), func() {
			c.Log.Info("credit running out: warning tone", "left", (max - warn).Round(time.Second).String())
			c.med.legA.Overlay(warningTone)
		}))
	}
	context.AfterFunc(c.ctx, func() {
		cut.Stop()
		if t := beep.Load(); t != nil {
			t.Stop()
		}
	})
}

func max0(d time.Duration) time.Duration { return max(d, 0) }

// charge settles a rated call at its end and records the cost.
func (m *Manager) charge(c *Call, rec store.CDR) {
	if c.charger == nil {
		return
	}
	billsec := rec.Billsec
	if c.cdr == nil && !c.Answered.IsZero() { // no call records kept
		billsec = int(time.Since(c.Answered) / time.Second)
	}
	r, err := c.charger.End(context.WithoutCancel(c.ctx), billsec, rec.ID)
	if err != nil {
		c.Log.Error("charging the call failed", "billsec", rec.Billsec, "error", err)
		return
	}
	c.cdr.Rate(r)
}

// warningTone is three short 1 kHz beeps (150 ms on, 150 ms off) in the
// G.711 codecs, laid over what the caller hears a minute before a prepaid
// call is cut.
var warningTone = func() map[string][]byte {
	const rate, freq = 8000, 1000.0
	on, off := rate*150/1000, rate*150/1000
	var pcm []int16
	for b := range 3 {
		for i := range on {
			pcm = append(pcm, int16(8000*math.Sin(2*math.Pi*freq*float64(i)/rate)))
		}
		if b < 2 {
			pcm = append(pcm, make([]int16, off)...)
		}
	}
	u, a := make([]byte, len(pcm)), make([]byte, len(pcm))
	for i, s := range pcm {
		u[i], a[i] = codec.EncodeUlaw(s), codec.EncodeAlaw(s)
	}
	return map[string][]byte{"pcmu": u, "pcma": a}
}()
