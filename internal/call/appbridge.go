package call

// The outbound leg of a media application's call (the calling-card
// service): the application has answered the caller itself, and now
// connects it to a number of the phone network. The call goes out through
// the trunks of the routes that match the number, one after the other as
// ringTrunks does, with an offer from a new relay port pair; once a carrier
// answers, the application's endpoint hands its port pair to the relay
// (ivr.Endpoint.Release), which bridges it to the carrier's leg: the caller
// needs no re-INVITE, its media address stays the same.
//
// While the carrier rings, the caller hears its early media when it sends
// some (a 183 with SDP: the ports are bridged then, before the answer),
// else a ringback tone from the endpoint once the carrier rings (a 180,
// or a 183 without SDP).

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
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

// The ringback tone an application's caller hears while the carrier
// rings without early media: ITU-T E.180 §2.2 (400-450 Hz, 0.67-1.5 s on,
// 3-5 s off), as most of Europe plays it.
const (
	ringbackHz  = 425
	ringbackOn  = time.Second
	ringbackOff = 4 * time.Second
)

// ringback is one period of the tone.
var ringback = append(ivr.Tone(ringbackHz, ringbackOn), ivr.Silence(ringbackOff)...)

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
	carrierSide, err := newAppSide(offer, offerPTs)
	if err != nil {
		return AppBridgeResult{}, err
	}
	c.appState.carrier.Store(carrierSide) // answers the carrier's re-INVITEs once it answered
	proto := appInviteProto(c.in.InviteRequest, offer)
	early := &appEarly{m: m, c: c, ep: req.Endpoint, pairB: &pairB, offerPTs: offerPTs, carrier: carrierSide}
	defer early.stop()

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
		early.listen()
		r := m.ringServers(c, t, legSpec{user: t.Username, password: t.Password, setup: trunkSetupTimeout, early: early.response},
			func(b store.Binding) (*sip.Request, error) { return m.newTrunkInvite(c, proto, t, b) },
			func() bool { return early.relay == nil })
		early.quiet()
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
		if early.relay != nil {
			// The caller's ports went to the early media: no other
			// trunk can be tried, no prompt played.
			break
		}
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
		return AppBridgeResult{Status: 487, Released: early.relay != nil}, nil
	case last.noAnswer || last.best == 0:
		return AppBridgeResult{Status: 480, Released: early.relay != nil}, nil
	}
	return AppBridgeResult{Status: last.best, Released: early.relay != nil}, nil
}

// appEarly is what the caller of an application call hears while the
// outbound leg rings: the ringback tone from its endpoint, or the
// carrier's early media through a relay started before the answer.
type appEarly struct {
	m        *Manager
	c        *Call
	ep       *ivr.Endpoint
	pairB    **media.PortPair
	offerPTs []sdpx.PT
	carrier  *appSide

	mu      sync.Mutex
	done    bool          // no responses are taken (between forks, and after)
	ringing chan struct{} // closed to stop the tone; nil: not ringing
	rung    sync.WaitGroup
	relay   *appRelay // early media; then the call's relay
}

// response handles a provisional response of the outbound leg (fork's
// legSpec.early): a 180 or a 183 without SDP starts the ringback tone, a
// 183 with SDP the relay of the carrier's early media.
func (e *appEarly) response(res *sip.Response) {
	if res.StatusCode != 180 && res.StatusCode != 183 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.done || e.relay != nil {
		return
	}
	if res.StatusCode == 183 && len(res.Body()) > 0 {
		ans, err := sdpx.Parse(res.Body())
		var pts []sdpx.PT
		if err == nil {
			pts, err = sdpx.Negotiate(ans, e.offerPTs)
		}
		if err != nil {
			e.c.Log.Info("carrier's early media unusable; ringback instead", "error", err)
		} else {
			e.stopTone()
			if e.relay, err = e.m.startAppRelay(e.c, e.ep, e.pairB, e.offerPTs, e.carrier, ans, pts); err != nil {
				e.c.Log.Warn("early media relay failed", "error", err)
			} else {
				e.c.Log.Info("carrier's early media relayed to the caller")
			}
			return
		}
	}
	if e.ringing != nil {
		return
	}
	e.ringing = make(chan struct{})
	ctx, cancel := context.WithCancel(e.c.ctx)
	stop := e.ringing
	e.rung.Add(1)
	go func() {
		defer e.rung.Done()
		defer cancel()
		go func() {
			select {
			case <-stop:
			case <-ctx.Done():
			}
			cancel()
		}()
		e.c.Log.Debug("ringback tone to the caller")
		for ctx.Err() == nil {
			if err := e.ep.Play(ctx, ringback); err != nil {
				return
			}
		}
	}()
}

