package server

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/kaopu/kaopu/internal/call"
	"github.com/kaopu/kaopu/internal/conference"
	"github.com/kaopu/kaopu/internal/ivr"
	"github.com/kaopu/kaopu/internal/web"
)

// conferenceService wires the conference bridge to the store's rooms
// (kaopu conf add): the resolver claims every room number, whether a
// user dials it or a DID points at it. The rooms are read now and again
// within a second of a change (Start runs conf.Run).
func (s *Server) conferenceService(ctx context.Context) (func(dialed string) (call.App, bool), error) {
	prompts, err := ivr.Builtin()
	if err != nil {
		return nil, fmt.Errorf("conference prompts: %w", err)
	}
	svc, err := conference.New(conference.Config{
		Rooms:   s.st,
		Prompts: prompts,
		// A wrong PIN counts like a failed digest login.
		OnFailure: func(ip netip.Addr) { s.bans.Fail(ip) },
		Log:       s.log,
	})
	if err != nil {
		return nil, err
	}
	if err := svc.Load(ctx); err != nil {
		return nil, fmt.Errorf("loading conference rooms: %w", err)
	}
	s.conf = svc
	return func(dialed string) (call.App, bool) {
		if _, ok := svc.Room(dialed); ok {
			return confApp{svc, dialed}, true
		}
		return nil, false
	}, nil
}

// confApp is one room's number on an application call.
type confApp struct {
	svc    *conference.Service
	number string
}

// Admit refuses a caller before answering when the room is full (486).
func (a confApp) Admit() (int, string) { return a.svc.Admit(a.number) }

// Wideband: the mixer runs at 16 kHz, so G.722 callers are welcome.
func (a confApp) Wideband() bool { return true }

func (a confApp) Serve(ctx context.Context, c call.AppCall) {
	a.svc.Serve(ctx, conference.Call{ID: c.ID, Caller: c.Caller, Dialed: a.number, Source: c.Source,
		Endpoint: c.Endpoint, Log: c.Log.With("app", "conference")})
}

// conferenceMetrics are the conference bridge's samples for /metrics.
func (s *Server) conferenceMetrics() []web.Metric {
	n := 0
	if s.conf != nil {
		n = s.conf.Participants()
	}
	return []web.Metric{web.Gauge("kaopu_conference_participants", "Callers in conference rooms now.", float64(n))}
}
