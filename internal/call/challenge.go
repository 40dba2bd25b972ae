package call

import (
	"net/netip"

	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/auth"
)

// Challenge answers, without a transaction, an INVITE outside a dialog
// that carries no credentials and needs them: the 407 OnInvite would
// send, built the same way. It returns nil for every other INVITE, which
// then goes through the transaction layer to OnInvite.
//
// The UDP edge calls it so that unauthenticated INVITEs (the bulk of a
// toll-fraud scan or flood) cost neither a server transaction nor its
// 407 retransmissions (Timer G) and the wait for an ACK that never comes
// (Timer H, 32 s), as a stateless proxy would challenge (RFC 3261
// §16.11). A retransmitted INVITE is challenged again; the ACK of the 407
// finds no transaction and is dropped by OnAck.
func (m *Manager) Challenge(req *sip.Request) *sip.Response {
	if req.To() == nil || req.Contact() == nil ||
		req.GetHeader("Proxy-Authorization") != nil || req.CSeq() == nil {
		return nil
	}
	for _, h := range req.GetHeaders("Require") {
		if withoutOption(withoutOption(h.Value(), "100rel"), "timer") != "" {
			return nil // 420 from OnInvite
		}
	}
	if _, isGuest := m.guest(req); isGuest {
		return nil
	}
	src, _ := netip.ParseAddrPort(req.Source())
	if _, _, _, fromTrunk := m.inboundTrunk(req, src.Addr()); fromTrunk {
		return nil // a carrier's call: OnInvite answers it (trunk.go)
	}
	ar := m.digest.Check(auth.Request{Method: "INVITE", CSeq: req.CSeq().SeqNo, Source: src.Addr()})
	if ar.Outcome != auth.Challenge {
		return nil
	}
	res := sip.NewResponseFromRequest(req, 407, "Proxy Authentication Required", nil)
	for _, c := range m.digest.Challenges(false) {
		res.AppendHeader(sip.NewHeader("Proxy-Authenticate", c))
	}
	return res
}
