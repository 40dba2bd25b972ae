package call

// Ring groups: a number of ours that rings several users. The strategy
// says in which order: ringall forks to every member's registered
// contacts at once (the first to answer wins, RFC 3261 §16.7 step 10
// CANCELs the others); hunt rings the members one at a time, each for the
// group's ring time. Members without a registered contact are skipped. A
// call nobody answers goes to the group's fallback number (a user,
// another group, or an application such as an IVR menu), else the caller
// gets 480.

import (
	"errors"
	"net/netip"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/ivr"
	"github.com/kaopu/kaopu/internal/media"
	"github.com/kaopu/kaopu/internal/store"
)

// maxFallbacks bounds a chain of fallbacks (groups whose fallbacks name
// each other ring a few rounds, not forever).
const maxFallbacks = 5

// group returns the ring group of a number of ours, if any.
func (m *Manager) group(number string) (store.Group, bool) {
	if m.cfg.Groups == nil || number == "" {
		return store.Group{}, false
	}
	return m.cfg.Groups(number)
}

// groupStep is one round of a group's ringing: these members at once,
// for ring.
type groupStep struct {
	members []string
	ring    time.Duration
}

// groupSteps is the order a group's members ring in: ringall one step
// with everyone, hunt one step per member in the group's order. def is
// the ring time of a group without one.
func groupSteps(g store.Group, def time.Duration) []groupStep {
	ring := g.RingTime
	if ring <= 0 {
		ring = def
	}
	if g.Strategy == store.StrategyHunt {
		steps := make([]groupStep, 0, len(g.Members))
		for _, mbr := range g.Members {
			steps = append(steps, groupStep{members: []string{mbr}, ring: ring})
		}
		return steps
	}
	return []groupStep{{members: g.Members, ring: ring}}
}

// userGroup is a single user rung like a group of one (a fallback or a
// menu option naming a user), for the no-answer timeout.
func userGroup(user string) store.Group {
	return store.Group{Number: user, Members: []string{user}, Strategy: store.StrategyRingAll}
}

// rung is how ringing a group went: the member who answered (winner
// set), or the last step's failure.
type rung struct {
	forked
	member string
	rang   bool // some member had a contact to ring
}

// ringMembers rings a group's members, step after step, with the
// branches build makes; the caller of the call (c.Caller) is never rung
// as a member, nor a user twice. A winner's done is the caller's to call
// once its dialog is set up; the failed steps' are called here.
func (m *Manager) ringMembers(c *Call, g store.Group, sips bool, build func(store.Binding) (*sip.Request, error)) rung {
	var last rung
	seen := map[string]bool{}
	for _, st := range groupSteps(g, m.cfg.NoAnswerTimeout) {
		if c.in.Context().Err() != nil || c.ctx.Err() != nil {
			last.callerGone = true
			return last
		}
		targets, names := m.stepTargets(c, g.Number, st.members, sips, seen)
		if len(targets) == 0 {
			continue
		}
		c.Log.Info("ringing group members", "group", g.Number, "strategy", g.Strategy, "members", names,
			"ring_time", st.ring.String())
		member := map[*sip.Request]string{}
		r := m.fork(c, targets, legSpec{ring: st.ring, build: func(b store.Binding) (*sip.Request, error) {
			out, err := build(b)
			if err == nil {
				member[out] = b.AOR
			}
			return out, err
		}})
		if r.winner != nil {
			return rung{forked: r, member: member[r.winner.InviteRequest], rang: true}
		}
		r.done()
		last = rung{forked: r, rang: true}
		if r.callerGone {
			return last
		}
	}
	return last
}

// stepTargets are the registered contacts of a step's members, and the
// members they belong to: a name that is no user, a user already rung
// (seen), the caller, and a member with no contact (none over TLS for a
// sips call) are skipped.
func (m *Manager) stepTargets(c *Call, group string, members []string, sips bool, seen map[string]bool) ([]store.Binding, []string) {
	var targets []store.Binding
	var names []string
	for _, name := range members {
		u, ok := m.users.CanonicalUser(name)
		if !ok {
			c.Log.Warn("group member is no user", "group", group, "member", name)
			continue
		}
		if seen[u] || u == c.Caller {
			continue
		}
		seen[u] = true
		bs := m.loc.Lookup(u)
		if sips {
			bs = secureTargets(bs)
		}
		if len(bs) == 0 {
			c.Log.Info("group member skipped: not registered", "group", group, "member", u)
			continue
		}
		targets = append(targets, bs...)
		names = append(names, u)
	}
	return targets, names
}

