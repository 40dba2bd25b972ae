package server

// Message waiting (RFC 3842): a phone subscribes to its own address of
// record with Event: message-summary (RFC 6665 SUBSCRIBE, digest
// authenticated like every request of a user) and gets a NOTIFY with its
// mailbox's counts at once and whenever they change (a message left,
// heard or deleted). Subscriptions live in memory: after a restart,
// phones get them back when they refresh (at most Expires later).

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/auth"
	"github.com/kaopu/kaopu/internal/sipx"
	"github.com/kaopu/kaopu/internal/store"
	"github.com/kaopu/kaopu/internal/voicemail"
	"github.com/kaopu/kaopu/internal/web"
)

// Subscription bounds: the interval granted (RFC 6665 §4.2.1.1: the
// notifier may shorten it), and how many subscriptions one user and the
// whole server keep, so subscribing cannot exhaust memory.
const (
	mwiMinExpires  = 60
	mwiMaxExpires  = 3600
	mwiDefExpires  = 3600
	mwiPerUser     = 20
	mwiMax         = 100_000
	mwiEvent       = "message-summary"
	mwiNotifyLimit = 5 * time.Second
)

// mwi keeps the message-summary subscriptions.
type mwi struct {
	s    *Server
	mu   sync.Mutex
	subs map[string]*mwiSub // by dialog: Call-ID, their tag, our tag
}

// mwiSub is one subscription: the dialog its NOTIFYs belong to and where
// they go.
type mwiSub struct {
	user    string
	key     string
	callID  string
	local   sip.ToHeader   // the SUBSCRIBE's To with our tag: the NOTIFYs' From
	remote  sip.FromHeader // the SUBSCRIBE's From: the NOTIFYs' To
	target  sip.Uri        // the subscriber's Contact
	via     store.Binding  // where it came from (NAT: its source)
	expires time.Time

	mu   sync.Mutex // one NOTIFY at a time, in CSeq order
	cseq uint32
}

func newMWI(s *Server) *mwi { return &mwi{s: s, subs: map[string]*mwiSub{}} }

func dialogKey(callID, remoteTag, localTag string) string {
	return callID + "\x00" + remoteTag + "\x00" + localTag
}

// eventPackage is the package of an Event header ("message-summary;id=1"
// is message-summary), lower case.
func eventPackage(v string) string {
	p, _, _ := strings.Cut(v, ";")
	return strings.ToLower(strings.TrimSpace(p))
}

// handle answers a SUBSCRIBE (outside or inside a subscription's dialog).
func (m *mwi) handle(req *sip.Request, tx sip.ServerTransaction) {
	if m.s.refused(req) {
		return
	}
	if pr := sipx.Validate(req, m.s.gate.Limits); pr != nil {
		tx.Respond(sipx.Reply(req, pr.Code, pr.Reason))
		return
	}
	res, sub, summary := m.subscribe(req)
	sipx.FixVia(res, req.Source())
	if err := tx.Respond(res); err != nil {
		m.s.log.Debug("respond failed", "error", err, "method", req.Method)
		return
	}
	if sub != nil {
		// RFC 6665 §4.2.1.2: a NOTIFY follows every accepted SUBSCRIBE,
		// refreshes and unsubscriptions (Expires: 0) included.
		go m.notify(sub, summary)
	}
}

