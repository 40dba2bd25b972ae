package call

// The outbound leg of a media application's call (the calling-card
// service): the application has answered the caller itself, and now
// connects it to a number of the phone network. The call goes out through
// the trunks of the routes that match the number, one after the other as
// ringTrunks does, with an offer from a new relay port pair; once a carrier
// answers, the application's endpoint hands its port pair to the relay
// (ivr.Endpoint.Release), which bridges it to the carrier's leg: the caller
// needs no re-INVITE, its media address stays the same.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/ivr"
	"github.com/kaopu/kaopu/internal/media"
	"github.com/kaopu/kaopu/internal/sdpx"
	"github.com/kaopu/kaopu/internal/store"
)

// AppBridgeRequest asks for the outbound leg of an application call.
type AppBridgeRequest struct {
	// Endpoint is the application call's media endpoint (AppCall.Endpoint):
	// it names the call.
	Endpoint *ivr.Endpoint
	// Number is the destination, in E.164 ("+" and digits).
	Number string
	// Max cuts the call that long after the answer (the money runs out);
	// the caller hears the warning tone a minute before. 0: no limit.
	Max time.Duration
}

// AppBridgeResult is how the outbound leg went.
type AppBridgeResult struct {
	// Status is the outbound leg's final status: 200 answered, the
	// carrier's failure otherwise; 503 when no route or no trunk could
	// take the call, 487 when the caller hung up while it rang.
	Status int
	// Talk is how long the answered call lasted (at most Max).
	Talk time.Duration
	// Released reports whether the endpoint handed its ports to the relay
	// (it can play no more prompts).
	Released bool
	// Trunk is the trunk that carried the call, "" when none answered.
	Trunk string
}

// appWarning is how long before the cut the warning tone plays.
const appWarning = time.Minute

// BridgeApp places the outbound leg of an application call and, once it
// is answered, relays the caller's media to it; it returns when the call
// ends: either side hangs up, Max passes (both sides get a BYE), or ctx
// ends. A caller who hangs up while it rings gets the carrier a CANCEL.
func (m *Manager) BridgeApp(ctx context.Context, req AppBridgeRequest) (AppBridgeResult, error) {
	c := m.appCall(req.Endpoint)
	if c == nil {
		return AppBridgeResult{}, errors.New("call: no application call with that endpoint")
	}
	var plan []TrunkTarget
	if m.cfg.Gateway != nil {
		plan = m.cfg.Gateway.Outbound(req.Number)
	}
	if len(plan) == 0 {
		c.Log.Info("application call: no route", "number", req.Number)
		return AppBridgeResult{Status: 503}, nil
	}
	offerPTs, err := appPTs(c.appAnswer)
	if err != nil {
		return AppBridgeResult{}, err
	}
	pairB, err := m.media.Pool.Allocate()
	if err != nil {
		return AppBridgeResult{Status: 503}, fmt.Errorf("call: relay ports: %w", err)
	}
	defer func() {
		if pairB != nil {
			pairB.Close()
		}
	}()
	offer, err := appOffer(c.appAnswer, m.media.IP, int(pairB.RTP().Port()), offerPTs)
	if err != nil {
		return AppBridgeResult{}, err
	}
	proto := appInviteProto(c.in.InviteRequest, offer)

	// The trunks one after the other, as ringTrunks (no billing hook: the
	// application charges the call itself).
	var last forked
	tried := 0
	for _, t := range plan {
		release, ok := m.cfg.Gateway.Acquire(t.Trunk, false)
		if !ok {
			c.Log.Info("trunk skipped: down or all channels busy", "trunk", t.Trunk)
			continue
		}
		tried++
		c.Log.Info("application call through trunk", "trunk", t.Trunk, "route", t.Route, "number", t.Number)
		c.cdr.Trunk(t.Trunk, cdrNumber(t))
		r := m.fork(c, []store.Binding{t.Binding}, legSpec{
			build: func(store.Binding) (*sip.Request, error) { return m.newTrunkInvite(c, proto, t) },
			user:  t.Username, password: t.Password, setup: trunkSetupTimeout,
		})
		if r.winner != nil {
			res, err := m.bridgeAnswered(ctx, c, req, r.winner, &pairB, offerPTs)
			res.Trunk = t.Trunk
			r.done()
			release()
			return res, err
		}
		r.done()
		release()
		last = r
		if r.callerGone || r.noAnswer || !r.silent && !failover(r.best) {
			break
		}
		c.Log.Warn("trunk failed; trying the next", "trunk", t.Trunk, "status", r.best, "reason", r.bestReason, "silent", r.silent)
	}
	switch {
	case tried == 0:
		c.Log.Warn("no trunk available for the application call", "number", req.Number)
		return AppBridgeResult{Status: 503}, nil
	case last.callerGone || ctx.Err() != nil:
		return AppBridgeResult{Status: 487}, nil
	case last.noAnswer || last.best == 0:
		return AppBridgeResult{Status: 480}, nil
	}
	return AppBridgeResult{Status: last.best}, nil
}

// appCall finds the live application call whose endpoint is ep.
func (m *Manager) appCall(ep *ivr.Endpoint) *Call {
	if ep == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.byCaller {
		if c.app == ep {
			return c
		}
	}
	return nil
}

