package call

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/media"
	"github.com/kaopu/kaopu/internal/sdpx"
)

// side is one leg of an answered call, as seen from a request on it.
type side struct {
	c          *Call
	fromCaller bool
}

// match finds the answered call an in-dialog request belongs to.
func (m *Manager) match(req *sip.Request) (side, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id, err := sip.DialogIDFromRequestUAS(req); err == nil {
		if c := m.byCaller[id]; c != nil && c.out != nil {
			return side{c, true}, true
		}
	}
	if id, err := sip.DialogIDFromRequestUAC(req); err == nil {
		if c := m.byCallee[id]; c != nil {
			return side{c, false}, true
		}
	}
	return side{}, false
}

// relayHeaders are copied from a relayed in-dialog request or response.
var relayHeaders = []string{"Content-Type", "Content-Disposition", "Event", "Subscription-State",
	"Info-Package", "Allow", "Supported", "Require", "Session-Expires", "Min-SE", "RSeq", "RAck", "Accept"}

func copyHeaders(from, to sip.Message) {
	for _, name := range relayHeaders {
		for _, h := range from.GetHeaders(name) {
			to.AppendHeader(sip.NewHeader(name, h.Value()))
		}
	}
}

// legs returns the media legs facing the originator and the other party.
func (sd side) legs() (origin, other *media.Leg, originOrigin, otherOrigin *sdpx.Origin) {
	a := sd.c.med
	if sd.fromCaller {
		return a.legA, a.legB, a.originA, a.originB
	}
	return a.legB, a.legA, a.originB, a.originA
}

// secs returns the SDES state of the originator's leg and the other's,
// and the originator's policy.
func (sd side) secs() (origin, other *legSec, policy, otherPolicy string) {
	a := sd.c.med
	if sd.fromCaller {
		return &a.secA, &a.secB, a.policyA, a.policyB
	}
	return &a.secB, &a.secA, a.policyB, a.policyA
}

// pendingOffer is an in-dialog offer relayed and waiting for its answer:
// the SDES state both legs take if the answer is usable.
type pendingOffer struct {
	offer       *sdpx.Session
	pts         []sdpx.PT
	origin      legSec // from the originator's offer
	otherOffer  legSec // our offer to the other party
	otherPolicy string
}

// rewriteOffer handles an SDP offer inside the call: the originator's leg
// now sends to the new address, and the other party gets the offer with
// the relay's address and, on an SRTP leg, the keys in force there (never
// the originator's).
func (sd side) rewriteOffer(body []byte) (out []byte, po *pendingOffer, err error) {
	if sd.c.med == nil || len(body) == 0 {
		return body, nil, nil
	}
	offer, err := sdpx.Parse(body)
	if err != nil {
		return nil, nil, err
	}
	pts, err := sdpx.Negotiate(offer, nil)
	if err != nil {
		return nil, nil, err
	}
	curOrigin, curOther, policy, otherPolicy := sd.secs()
	po = &pendingOffer{offer: offer, pts: pts, otherPolicy: otherPolicy}
	if po.origin, err = secFromOffer(&offer.Audio, policy, curOrigin); err != nil {
		return nil, nil, err
	}
	po.otherOffer = reofferSec(*curOther)
	origin, other, _, otherOrigin := sd.legs()
	rtp, rtcp, _ := offer.Remote()
	origin.SetRemote(media.Remote{RTP: rtp, RTCP: rtcp, PayloadTypes: toMedia(pts)})
	local, _ := other.Local()
	out, err = sdpx.Rewrite(offer, sd.c.med.ip, int(local.Port()), sdpx.RewriteOptions{Origin: otherOrigin, Codecs: pts,
		Crypto: po.otherOffer.offered, Secure: po.otherOffer.savp})
	return out, po, err
}

// rewriteAnswer handles the other party's answer to such an offer, and
// re-keys the legs whose keys changed.
func (sd side) rewriteAnswer(body []byte, po *pendingOffer) ([]byte, error) {
	if sd.c.med == nil || po == nil || len(body) == 0 {
		return body, nil
	}
	ans, err := sdpx.Parse(body)
	if err != nil {
		return nil, err
	}
	pts, err := sdpx.Negotiate(ans, po.pts)
	if err != nil {
		return nil, err
	}
	otherSec, err := secFromAnswer(&ans.Audio, po.otherOffer, po.otherPolicy)
	if err != nil {
		return nil, err
	}
	origin, other, originOrigin, _ := sd.legs()
	curOrigin, curOther, _, _ := sd.secs()
	if err := errors.Join(origin.SetSRTP(po.origin.keys()), other.SetSRTP(otherSec.keys())); err != nil {
		return nil, err
	}
	*curOrigin, *curOther = po.origin, otherSec
	rtp, rtcp, _ := ans.Remote()
	other.SetRemote(media.Remote{RTP: rtp, RTCP: rtcp, PayloadTypes: toMedia(pts)})
	origin.SetRemote(media.Remote{RTP: mustRemote(po.offer), PayloadTypes: toMedia(pts)})
	local, _ := origin.Local()
	return sdpx.Rewrite(ans, sd.c.med.ip, int(local.Port()), sdpx.RewriteOptions{Origin: originOrigin, Codecs: pts,
		AnswerTo: po.offer, Crypto: po.origin.answer()})
}

func mustRemote(s *sdpx.Session) netip.AddrPort {
	rtp, _, _ := s.Remote()
	return rtp
}

