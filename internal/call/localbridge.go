package call

// The local leg of a media application's call (an IVR menu's option): the
// application has answered the caller itself and now connects it to one of
// our users or ring groups. The members' registered contacts are rung as
// for a call to the group (ringMembers), with an offer from a new relay
// port pair, while the caller hears ringback from the application's
// endpoint; once a member answers, the endpoint hands its port pair to the
// relay (bridgeAnswered, as BridgeApp does for a carrier), so the caller
// needs no re-INVITE.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/ivr"
	"github.com/kaopu/kaopu/internal/store"
)

// LocalBridgeRequest asks for the local leg of an application call.
type LocalBridgeRequest struct {
	// Endpoint is the application call's media endpoint (AppCall.Endpoint).
	Endpoint *ivr.Endpoint
	// Number is a user name, an extension or a ring group's number.
	Number string
}

// LocalBridgeResult is how the local leg went.
type LocalBridgeResult struct {
	// Status is 200 when a member answered (the call has ended since);
	// 404 when Number is no user or group, 480 when no one answered or
	// no one is registered, 487 when the caller hung up while it rang, or
	// the members' best failure (486 busy).
	Status int
	// Member is the user who answered.
	Member string
	// Talk is how long the answered call lasted.
	Talk time.Duration
	// Released reports whether the endpoint handed its ports to the relay
	// (it can play no more prompts).
	Released bool
	// Next is an application number a group's fallback names: the call
	// layer does not run it; the application that asked may (on the same
	// endpoint).
	Next string
}

// BridgeLocal rings one of our users or groups for an application call
// and, once a member answers, relays the caller's media to it; it returns
// when the call ends (either side hangs up, or ctx ends), or when no one
// answered. A group nobody answers goes to its fallback: a user or a
// group is rung in turn; an application number is returned in Next.
func (m *Manager) BridgeLocal(ctx context.Context, req LocalBridgeRequest) (LocalBridgeResult, error) {
	c := m.appCall(req.Endpoint)
	if c == nil {
		return LocalBridgeResult{}, errors.New("call: no application call with that endpoint")
	}
	g, ok := m.group(req.Number)
	if !ok {
		u, ok := m.users.CanonicalUser(req.Number)
		if !ok {
			return LocalBridgeResult{Status: 404}, nil
		}
		g = userGroup(u)
	}
	offerPTs, err := appPTs(c.appAnswer)
	if err != nil {
		return LocalBridgeResult{}, err
	}
	pairB, err := m.media.Pool.Allocate()
	if err != nil {
		return LocalBridgeResult{Status: 503}, fmt.Errorf("call: relay ports: %w", err)
	}
	defer func() {
		if pairB != nil {
			pairB.Close()
		}
	}()
	offer, err := appOffer(c.appAnswer, m.media.IP, int(pairB.RTP().Port()), offerPTs)
	if err != nil {
		return LocalBridgeResult{}, err
	}
	// The member's side of the call answers its re-INVITEs once bridged,
	// as a carrier's does (appdialog.go).
	side, err := newAppSide(offer, offerPTs)
	if err != nil {
		return LocalBridgeResult{}, err
	}
	c.appState.carrier.Store(side)
	proto := appInviteProto(c.in.InviteRequest, offer)
	build := func(b store.Binding) (*sip.Request, error) { return m.newLegInvite(c, proto, b) }

	// Ringback until a member answers or the ringing ends.
	rbCtx, rbCancel := context.WithCancel(ctx)
	rbDone := make(chan struct{})
	go func() {
		defer close(rbDone)
		for rbCtx.Err() == nil {
			if err := req.Endpoint.Play(rbCtx, ringback); err != nil {
				return
			}
		}
	}()
	stopRingback := sync.OnceFunc(func() { rbCancel(); <-rbDone })
	defer stopRingback()

	var last forked
	for hops := 0; ; hops++ {
		r := m.ringMembers(c, g, false, build)
		if r.winner != nil {
			stopRingback()
			c.Log.Info("application call answered by a member", "number", g.Number, "member", r.member)
			c.cdr.SetCallee(r.member)
			res, err := m.bridgeAnswered(ctx, c, AppBridgeRequest{Endpoint: req.Endpoint}, r.winner, &pairB, offerPTs)
			r.done()
			return LocalBridgeResult{Status: res.Status, Member: r.member, Talk: res.Talk, Released: res.Released}, err
		}
		if r.rang {
			last = r.forked
		}
		if r.callerGone || ctx.Err() != nil || c.ctx.Err() != nil {
			return LocalBridgeResult{Status: 487}, nil
		}
		next := g.Fallback
		if next == "" || hops >= maxFallbacks {
			break
		}
		c.Log.Info("group not answered: fallback", "group", g.Number, "fallback", next)
		if _, ok := m.app(next); ok {
			return LocalBridgeResult{Status: 480, Next: next}, nil
		}
		if g2, ok := m.group(next); ok {
			g = g2
			continue
		}
		if u, ok := m.users.CanonicalUser(next); ok {
			g = userGroup(u)
			continue
		}
		c.Log.Warn("group fallback is no user, group or application", "group", g.Number, "fallback", next)
		break
	}
	if last.noAnswer || last.best == 0 {
		return LocalBridgeResult{Status: 480}, nil
	}
	return LocalBridgeResult{Status: last.best}, nil
}