// bridgeAnswered connects an answered carrier leg to the caller's media
// and waits for the call to end. *pairB becomes the relay's (nil).
func (m *Manager) bridgeAnswered(ctx context.Context, c *Call, req AppBridgeRequest, winner *sipgo.DialogClientSession,
	pairB **media.PortPair, offerPTs []sdpx.PT) (AppBridgeResult, error) {
	answered := time.Now()
	c.cdr.TrunkAnswered()
	if err := ackCallee(winner, nil); err != nil {
		c.Log.Warn("ack to carrier failed", "error", err)
	}
	hangup := func(err error) (AppBridgeResult, error) {
		bye(winner)
		return AppBridgeResult{Status: 488}, err
	}
	ans, err := sdpx.Parse(winner.InviteResponse.Body())
	if err != nil {
		return hangup(fmt.Errorf("carrier's answer: %w", err))
	}
	pts, err := sdpx.Negotiate(ans, offerPTs)
	if err != nil {
		return hangup(fmt.Errorf("carrier's answer: %w", err))
	}
	// Register the carrier's dialog on the call: its BYE then ends the
	// call (OnBye), and the caller's BYE reaches the carrier.
	m.mu.Lock()
	if c.ended.Load() {
		m.mu.Unlock()
		return hangup(nil) // the caller hung up as the carrier answered
	}
	c.out = winner
	m.byCallee[winner.ID] = c
	m.mu.Unlock()

	pairA, callerRTP := req.Endpoint.Release()
	if pairA == nil {
		m.hangUp(c, "application endpoint closed")
		return AppBridgeResult{Status: 200}, nil
	}
	res := AppBridgeResult{Status: 200, Released: true}
	legA, err := media.NewLeg(pairA, media.LegConfig{Logger: c.Log.With("leg", "caller"),
		Remote: media.Remote{RTP: callerRTP, PayloadTypes: toMedia(offerPTs)}})
	if err != nil {
		pairA.Close()
		m.hangUp(c, "relay failed")
		return res, err
	}
	defer legA.Close()
	carrierRTP, carrierRTCP, _ := ans.Remote()
	legB, err := media.NewLeg(*pairB, media.LegConfig{Logger: c.Log.With("leg", "carrier"),
		Remote: media.Remote{RTP: carrierRTP, RTCP: carrierRTCP, PayloadTypes: toMedia(pts)}})
	if err != nil {
		m.hangUp(c, "relay failed")
		return res, err
	}
	*pairB = nil
	defer legB.Close()
	br, err := media.NewBridge(legA, legB)
	if err == nil {
		err = br.Start(c.ctx)
	}
	if err != nil {
		m.hangUp(c, "relay failed")
		return res, err
	}
	defer br.Close()
	c.Log.Info("application call connected", "codec", codecName(pts), "max", req.Max.String())

	var cut <-chan time.Time
	if req.Max > 0 {
		t := time.NewTimer(req.Max - time.Since(answered))
		defer t.Stop()
		cut = t.C
		beep := time.AfterFunc(max0(req.Max-appWarning-time.Since(answered)), func() {
			c.Log.Info("credit running out: warning tone", "left", appWarning.String())
			legA.Overlay(warningTone)
		})
		defer beep.Stop()
	}
	select {
	case <-c.ctx.Done(): // either side hung up (OnBye), or a shutdown
	case <-ctx.Done():
	case <-cut:
		c.Log.Info("credit exhausted, hanging up", "after", req.Max.String())
	}
	res.Talk = time.Since(answered)
	if req.Max > 0 {
		res.Talk = min(res.Talk, req.Max)
	}
	m.hangUp(c, "application call ended") // nothing when a BYE ended it
	bye(winner)                           // nothing when the carrier's dialog has ended
	sa, sb := legA.Stats(), legB.Stats()
	c.Log.Info("application call media", "caller_packets_in", sa.PacketsIn, "caller_packets_out", sa.PacketsOut,
		"carrier_packets_in", sb.PacketsIn, "carrier_packets_out", sb.PacketsOut, "talk", res.Talk.Round(time.Millisecond).String())
	return res, nil
}

// appPTs is what the endpoint answered the caller with: the codec and
// telephone-event, which the outbound leg offers as they are (the relay
// does not transcode nor renumber).
func appPTs(answer []byte) ([]sdpx.PT, error) {
	s, err := sdpx.Parse(answer)
	if err != nil {
		return nil, fmt.Errorf("call: the endpoint's answer: %w", err)
	}
	return s.Audio.PTs, nil
}

// appOffer is the outbound leg's offer: the endpoint's codecs at the
// relay's port, sendrecv.
func appOffer(answer []byte, ip netip.Addr, port int, pts []sdpx.PT) ([]byte, error) {
	s, err := sdpx.Parse(answer)
	if err != nil {
		return nil, err
	}
	s.Audio.Direction = sdpx.SendRecv
	return sdpx.Rewrite(s, ip, port, sdpx.RewriteOptions{Origin: sdpx.NewOrigin(), Codecs: pts})
}

// appInviteProto is the request newTrunkInvite builds the outbound INVITE
// from: the caller's From (display name, privacy) and Allow, and our offer;
// none of the caller's session timer (its dialog ends here, with the
// application).
func appInviteProto(in *sip.Request, offer []byte) *sip.Request {
	p := sip.NewRequest(sip.INVITE, in.Recipient)
	if f := in.From(); f != nil {
		p.AppendHeader(&sip.FromHeader{DisplayName: f.DisplayName, Address: f.Address})
	}
	for _, name := range []string{"Allow", "Privacy"} {
		for _, h := range in.GetHeaders(name) {
			p.AppendHeader(sip.NewHeader(name, h.Value()))
		}
	}
	p.SetBody(offer)
	return p
}

func codecName(pts []sdpx.PT) string {
	for _, p := range pts {
		if p.Name != "telephone-event" {
			return p.Name
		}
	}
	return ""
}
