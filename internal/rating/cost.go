package rating

import (
	"math"
	"math/bits"

	"github.com/kaopu/kaopu/internal/money"
	"github.com/kaopu/kaopu/internal/store"
)

// Billed returns the seconds a call of billsec answered seconds is billed
// for: 0 for 0, at least Initial, then whole Increments rounded up.
func Billed(r store.Rate, billsec int) int {
	if billsec <= 0 {
		return 0
	}
	if billsec <= r.Initial {
		return r.Initial
	}
	inc := max(r.Increment, 1)
	rest := billsec - r.Initial
	return r.Initial + (rest+inc-1)/inc*inc
}

// Cost returns the billed seconds and the price of a call of billsec
// answered seconds: 0 and nothing for 0 s, else ConnectFee + PerMinute ×
// billed / 60, rounded half up to the micro-unit once.
func Cost(r store.Rate, billsec int) (billed int, cost money.Amount, err error) {
	billed = Billed(r, billsec)
	if billed == 0 {
		return 0, 0, nil
	}
	c, err := money.MulDiv(r.PerMinute, int64(billed), 60)
	if err != nil {
		return billed, 0, err
	}
	if c > math.MaxInt64-r.ConnectFee {
		return billed, 0, money.ErrOverflow
	}
	return billed, r.ConnectFee + c, nil
}

// Unlimited is what MaxSeconds returns when money is not what limits a
// call: the rate is 0 and the connect fee affordable.
const Unlimited = math.MaxInt32

// MaxSeconds returns the longest call that avail pays for in full: the
// largest billsec with Cost(billsec) <= avail, which always ends on an
// increment boundary (one second more costs one increment more). 0 means
// not even the first increment is affordable; Unlimited that the rate is
// free.
func MaxSeconds(r store.Rate, avail money.Amount) int {
	b := avail - r.ConnectFee
	if b < 0 || avail < 0 {
		return 0
	}
	if r.PerMinute <= 0 {
		return Unlimited
	}
	// round(rate × s / 60) <= b  ⇔  floor((rate × s + 30) / 60) <= b
	//                           ⇔  rate × s <= 60 × b + 29.
	hi, lo := bits.Mul64(uint64(b), 60)
	lo, carry := bits.Add64(lo, 29, 0)
	hi += carry
	rate := uint64(r.PerMinute)
	var smax uint64
	if hi >= rate {
		smax = Unlimited
	} else {
		smax, _ = bits.Div64(hi, lo, rate)
		smax = min(smax, Unlimited)
	}
	s := int(smax)
	inc := max(r.Increment, 1)
	first := r.Initial
	if first == 0 {
		first = inc
	}
	if s < first {
		return 0
	}
	return r.Initial + (s-r.Initial)/inc*inc
}
