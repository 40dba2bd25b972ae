package call

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Reliable provisional responses (RFC 3262, "100rel"), on both legs.
//
// Toward the callee the B2BUA offers 100rel and PRACKs every reliable
// 1xx it gets, so phones that want their early media acknowledged work.
// Toward the caller it sends 180/183 reliably only when the caller
// requires it (Require: 100rel); a caller that merely supports 100rel
// gets ordinary provisionals, which RFC 3262 allows.

// reliable is the caller leg's state when its 1xx must be reliable.
type reliable struct {
	mu      sync.Mutex
	rseq    uint32        // of the last reliable 1xx sent
	acked   chan struct{} // closed when that 1xx is PRACKed; nil before the first
	withSDP bool          // that 1xx carried SDP: no 2xx before its PRACK
}

func newReliable() *reliable {
	// RFC 3262 §3: the first RSeq is random, below 2**31.
	return &reliable{rseq: rand.Uint32N(1 << 30)}
}

// prackWait bounds the wait for a PRACK (RFC 3262 §3: 64*T1).
func prackWait() time.Duration { return 64 * sip.T1 }

// sendProvisional sends a reliable 1xx to the caller and retransmits it
// until it is PRACKed, the call moves on, or 64*T1 pass. A second one
// waits for the first to be PRACKed (RFC 3262 §3).
func (r *reliable) sendProvisional(c *Call, code int, reason string, body []byte) error {
	if err := r.waitAcked(c.ctx, false); err != nil {
		return err
	}
	r.mu.Lock()
	r.rseq++
	rseq := r.rseq
	acked := make(chan struct{})
	r.acked, r.withSDP = acked, len(body) > 0
	r.mu.Unlock()

	res := sip.NewResponseFromRequest(c.in.InviteRequest, code, reason, body)
	res.AppendHeader(sip.NewHeader("Require", "100rel"))
	res.AppendHeader(sip.NewHeader("RSeq", strconv.FormatUint(uint64(rseq), 10)))
	for _, h := range sdpType(body) {
		res.AppendHeader(h)
	}
	if err := c.in.WriteResponse(res); err != nil {
		return err
	}
	go func() {
		interval := sip.T1
		deadline := time.NewTimer(prackWait())
		defer deadline.Stop()
		for {
			t := time.NewTimer(interval)
			select {
			case <-acked:
			case <-c.ctx.Done():
			case <-c.in.Context().Done():
			case <-deadline.C:
				c.Log.Info("reliable provisional never PRACKed", "status", code, "rseq", rseq)
			case <-t.C:
				if c.in.LoadState() < sip.DialogStateEstablished {
					c.in.WriteResponse(res)
					interval *= 2
					continue
				}
			}
			t.Stop()
			return
		}
	}()
	return nil
}

// waitAcked waits until the last reliable 1xx is PRACKed; with onlySDP,
// only if it carried SDP (what a 2xx must wait for).
func (r *reliable) waitAcked(ctx context.Context, onlySDP bool) error {
	r.mu.Lock()
	acked, withSDP := r.acked, r.withSDP
	r.mu.Unlock()
	if acked == nil || (onlySDP && !withSDP) {
		return nil
	}
	t := time.NewTimer(prackWait())
	defer t.Stop()
	select {
	case <-acked:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("no PRACK for reliable provisional")
	}
}

// prack matches a PRACK's RAck with the last reliable 1xx; ack marks it
// acknowledged (called once the PRACK is answered, so that a 2xx waiting
// for it follows the PRACK's 200).
func (r *reliable) prack(rack string, inviteCSeq uint32) (ack func(), ok bool) {
	rseq, cseq, method, ok := parseRAck(rack)
	if !ok || method != sip.INVITE || cseq != inviteCSeq {
		return nil, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.acked == nil || rseq != r.rseq {
		return nil, false
	}
	acked := r.acked
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		select {
		case <-acked: // a retransmitted PRACK
		default:
			close(acked)
		}
	}, true
}

// parseRAck reads "RSeq CSeq Method" (RFC 3262 §7.2).
func parseRAck(v string) (rseq, cseq uint32, method sip.RequestMethod, ok bool) {
	f := strings.Fields(v)
	if len(f) != 3 {
		return 0, 0, "", false
	}
	a, err1 := strconv.ParseUint(f[0], 10, 32)
	b, err2 := strconv.ParseUint(f[1], 10, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, "", false
	}
	return uint32(a), uint32(b), sip.RequestMethod(strings.ToUpper(f[2])), true
}