// subscribe decides a SUBSCRIBE: the response, and the subscription to
// notify now with the mailbox's counts (nil: none).
func (m *mwi) subscribe(req *sip.Request) (*sip.Response, *mwiSub, voicemail.Summary) {
	var none voicemail.Summary
	ev := req.GetHeader("Event")
	if ev == nil || eventPackage(ev.Value()) != mwiEvent {
		res := sip.NewResponseFromRequest(req, 489, "Bad Event", nil)
		res.AppendHeader(sip.NewHeader("Allow-Events", mwiEvent))
		return res, nil, none
	}
	src, _ := netip.ParseAddrPort(req.Source())
	var authz string
	if h := req.GetHeader("Authorization"); h != nil {
		authz = h.Value()
	}
	ar := m.s.digest.Check(auth.Request{Method: string(req.Method), Authorization: authz, CSeq: req.CSeq().SeqNo, Source: src.Addr()})
	if ar.Outcome != auth.OK {
		if ar.Outcome == auth.Failed {
			m.s.log.Warn("authentication failed", "login", ar.Login, "source", req.Source(), "reason", ar.Reason, "method", "SUBSCRIBE")
		}
		res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
		for _, c := range m.s.digest.Challenges(ar.Outcome == auth.Stale) {
			res.AppendHeader(sip.NewHeader("WWW-Authenticate", c))
		}
		return res, nil, none
	}
	// The mailbox is the user's own: its address of record.
	if user, ok := (canonical{m.s.dir}).CanonicalUser(req.Recipient.User); !ok || user != ar.User {
		m.s.log.Warn("message-summary subscription for another user refused", "user", ar.User, "to", req.Recipient.User)
		return sip.NewResponseFromRequest(req, 403, "Forbidden", nil), nil, none
	}
	expires := mwiDefExpires
	if h := req.GetHeader("Expires"); h != nil {
		v, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32)
		if err != nil {
			return sip.NewResponseFromRequest(req, 400, "Invalid Expires", nil), nil, none
		}
		expires = int(min(v, mwiMaxExpires))
	}
	if expires > 0 && expires < mwiMinExpires {
		res := sip.NewResponseFromRequest(req, 423, "Interval Too Brief", nil)
		res.AppendHeader(sip.NewHeader("Min-Expires", strconv.Itoa(mwiMinExpires)))
		return res, nil, none
	}
	contact := req.Contact()
	from, to := req.From(), req.To()
	if contact == nil || from == nil || to == nil {
		return sip.NewResponseFromRequest(req, 400, "Missing Contact", nil), nil, none
	}
	fromTag, _ := from.Params.Get("tag")
	toTag, refresh := to.Params.Get("tag")
	callID := req.CallID().Value()
	now := time.Now()

	m.mu.Lock()
	var sub *mwiSub
	if refresh {
		sub = m.subs[dialogKey(callID, fromTag, toTag)]
		if sub == nil {
			m.mu.Unlock()
			return sip.NewResponseFromRequest(req, 481, "Subscription Does Not Exist", nil), nil, none
		}
	} else if expires > 0 {
		m.sweepLocked(now)
		if len(m.subs) >= mwiMax || m.countLocked(ar.User) >= mwiPerUser {
			m.mu.Unlock()
			m.s.log.Warn("message-summary subscription refused: too many", "user", ar.User)
			return sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil), nil, none
		}
	}
	if sub == nil {
		toTag = sip.GenerateTagN(16)
		local := sip.ToHeader{DisplayName: to.DisplayName, Address: to.Address, Params: sip.HeaderParams{{K: "tag", V: toTag}}}
		sub = &mwiSub{user: ar.User, key: dialogKey(callID, fromTag, toTag), callID: callID, local: local,
			remote: sip.FromHeader{DisplayName: from.DisplayName, Address: from.Address, Params: from.Params.Clone()}}
	}
	sub.target = contact.Address
	sub.via = store.Binding{AOR: ar.User, Contact: contact.Address.String(), Source: req.Source(), Transport: req.Transport()}
	sub.expires = now.Add(time.Duration(expires) * time.Second)
	if expires > 0 {
		m.subs[sub.key] = sub
	} else {
		delete(m.subs, sub.key)
	}
	m.mu.Unlock()

	summary, err := m.s.vm.Counts(context.Background(), ar.User)
	if err != nil {
		m.s.log.Warn("voicemail: counting messages", "user", ar.User, "error", err)
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	if !refresh {
		res.To().Params.Add("tag", toTag)
	}
	res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	ours := m.s.contactFor(req.Transport())
	res.AppendHeader(&ours)
	m.s.log.Info("message-summary subscription", "user", ar.User, "expires", expires, "refresh", refresh)
	return res, sub, summary
}

// sweepLocked drops expired subscriptions; m.mu is held.
func (m *mwi) sweepLocked(now time.Time) {
	for k, sub := range m.subs {
		if now.After(sub.expires) {
			delete(m.subs, k)
		}
	}
}

