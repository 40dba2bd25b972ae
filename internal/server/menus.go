package server

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/kaopu/kaopu/internal/call"
	"github.com/kaopu/kaopu/internal/ivr"
	"github.com/kaopu/kaopu/internal/pbx"
)

// maxMenuDepth bounds applications run inside one another on one call (a
// menu whose option is a menu whose option is ...).
const maxMenuDepth = 10

// menuService answers the numbers of the IVR menus (kaopu ivr add), as
// s.pbx has them now: a menu added while the server runs answers within
// a second.
func (s *Server) menuService() (appResolver, error) {
	prompts, err := ivr.Builtin()
	if err != nil {
		return nil, fmt.Errorf("IVR prompts: %w", err)
	}
	runner := &pbx.Runner{Prompts: prompts, Dialable: s.dialable}
	return func(dialed string) (call.App, bool) {
		m, ok := s.pbx.Menu(dialed)
		if !ok {
			return nil, false
		}
		return menuApp{s: s, menu: m, runner: runner}, true
	}, nil
}

// dialable reports whether a number dialed in a menu (extension dialing)
// is one of our users, extensions or ring groups.
func (s *Server) dialable(number string) bool {
	if _, ok := s.pbx.Group(number); ok {
		return true
	}
	_, ok := canonical{s.dir}.CanonicalUser(number)
	return ok
}

// menuApp runs one IVR menu on an application call.
type menuApp struct {
	s      *Server
	menu   *pbx.Menu
	runner *pbx.Runner
}

type menuDepthKey struct{}

func (a menuApp) Serve(ctx context.Context, c call.AppCall) {
	log := c.Log.With("app", "ivr", "menu", a.menu.Number)
	depth, _ := ctx.Value(menuDepthKey{}).(int)
	ctx = context.WithValue(ctx, menuDepthKey{}, depth+1)
	res := a.runner.Run(ctx, a.menu, c.Endpoint, a.s.menuConnect(c, log), log)
	log.Info("IVR menu call", "outcome", res.Outcome, "destination", res.Destination, "status", res.Status,
		"attempts", res.Attempts)
}

// menuConnect sends a menu's caller to a destination: an application
// number (a conference, another menu, the calling-card service) runs on
// the same endpoint; a user, extension or ring group is rung from the
// application call (call.Manager.BridgeLocal), and so is a group's
// fallback, unless it is an application.
func (s *Server) menuConnect(c call.AppCall, log *slog.Logger) pbx.Connect {
	return func(ctx context.Context, number string) pbx.Outcome {
		for hop := 0; hop < maxMenuDepth; hop++ {
			if app, ok := s.appLookup(number); ok {
				if depth, _ := ctx.Value(menuDepthKey{}).(int); depth >= maxMenuDepth {
					log.Warn("IVR menu: applications nested too deep", "destination", number)
					return pbx.Outcome{Status: 508}
				}
				ac := c
				ac.Dialed = number
				app.Serve(ctx, ac)
				return pbx.Outcome{Done: true, Status: 200}
			}
			r, err := s.calls.BridgeLocal(ctx, call.LocalBridgeRequest{Endpoint: c.Endpoint, Number: number})
			if err != nil {
				log.Warn("IVR menu: connecting failed", "destination", number, "error", err)
			}
			if r.Next != "" {
				number = r.Next
				continue
			}
			log.Info("IVR menu: destination", "destination", number, "status", r.Status, "member", r.Member,
				"talk", r.Talk.String())
			return pbx.Outcome{Done: r.Released || r.Status == 487 || ctx.Err() != nil, Status: r.Status}
		}
		return pbx.Outcome{Status: 508}
	}
}