// stopTone stops the ringback tone and waits until the endpoint is free;
// e.mu is held.
func (e *appEarly) stopTone() {
	if e.ringing != nil {
		close(e.ringing)
		e.ringing = nil
		e.rung.Wait()
	}
}

// listen takes the responses of the next trunk's fork.
func (e *appEarly) listen() {
	e.mu.Lock()
	e.done = false
	e.mu.Unlock()
}

// quiet ends the ringing stage of one trunk: the tone stops (a next trunk
// may ring again) and no response is taken until the next listen.
func (e *appEarly) quiet() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stopTone()
	e.done = true
}

// stop ends everything the ringing started; the relay, when it outlived
// the call's answer, is closed by bridgeAnswered, and here otherwise.
func (e *appEarly) stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stopTone()
	e.done = true
	if e.relay != nil {
		e.relay.close()
		e.c.appState.relay.Store(nil)
	}
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
		return AppBridgeResult{Status: 488, Released: c.appState.relay.Load() != nil}, err
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

	res := AppBridgeResult{Status: 200, Released: true}
	carrierRTP, carrierRTCP, _ := ans.Remote()
	r := c.appState.relay.Load()
	if r != nil { // bridged for the early media already: now to the answer
		if err := r.carrier.SetRemote(media.Remote{RTP: carrierRTP, RTCP: carrierRTCP, PayloadTypes: toMedia(pts)}); err != nil {
			m.hangUp(c, "relay failed")
			return res, err
		}
	} else {
		var err error
		r, err = m.startAppRelay(c, req.Endpoint, pairB, offerPTs, c.appState.carrier.Load(), ans, pts)
		if errors.Is(err, ivr.ErrClosed) {
			m.hangUp(c, "application endpoint closed")
			return AppBridgeResult{Status: 200}, nil
		}
		if err != nil {
			m.hangUp(c, "relay failed")
			return res, err
		}
		defer r.close()
	}
	legA, legB := r.caller, r.carrier
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

// startAppRelay hands the caller's port pair from the application's
// endpoint to a relay toward the carrier's SDP ans (its early media or its
// answer, pts negotiated): *pairB becomes the relay's (nil). The relay is
// the call's (appState.relay) until close; ivr.ErrClosed when the endpoint
// has closed (the caller hung up).
func (m *Manager) startAppRelay(c *Call, ep *ivr.Endpoint, pairB **media.PortPair, offerPTs []sdpx.PT,
	carrier *appSide, ans *sdpx.Session, pts []sdpx.PT) (*appRelay, error) {
	pairA, callerRTP := ep.Release()
	if pairA == nil {
		return nil, ivr.ErrClosed
	}
	legA, err := media.NewLeg(pairA, media.LegConfig{Logger: c.Log.With("leg", "caller"),
		Remote: media.Remote{RTP: callerRTP, PayloadTypes: toMedia(offerPTs)}})
	if err != nil {
		pairA.Close()
		return nil, err
	}
	carrierRTP, carrierRTCP, _ := ans.Remote()
	legB, err := media.NewLeg(*pairB, media.LegConfig{Logger: c.Log.With("leg", "carrier"),
		Remote: media.Remote{RTP: carrierRTP, RTCP: carrierRTCP, PayloadTypes: toMedia(pts)}})
	if err != nil {
		legA.Close()
		return nil, err
	}
	*pairB = nil
	r := &appRelay{caller: legA, carrier: legB, since: time.Now()}
	if r.br, err = media.NewBridge(legA, legB); err == nil {
		err = r.br.Start(c.ctx)
	}
	if err != nil {
		r.close()
		return nil, err
	}
	c.appState.caller.attach(legA)
	carrier.attach(legB)
	c.appState.relay.Store(r)
	return r, nil
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
