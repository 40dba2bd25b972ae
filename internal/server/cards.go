package server

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/kaopu/kaopu/internal/call"
	"github.com/kaopu/kaopu/internal/callingcard"
	"github.com/kaopu/kaopu/internal/config"
	"github.com/kaopu/kaopu/internal/ivr"
)

// cardService wires the calling-card service to its access numbers
// (cards.access); nil when there are none. The outbound leg goes through
// the trunk routes (cardBridge); a destination no route matches is "cannot
// be reached".
func (s *Server) cardService(all config.Config) (func(dialed string) (call.App, bool), error) {
	cfg := all.Cards
	if len(cfg.Access) == 0 {
		return nil, nil
	}
	prompts, err := ivr.Builtin()
	if err != nil {
		return nil, fmt.Errorf("calling-card prompts: %w", err)
	}
	numbering := Numbering(all) // calls.country_code and the prefixes
	app, err := callingcard.New(callingcard.Config{
		Prompts: prompts,
		Cards:   callingcard.StoreCards{Store: s.st},
		// A card is a prepaid account of its own: the server's Biller
		// holds its reservations like any account's.
		Billing:   callingcard.AccountBilling{Biller: s.biller},
		Normalize: numbering.ToE164,
		Bridge:    cardBridge{s},
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
	call := callingcard.Call{ID: c.ID, Source: c.Source, Media: c.Endpoint, Endpoint: c.Endpoint,
		Log: c.Log.With("app", "callingcard")}
	if c.Record != nil { // no typed nil in the interface
		call.Record = c.Record
	}
	a.app.Serve(ctx, call)
}

// cardBridge places a card call's outbound leg with the call layer
// (call.Manager.BridgeApp): through the trunks of the routes that match
// the destination, the caller's media relayed to the carrier's.
type cardBridge struct{ s *Server }

func (b cardBridge) Bridge(ctx context.Context, req callingcard.BridgeRequest) (callingcard.BridgeResult, error) {
	calls := b.s.calls // set after the service is made; calls arrive later
	if calls == nil {
		return callingcard.BridgeResult{Status: 503}, nil
	}
	r, err := calls.BridgeApp(ctx, call.AppBridgeRequest{Endpoint: req.Endpoint, Number: req.Destination, Max: req.MaxDuration})
	return callingcard.BridgeResult{Status: r.Status, Talk: r.Talk, Released: r.Released}, err
}