// groupOutcome is how a call to a group ended up.
type groupOutcome int

const (
	groupFailed    groupOutcome = iota // the call is finished
	groupConnected                     // a member answered: supervise the call
	groupApp                           // an application took the call over
)

// ringGroupCall rings a group for a caller's call (OnInvite) and answers
// the caller with the member who answers, or follows the fallbacks.
func (m *Manager) ringGroupCall(c *Call, req *sip.Request, g store.Group) groupOutcome {
	sips := isSIPS(req.Recipient)
	build := func(b store.Binding) (*sip.Request, error) { return m.newLegInvite(c, req, b) }
	var last forked
	for hops := 0; ; hops++ {
		r := m.ringMembers(c, g, sips, build)
		if r.winner != nil {
			defer r.done()
			c.Log.Info("group answered", "group", g.Number, "member", r.member)
			c.cdr.SetCallee(r.member)
			if m.connect(c, r.winner) {
				return groupConnected
			}
			return groupFailed
		}
		if r.rang {
			last = r.forked
		}
		if r.callerGone || c.in.Context().Err() != nil {
			last.callerGone = true
			break
		}
		next := g.Fallback
		if next == "" || hops >= maxFallbacks {
			break
		}
		c.Log.Info("group not answered: fallback", "group", g.Number, "fallback", next)
		if app, ok := m.app(next); ok {
			return m.takeOverApp(c, app, next)
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
	m.failed(c, last)
	return groupFailed
}

// takeOverApp answers a caller whose call is still ringing (its INVITE
// not answered) with a media application, as answerApp answers a new
// call: the relay anchor made for the members is closed, an application
// endpoint answers the caller's offer, and app runs on a goroutine that
// owns m.wg's count of the call.
func (m *Manager) takeOverApp(c *Call, app App, number string) groupOutcome {
	fail := func(code int, reason string) groupOutcome {
		c.Log.Info("application fallback refused", "number", number, "status", code, "reason", reason)
		c.in.Respond(code, reason, nil)
		m.finish(c, code, reason)
		return groupFailed
	}
	offer := c.in.InviteRequest.Body()
	if m.media.Pool == nil || len(offer) == 0 {
		return fail(480, "Temporarily Unavailable")
	}
	ep, answer, err := ivr.Answer(ivr.Config{Pool: m.media.Pool, IP: m.media.IP, Log: c.Log}, offer)
	switch {
	case errors.Is(err, media.ErrNoPorts):
		return fail(503, "Service Unavailable")
	case err != nil:
		return fail(488, "Not Acceptable Here")
	}
	callerSide, err := newAppSide(answer, nil)
	if err != nil { // our own answer: cannot happen
		ep.Close()
		return fail(500, "Server Internal Error")
	}
	m.mu.Lock()
	if c.ended.Load() {
		m.mu.Unlock()
		ep.Close()
		return groupFailed
	}
	c.med.close()
	c.med = nil
	c.app, c.appAnswer, c.appState = ep, answer, &appState{caller: callerSide}
	m.mu.Unlock()
	err = c.in.Respond(200, "OK", answer, sdpType(answer)...)
	if err == nil && c.in.LoadState() < sip.DialogStateConfirmed {
		err = errors.New("no ACK for our 2xx")
	}
	if err != nil {
		c.Log.Warn("answering caller failed", "error", err)
		status, reason := 500, "Server Internal Error"
		if c.in.LoadState() == sip.DialogStateEstablished {
			bye(c.in) // RFC 3261 §13.3.1.4
			status, reason = 408, "No ACK"
		}
		m.finish(c, status, reason)
		return groupFailed
	}
	c.Answered = time.Now()
	callee := number
	if mb, ok := app.(Mailbox); ok {
		callee = mb.MailboxUser()
		c.cdr.Flag(FlagVoicemail)
	}
	c.cdr.SetCallee(callee)
	c.cdr.Answered(ep.Codec())
	c.Log.Info("call answered by application", "number", number, "codec", ep.Codec(), "dtmf", ep.DTMF())
	if m.hooks.OnAnswer != nil {
		m.hooks.OnAnswer(c)
	}
	var src netip.Addr
	if c.Trunk == "" {
		if ap, err := netip.ParseAddrPort(c.in.InviteRequest.Source()); err == nil {
			src = ap.Addr().Unmap()
		}
	}
	m.startApp(c, app, number, src)
	return groupApp
}
