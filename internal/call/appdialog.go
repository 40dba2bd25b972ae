package call

// In-dialog offers and the RTP timeout of application calls (app.go). The
// application's media is the far end of the caller's dialog, and, once a
// calling card bridges it (appbridge.go), the relay is the far end of the
// carrier's: nothing is relayed between the two dialogs. Each side's
// re-INVITE or UPDATE (a session refresh, RFC 4028, or hold) is answered
// here with our own SDP on that side — same address, port and codecs, the
// direction RFC 3264 §6.1 derives from the offer's, the o= version bumped
// only when that changes the SDP (§8) — and the side's relay leg is
// pointed at the address the offer gives. The relay goes on untouched, so
// a refresh on one side never disturbs the other; a caller who changes
// address after the bridge keeps its audio.

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/media"
	"github.com/kaopu/kaopu/internal/sdpx"
	"github.com/kaopu/kaopu/internal/sipx"
)

// appSide is our SDP on one side of an application call, as last sent.
type appSide struct {
	mu     sync.Mutex
	sdp    *sdpx.Session // ours
	origin *sdpx.Origin  // nil until the first re-offer (primed then)
	addr   netip.Addr
	port   int
	pts    []sdpx.PT // what the side may use: the relay does not transcode
	last   []sdpx.PT // the payload types of our last answer; nil before
	leg    *media.Leg
	// leg is the relay's leg toward this side; nil while the application's
	// endpoint still serves the caller (it latches on its own).
}

// attach points the side's in-dialog offers at the relay's leg.
func (sd *appSide) attach(l *media.Leg) {
	sd.mu.Lock()
	sd.leg = l
	sd.mu.Unlock()
}

// appRelay is a bridged application call's relay.
type appRelay struct {
	caller, carrier *media.Leg
	br              *media.Bridge
	since           time.Time // when the relay started
	once            sync.Once
}

// close stops the relay and frees both legs' ports.
func (r *appRelay) close() {
	r.once.Do(func() {
		if r.br != nil {
			r.br.Close()
		}
		r.caller.Close()
		r.carrier.Close()
	})
}

// appState is what an application call keeps for in-dialog requests and
// the RTP timeout; created with the call.
type appState struct {
	caller  *appSide
	carrier atomic.Pointer[appSide] // set once a carrier answers
	relay   atomic.Pointer[appRelay]
}

func newAppSide(body []byte, pts []sdpx.PT) (*appSide, error) {
	s, err := sdpx.Parse(body)
	if err != nil {
		return nil, err
	}
	if pts == nil {
		pts = s.Audio.PTs
	}
	return &appSide{sdp: s, addr: s.Audio.Addr, port: s.Audio.Port, pts: pts}, nil
}

// reanswer answers an offer received on this side (nil: a re-INVITE
// without SDP, answered with our SDP as an offer) and points the side's
// leg at the offer's address. errAppOffer: the offer is unusable (488).
func (sd *appSide) reanswer(offerBody []byte) ([]byte, error) {
	sd.mu.Lock()
	defer sd.mu.Unlock()
	if len(offerBody) == 0 {
		ours := *sd.sdp
		ours.Audio.Direction = sdpx.SendRecv
		pts := sd.last
		if pts == nil {
			pts = sd.sdp.Audio.PTs
		}
		return sd.write(&ours, nil, pts)
	}
	offer, err := sdpx.Parse(offerBody)
	if err != nil {
		return nil, errors.Join(errAppOffer, err)
	}
	pts, err := sdpx.Negotiate(offer, sd.pts)
	if err != nil {
		return nil, errors.Join(errAppOffer, err)
	}
	if sd.origin == nil {
		// Our first SDP was written elsewhere: carry on its o= line, and
		// remember its content so an unchanged answer keeps the version.
		sd.origin = &sdpx.Origin{SessionID: sd.sdp.SessionID, Version: sd.sdp.Version}
		if _, err := sd.write(sd.sdp, offer, pts); err != nil {
			return nil, err
		}
	}
	ours := *sd.sdp
	ours.Audio.Direction = answerDirectionOf(offer.Audio.Effective())
	body, err := sd.write(&ours, offer, pts)
	if err != nil {
		return nil, err
	}
	sd.last = pts
	if sd.leg != nil {
		rtp, rtcp, _ := offer.Remote()
		if err := sd.leg.SetRemote(media.Remote{RTP: rtp, RTCP: rtcp, PayloadTypes: toMedia(pts)}); err != nil {
			return nil, errors.Join(errAppOffer, err)
		}
	}
	return body, nil
}

func (sd *appSide) write(s *sdpx.Session, answerTo *sdpx.Session, pts []sdpx.PT) ([]byte, error) {
	if sd.origin == nil {
		sd.origin = &sdpx.Origin{SessionID: sd.sdp.SessionID, Version: sd.sdp.Version}
	}
	return sdpx.Rewrite(s, sd.addr, sd.port, sdpx.RewriteOptions{Origin: sd.origin, Codecs: pts, AnswerTo: answerTo})
}