// OnPrack answers the caller's PRACK for a reliable 1xx of ours.
func (m *Manager) OnPrack(req *sip.Request, tx sip.ServerTransaction) {
	id, err := sip.DialogIDFromRequestUAS(req)
	if err != nil {
		respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	m.mu.Lock()
	c := m.byCaller[id]
	m.mu.Unlock()
	rack := req.GetHeader("RAck")
	if c == nil || c.rel == nil || rack == nil {
		respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	ack, ok := c.rel.prack(rack.Value(), c.in.InviteRequest.CSeq().SeqNo)
	if !ok {
		respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	respond(tx, req, 200, "OK")
	ack()
}

// prackCallee acknowledges a reliable 1xx from the callee: a PRACK in
// the early dialog, with RAck naming it. last is the RSeq of the previous
// one PRACKed on this branch; false when res is a retransmission (or
// out of order) and is to be ignored.
func prackCallee(c *Call, cs *sipgo.DialogClientSession, res *sip.Response, last *uint32) bool {
	h := res.GetHeader("RSeq")
	if h == nil {
		return true
	}
	rseq, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32)
	if err != nil {
		return true // not a valid reliable 1xx: treat it as unreliable
	}
	if *last != 0 && uint32(rseq) <= *last {
		return false
	}
	*last = uint32(rseq)
	target := cs.InviteRequest.Recipient
	if ct := res.Contact(); ct != nil {
		target = ct.Address
	}
	pr := sip.NewRequest(sip.PRACK, target)
	pr.AppendHeader(sip.NewHeader("RAck", fmt.Sprintf("%d %d INVITE", rseq, cs.InviteRequest.CSeq().SeqNo)))
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	ans, err := cs.Do(ctx, pr)
	switch {
	case err != nil:
		c.Log.Info("prack to callee failed", "error", err)
	case !ans.IsSuccess():
		c.Log.Info("prack to callee refused", "status", ans.StatusCode)
	}
	return true
}

// hasOption reports whether a comma-separated option list names tag.
func hasOption(list, tag string) bool {
	for _, o := range strings.Split(list, ",") {
		if strings.EqualFold(strings.TrimSpace(o), tag) {
			return true
		}
	}
	return false
}

// headerHas reports whether any header name of msg lists option tag.
func headerHas(msg interface{ GetHeaders(string) []sip.Header }, name, tag string) bool {
	for _, h := range msg.GetHeaders(name) {
		if hasOption(h.Value(), tag) {
			return true
		}
	}
	return false
}

// ackCallee ACKs the callee's 2xx, with body when the ACK carries the
// answer to an offer in that 2xx (late offer).
//
// RFC 3261 §13.2.2.4: the ACK has the INVITE's CSeq number. sipgo numbers
// an ACK from its dialog's counter, which our PRACKs have moved past the
// INVITE's; so the counter goes back to the INVITE's number for the ACK
// and forward again after it, or the callee would ignore the ACK (and the
// BYE, were it numbered below a PRACK).
func ackCallee(cs *sipgo.DialogClientSession, body []byte) error {
	ack := sip.NewRequest(sip.ACK, cs.InviteRequest.Recipient)
	if ct := cs.InviteResponse.Contact(); ct != nil {
		ack.Recipient = ct.Address
	}
	if len(body) > 0 {
		ack.SetBody(body)
		ack.AppendHeader(sdpType(body)[0])
	}
	ack.Laddr = cs.InviteRequest.Laddr
	invite, last := cs.InviteRequest.CSeq().SeqNo, cs.CSEQ()
	if last != invite {
		setDialogCSeq(&cs.Dialog, invite)
		defer setDialogCSeq(&cs.Dialog, last)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return cs.WriteAck(ctx, ack)
}

// setDialogCSeq sets the CSeq number sipgo's dialog numbers its next
// request from. sipgo (v1.7) has no setter, so this reaches its unexported
// counter; TestSetDialogCSeq fails if sipgo changes it.
func setDialogCSeq(d *sipgo.Dialog, n uint32) {
	f := reflect.ValueOf(d).Elem().FieldByName("lastCSeqNo")
	(*atomic.Uint32)(unsafe.Pointer(f.UnsafeAddr())).Store(n)
}