// relay forwards an in-dialog request (re-INVITE, UPDATE, INFO, OPTIONS,
// NOTIFY, MESSAGE) to the other party and its final answer back, with SDP
// rewritten toward each side. False when the request belongs to no call.
func (m *Manager) relay(req *sip.Request, tx sip.ServerTransaction) bool {
	if m.appInDialog(req, tx) {
		return true
	}
	sd, ok := m.match(req)
	if !ok {
		return false
	}
	c := sd.c
	// One offer/answer at a time (RFC 3261 §14.1, RFC 3311 §5.2): a
	// second offer while one is pending, from either side, gets 491 and
	// its sender retries after a random wait.
	if req.IsInvite() || (req.Method == sip.UPDATE && len(req.Body()) > 0) {
		if !c.offering.CompareAndSwap(false, true) {
			respond(tx, req, 491, "Request Pending")
			return true
		}
		defer c.offering.Store(false)
	}
	body, po, err := sd.rewriteOffer(req.Body())
	if err != nil {
		c.Log.Info("in-dialog offer refused", "method", req.Method, "error", err)
		respond(tx, req, 488, "Not Acceptable Here")
		return true
	}
	out := sip.NewRequest(req.Method, sip.Uri{})
	copyHeaders(req, out)
	if len(body) > 0 {
		out.SetBody(body)
	}
	ctx, cancel := context.WithTimeout(c.ctx, 32*time.Second)
	defer cancel()
	var res *sip.Response
	if sd.fromCaller {
		out.Recipient = remoteTarget(c.out.InviteResponse.Contact(), c.out.InviteRequest.Recipient)
		res, err = c.out.Do(ctx, out)
	} else {
		out.Recipient = remoteTarget(c.in.InviteRequest.Contact(), c.in.InviteRequest.Recipient)
		res, err = c.in.Do(ctx, out)
	}
	if err != nil {
		c.Log.Info("in-dialog request not answered", "method", req.Method, "error", err)
		respond(tx, req, 408, "Request Timeout")
		return true
	}
	back := sip.NewResponseFromRequest(req, res.StatusCode, res.Reason, nil)
	copyHeaders(res, back)
	rbody := res.Body()
	// A re-INVITE without SDP (RFC 3261 §14.1): the other party's 2xx
	// holds an offer, and the originator's ACK the answer.
	lateOffer := req.IsInvite() && len(req.Body()) == 0 && res.IsSuccess() && len(rbody) > 0
	var late side
	var latePO *pendingOffer
	switch {
	case res.IsSuccess() && po != nil:
		if rbody, err = sd.rewriteAnswer(rbody, po); err != nil {
			c.Log.Warn("in-dialog answer unusable", "method", req.Method, "error", err)
			rbody = nil
		}
	case lateOffer:
		late = side{c, !sd.fromCaller} // the offer comes from the other party
		if rbody, latePO, err = late.rewriteOffer(rbody); err != nil {
			c.Log.Warn("in-dialog offer in a 2xx unusable", "error", err)
			rbody = nil
		}
	}
	if len(rbody) > 0 {
		back.SetBody(rbody)
		back.AppendHeader(sdpType(rbody)[0])
	}
	if (req.IsInvite() || req.Method == sip.UPDATE) && res.IsSuccess() {
		c.refreshSession(req, res)
	}
	var ackBody []byte
	if lateOffer {
		// Answer the originator first; its ACK brings the answer for ours.
		acks := make(chan []byte, 1)
		c.pendingAck.Store(&acks)
		defer c.pendingAck.Store(nil)
		if err := tx.Respond(back); err != nil {
			c.Log.Debug("relaying in-dialog answer", "error", err)
		}
		select {
		case b := <-acks:
			if latePO != nil {
				if ackBody, err = late.rewriteAnswer(b, latePO); err != nil {
					c.Log.Warn("in-dialog answer in an ACK unusable", "error", err)
				}
			} else {
				ackBody = b
			}
		case <-ctx.Done():
			c.Log.Info("no ACK for a re-INVITE answered with an offer")
		}
	}
	if req.IsInvite() && res.IsSuccess() {
		// ACK the other party's 2xx ourselves (RFC 3261 §13.2.2.4); the
		// originator's ACK for ours ends at this server.
		ack := sip.NewRequest(sip.ACK, out.Recipient)
		ack.AppendHeader(&sip.CSeqHeader{MethodName: sip.ACK})
		if len(ackBody) > 0 {
			ack.SetBody(ackBody)
			ack.AppendHeader(sdpType(ackBody)[0])
		}
		var werr error
		if sd.fromCaller {
			werr = c.out.WriteRequest(ack)
		} else {
			werr = c.in.WriteRequest(ack)
		}
		if werr != nil {
			c.Log.Debug("ack of re-INVITE", "error", werr)
		}
	}
	if !lateOffer {
		if err := tx.Respond(back); err != nil {
			c.Log.Debug("relaying in-dialog answer", "error", err)
		}
	}
	c.Log.Info("in-dialog request relayed", "method", req.Method, "status", res.StatusCode,
		"direction", map[bool]string{true: "caller->callee", false: "callee->caller"}[sd.fromCaller])
	return true
}

// remoteTarget is the Contact of the other party (RFC 3261 §12.2.1.1), or
// fallback when it sent none.
func remoteTarget(h *sip.ContactHeader, fallback sip.Uri) sip.Uri {
	if h != nil {
		return h.Address
	}
	return fallback
}

// Relay relays req when it belongs to a call and reports whether it did.
func (m *Manager) Relay(req *sip.Request, tx sip.ServerTransaction) bool { return m.relay(req, tx) }

// OnInDialog handles in-dialog requests other than INVITE, ACK and BYE.
func (m *Manager) OnInDialog(req *sip.Request, tx sip.ServerTransaction) {
	if !m.relay(req, tx) {
		respond(tx, req, 481, "Call/Transaction Does Not Exist")
	}
}
