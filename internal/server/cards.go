package server

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/kaopu/kaopu/internal/call"
	"github.com/kaopu/kaopu/internal/callingcard"
	"github.com/kaopu/kaopu/internal/config"
	"github.com/kaopu/kaopu/internal/dialplan"
	"github.com/kaopu/kaopu/internal/ivr"
)

// cardService wires the calling-card service to its access numbers
// (cards.access); nil when there are none. The outbound leg (Bridge) is
// not wired yet: it needs the trunk routes, and until then the service
// says the number cannot be reached after the balance and minutes.
func (s *Server) cardService(cfg config.Cards) (func(dialed string) (call.App, bool), error) {
	if len(cfg.Access) == 0 {
		return nil, nil
	}
	prompts, err := ivr.Builtin()
	if err != nil {
		return nil, fmt.Errorf("calling-card prompts: %w", err)
	}
	rate := callingcard.FlatRate{Increment: cfg.Increment}
	if cfg.RatePerMinute != "" {
		if rate.PerMinute, err = micros(cfg.RatePerMinute); err != nil {
			return nil, fmt.Errorf("cards.rate_per_minute: %w", err)
		}
	}
	numbering := dialplan.Numbering{CountryCode: cfg.CountryCode, NationalPrefix: cfg.NationalPrefix,
		InternationalPrefix: cfg.InternationalPrefix}
	app, err := callingcard.New(callingcard.Config{
		Prompts:   prompts,
		Cards:     callingcard.StoreCards{Store: s.st},
		Rater:     rate,
		Charger:   callingcard.StoreCharger{Store: s.st, Rate: rate},
		Normalize: numbering.ToE164,
		// A wrong card number or PIN counts like a failed digest login.
		OnFailure:    func(ip netip.Addr) { s.bans.Fail(ip) },
		MaxAttempts:  cfg.MaxAttempts,
		DigitTimeout: cfg.DigitTimeout.D(),
		Log:          s.log,
	})
	if err != nil {
		return nil, err
	}
	access := map[string]bool{}
	for _, n := range cfg.Access {
		access[n] = true
	}
	svc := cardApp{app}
	return func(dialed string) (call.App, bool) {
		if access[dialed] {
			return svc, true
		}
		return nil, false
	}, nil
}

// cardApp runs the calling-card service on an application call.
type cardApp struct{ app *callingcard.App }

func (a cardApp) Serve(ctx context.Context, c call.AppCall) {
	a.app.Serve(ctx, callingcard.Call{ID: c.ID, Source: c.Source, Media: c.Endpoint, Endpoint: c.Endpoint,
		Log: c.Log.With("app", "callingcard")})
}

// micros reads a validated decimal amount (config) into micro-units.
func micros(s string) (int64, error) {
	whole, frac, _ := strings.Cut(s, ".")
	w, err := strconv.ParseInt("0"+whole, 10, 64)
	if err != nil || len(frac) > 6 {
		return 0, fmt.Errorf("%q is not an amount", s)
	}
	f, _ := strconv.ParseInt((frac + "000000")[:6], 10, 64)
	return w*1_000_000 + f, nil
}