func (m *mwi) countLocked(user string) int {
	n := 0
	for _, sub := range m.subs {
		if sub.user == user {
			n++
		}
	}
	return n
}

// changed notifies every subscription of a mailbox of its new counts
// (voicemail.Config.OnChange).
func (m *mwi) changed(user string) {
	now := time.Now()
	m.mu.Lock()
	m.sweepLocked(now)
	var subs []*mwiSub
	for _, sub := range m.subs {
		if sub.user == user {
			subs = append(subs, sub)
		}
	}
	m.mu.Unlock()
	if len(subs) == 0 {
		return
	}
	summary, err := m.s.vm.Counts(context.Background(), user)
	if err != nil {
		m.s.log.Warn("voicemail: counting messages", "user", user, "error", err)
		return
	}
	for _, sub := range subs {
		go m.notify(sub, summary)
	}
}

// notify sends one NOTIFY in a subscription's dialog. A subscriber that
// answers 481 or not at all is forgotten (RFC 6665 §4.2.2).
func (m *mwi) notify(sub *mwiSub, summary voicemail.Summary) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	sub.cseq++
	req := sip.NewRequest(sip.NOTIFY, sub.target)
	from := sub.local
	req.AppendHeader(&sip.FromHeader{DisplayName: from.DisplayName, Address: from.Address, Params: from.Params.Clone()})
	to := sub.remote
	req.AppendHeader(&sip.ToHeader{DisplayName: to.DisplayName, Address: to.Address, Params: to.Params.Clone()})
	callID := sip.CallIDHeader(sub.callID)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: sub.cseq, MethodName: sip.NOTIFY})
	req.AppendHeader(sip.NewHeader("Event", mwiEvent))
	left := int(time.Until(sub.expires).Round(time.Second) / time.Second)
	state := "active;expires=" + strconv.Itoa(left)
	if left <= 0 {
		state = "terminated;reason=timeout"
	}
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	ours := m.s.contactFor(sub.via.Transport)
	req.AppendHeader(&ours)
	ct := sip.ContentTypeHeader(voicemail.ContentType)
	req.AppendHeader(&ct)
	account := sip.Uri{Scheme: "sip", User: sub.user, Host: m.s.realm}
	req.SetBody(summary.Body(account.String()))
	if err := m.s.route(req, sub.via); err != nil {
		m.s.log.Debug("message-summary NOTIFY: no route", "user", sub.user, "error", err)
		m.forget(sub)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), mwiNotifyLimit)
	defer cancel()
	res, err := m.s.client.Do(ctx, req)
	switch {
	case err != nil:
		m.s.log.Info("message-summary NOTIFY unanswered: subscription dropped", "user", sub.user, "error", err)
		m.forget(sub)
	case res.StatusCode >= 300 && res.StatusCode != 401 && res.StatusCode != 407:
		m.s.log.Info("message-summary NOTIFY refused: subscription dropped", "user", sub.user, "status", res.StatusCode)
		m.forget(sub)
	default:
		m.s.log.Debug("message-summary NOTIFY", "user", sub.user, "new", summary.New, "old", summary.Old, "status", res.StatusCode)
	}
}

func (m *mwi) forget(sub *mwiSub) {
	m.mu.Lock()
	if m.subs[sub.key] == sub {
		delete(m.subs, sub.key)
	}
	m.mu.Unlock()
}

// mwiMetrics are the message-waiting samples for /metrics.
func (s *Server) mwiMetrics() []web.Metric {
	n := 0
	if s.mwi != nil {
		n = s.mwi.count()
	}
	return []web.Metric{web.Gauge("kaopu_mwi_subscriptions", "Message-waiting (message-summary) subscriptions held.", float64(n))}
}

// count is how many subscriptions are kept.
func (m *mwi) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.subs)
}

// contactFor is our Contact for requests and responses over a transport.
func (s *Server) contactFor(transport string) sip.ContactHeader {
	udp := s.contact()
	if c, ok := s.contacts(udp)[strings.ToUpper(transport)]; ok {
		return c
	}
	return udp
}