var errAppOffer = errors.New("call: in-dialog offer unusable")

// answerDirectionOf is RFC 3264 §6.1's answer to an offer's direction
// when we both send and receive.
func answerDirectionOf(offer sdpx.Direction) sdpx.Direction {
	switch offer {
	case sdpx.SendOnly:
		return sdpx.RecvOnly
	case sdpx.RecvOnly:
		return sdpx.SendOnly
	case sdpx.Inactive:
		return sdpx.Inactive
	}
	return sdpx.SendRecv
}

// appInDialog answers an in-dialog request on an application call, from
// the caller or from the carrier a calling card bridged it to: a
// re-INVITE or an UPDATE with an offer gets our SDP on that side again
// (appSide.reanswer); anything else gets 200 (a BYE never comes here).
// False when the request is not on an application call.
func (m *Manager) appInDialog(req *sip.Request, tx sip.ServerTransaction) bool {
	c, side, fromCarrier := m.appCallOf(req)
	if c == nil {
		return false
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	if req.IsInvite() || (req.Method == sip.UPDATE && len(req.Body()) > 0) {
		if !c.offering.CompareAndSwap(false, true) {
			respond(tx, req, 491, "Request Pending") // RFC 3261 §14.2
			return true
		}
		defer c.offering.Store(false)
		body, err := side.reanswer(req.Body())
		if err != nil {
			c.Log.Info("in-dialog offer refused", "method", req.Method, "carrier", fromCarrier, "error", err)
			respond(tx, req, 488, "Not Acceptable Here")
			return true
		}
		res.SetBody(body)
		for _, h := range sdpType(body) {
			res.AppendHeader(h)
		}
		ua := m.in
		if fromCarrier {
			ua = m.out
		}
		contact := dialogUA(ua, legSide(req.Transport(), req.Recipient)).ContactHDR
		res.AppendHeader(&contact)
	}
	sipx.Respond(tx, req, res)
	c.Log.Info("in-dialog request answered by the application's side", "method", req.Method, "carrier", fromCarrier)
	return true
}

// appCallOf finds the application call of an in-dialog request and the
// side it came from.
func (m *Manager) appCallOf(req *sip.Request) (*Call, *appSide, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id, err := sip.DialogIDFromRequestUAS(req); err == nil {
		if c := m.byCaller[id]; c != nil && c.appState != nil {
			return c, c.appState.caller, false
		}
	}
	if id, err := sip.DialogIDFromRequestUAC(req); err == nil {
		if c := m.byCallee[id]; c != nil && c.appState != nil {
			if side := c.appState.carrier.Load(); side != nil {
				return c, side, true
			}
		}
	}
	return nil, nil, false
}

// superviseApp hangs up an application call whose media stopped for the
// RTP timeout: while the application serves the caller, the caller's RTP
// to its endpoint; once bridged, either side's RTP to the relay. Checks
// stop with the call.
func (m *Manager) superviseApp(c *Call) {
	if m.cfg.RTPTimeout <= 0 {
		return
	}
	period := min(m.cfg.RTPTimeout/4, 5*time.Second)
	var t *time.Timer
	var mu sync.Mutex // t is set before the first check can use it
	mu.Lock()
	defer mu.Unlock()
	t = time.AfterFunc(period, func() {
		if c.ctx.Err() != nil {
			return
		}
		m.mu.Lock()
		answered := c.out != nil // the carrier's (bridgeAnswered)
		m.mu.Unlock()
		if silent, who := m.appSilent(c, answered, time.Now()); silent > m.cfg.RTPTimeout {
			c.Log.Warn("no media, hanging up", "silent", who, "silent_for", silent.Round(time.Second).String())
			c.cdr.Flag(FlagRTPTimeout)
			if answered {
				m.hangUp(c, "rtp timeout")
			} else {
				bye(c.in) // a carrier still ringing gets a CANCEL (finish)
				m.finish(c, 200, "rtp timeout")
			}
			return
		}
		mu.Lock()
		t.Reset(period)
		mu.Unlock()
	})
	context.AfterFunc(c.ctx, func() {
		mu.Lock()
		t.Stop()
		mu.Unlock()
	})
}

// appSilent is how long the silent side of an application call has sent
// nothing, and which side that is. The carrier counts once it answered
// (its early media may pause while it rings).
func (m *Manager) appSilent(c *Call, answered bool, now time.Time) (time.Duration, string) {
	if r := c.appState.relay.Load(); r != nil {
		a := now.Sub(latest(r.since, r.caller.LastActivity()))
		b := now.Sub(latest(r.since, r.carrier.LastActivity()))
		if answered && b > a {
			return b, "carrier"
		}
		return a, "caller"
	}
	return now.Sub(latest(c.Answered, c.app.LastReceived())), "caller"
}

// FlagRTPTimeout marks the record of a call hung up because its media
// stopped (calls.rtp_timeout).
const FlagRTPTimeout = "rtp-timeout"
