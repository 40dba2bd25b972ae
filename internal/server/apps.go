package server

import (
	"context"

	"github.com/kaopu/kaopu/internal/call"
	"github.com/kaopu/kaopu/internal/config"
)

// appResolver names the media application a dialed number of ours
// belongs to, if any.
type appResolver func(dialed string) (call.App, bool)

// applications gathers the media applications (calling cards, and the
// PBX's: conferences, voicemail, IVR menus) into the one lookup the call
// manager asks for every number that is not a user; the first that
// claims a number answers it. The rooms and IVR menus change while the
// server runs, so there is always a lookup.
func (s *Server) applications(ctx context.Context, cfg config.Config) (func(dialed string) (call.App, bool), error) {
	var all []appResolver
	cards, err := s.cardService(cfg)
	if err != nil {
		return nil, err
	}
	if cards != nil {
		all = append(all, cards)
	}
	confs, err := s.conferenceService(ctx)
	if err != nil {
		return nil, err
	}
	all = append(all, confs)
	menus, err := s.menuService()
	if err != nil {
		return nil, err
	}
	all = append(all, menus)
	vm, err := s.voicemailService(cfg)
	if err != nil {
		return nil, err
	}
	all = append(all, vm)
	lookup := func(dialed string) (call.App, bool) {
		for _, r := range all {
			if app, ok := r(dialed); ok {
				return app, true
			}
		}
		return nil, false
	}
	s.appLookup = lookup // a menu's option may name another application
	return lookup, nil
}
