package server

import (
	"context"
	"errors"
	"time"

	"github.com/kaopu/kaopu/internal/billing"
	"github.com/kaopu/kaopu/internal/call"
	"github.com/kaopu/kaopu/internal/store"
	"github.com/kaopu/kaopu/internal/web"
)

// chargeTrunkCall is the call layer's OnTrunkCall hook: a user with an
// account pays for calls through trunks; the call may last as long as
// the money reserved for it, and is charged at its end. A user without
// an account is not rated (a company's own phones). An error refuses the
// call with 403 and the error as the reason.
func (s *Server) chargeTrunkCall(c *call.Call, t call.TrunkTarget) error {
	if t.E164 == "" {
		return nil // a short code: not rated
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t0 := time.Now()
	res, err := s.biller.Start(ctx, c.Caller, t.E164, c.ID)
	s.billStart.Observe(time.Since(t0))
	switch {
	case errors.Is(err, billing.ErrNoAccount):
		return nil
	case errors.Is(err, billing.ErrInsufficientFunds):
		s.denied.funds.Add(1)
		return refusal("Insufficient Funds")
	case errors.Is(err, billing.ErrNoRate):
		s.denied.noRate.Add(1)
		return refusal("No Rate For Destination")
	case err != nil:
		c.Log.Error("billing refused the call", "error", err)
		return refusal("Billing Unavailable")
	}
	c.Log.Info("rated call", "account", res.Account, "destination", res.Rate.Destination,
		"prefix", res.Rate.Prefix, "max", res.Max.String())
	c.SetCharger(reservation{res})
	return nil
}

// refusal is the reason phrase of a 403 to a trunk call billing refused.
type refusal string

func (r refusal) Error() string { return string(r) }

// reservation adapts a billing reservation to call.Charger.
type reservation struct{ r *billing.Reservation }

func (r reservation) Limit() (time.Duration, time.Duration) { return r.r.Max, r.r.Warn }

func (r reservation) End(ctx context.Context, billsec int, cdrID int64) (store.CDRRating, error) {
	ch, err := r.r.End(ctx, billsec, cdrID)
	return ch.Rating, err
}

// newBillingStartHistogram times Biller.Start of trunk calls — what rating
// and the balance reservation add to call setup — finely below 1 ms (the
// issue's target) and coarsely above.
func newBillingStartHistogram() *web.Histogram {
	us := func(n int) time.Duration { return time.Duration(n) * time.Microsecond }
	return web.NewHistogram(us(10), us(25), us(50), us(75), us(100), us(150), us(200), us(300), us(400), us(500),
		us(600), us(700), us(800), us(900), us(1000), us(1500), us(2000), us(3000), us(5000), us(10_000),
		us(25_000), us(100_000), us(1_000_000))
}

// billingMetrics are billing's samples for /metrics.
func (s *Server) billingMetrics() []web.Metric {
	if s.billStart == nil {
		return nil
	}
	reads, drops := s.biller.CacheStats()
	return append(s.billStart.Metrics("kaopu_billing_start_seconds",
		"Time billing took at the setup of calls through trunks to find the caller's account, rate the destination and reserve the money (every outcome, refusals included)."),
		web.Counter("kaopu_billing_cache_reads_total", "Accounts and users' accounts billing read from the database (its cache missed).", float64(reads)),
		web.Counter("kaopu_billing_cache_drops_total", "Times billing dropped its cached accounts for a change made elsewhere (kaopu account credit|set, a new card).", float64(drops)))
}

// preloadDecks reads the rate decks into memory at start, in the
// background, so that the first rated calls do not wait for them.
func (s *Server) preloadDecks(ctx context.Context) {
	t0 := time.Now()
	if err := s.biller.Preload(ctx); err != nil {
		if ctx.Err() == nil {
			s.log.Warn("rate decks not preloaded; they load at their first call", "error", err)
		}
		return
	}
	s.log.Debug("rate decks preloaded", "took", time.Since(t0).String())
}
