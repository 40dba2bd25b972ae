package server

import (
	"context"
	"errors"
	"time"

	"github.com/kaopu/kaopu/internal/billing"
	"github.com/kaopu/kaopu/internal/call"
	"github.com/kaopu/kaopu/internal/store"
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
	res, err := s.biller.Start(ctx, c.Caller, t.E164, c.ID)
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
