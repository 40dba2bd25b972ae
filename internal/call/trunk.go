package call

// Trunks: calls between our users and the phone network through carriers.
// A number that is none of our users goes out through the trunks of the
// first matching outbound routes, one trunk after the other until one
// answers (failover on 5xx, 408, no answer at all, a trunk down or full);
// an INVITE from a trunk's addresses to one of our numbers (DID) reaches
// the user the number is mapped to, without digest authentication.
// A call from a trunk's address to a number that is not ours is refused
// (404), unless its From is in our domain: then it is one of our phones
// behind the carrier's address, and authenticates.

import (
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/store"
)

// Gateway is the phone network as the call layer sees it
// (internal/trunk implements it).
type Gateway interface {
	// Outbound lists where a dialed number that is none of our users
	// goes, in order; empty: no route. Emergency numbers always get
	// every trunk that could carry them.
	Outbound(dialed string) []TrunkTarget
	// FromTrunk names the trunk whose addresses include src.
	FromTrunk(src netip.Addr) (trunk string, ok bool)
	// DID returns the user or extension a number that arrived through
	// trunk is for; false for a number that is not ours (or not on that
	// trunk).
	DID(trunk, number string) (target string, ok bool)
	// Acquire takes one of trunk's channels; false when the trunk is
	// down or full (an emergency call is refused neither).
	Acquire(trunk string, emergency bool) (release func(), ok bool)
	// CallerNumber is the number presented for one of our users toward
	// carriers (the first DID mapped to the user); "" when none.
	CallerNumber(user string) string
}

// TrunkTarget is one trunk a call can go out through.
type TrunkTarget struct {
	Trunk  string
	Route  string // the outbound route that chose the trunk
	Number string // the called number as this trunk wants it
	E164   string // the called number in E.164, "" when it has none (short codes)
	// Binding is where the INVITE goes: Contact is its Request-URI,
	// Source the carrier's address, Transport the trunk's. Servers, when
	// set, are all the trunk's servers in order (Binding is the first):
	// the next is tried on a transport error, a timeout or a 503
	// (RFC 3263 §4.3) before the next trunk.
	Binding store.Binding
	Servers []store.Binding
	// Username and Password answer the carrier's 401/407 challenges.
	Username, Password string
	CallerID           string // number presented when the caller has no DID
	SendPAI            bool   // RFC 3325 P-Asserted-Identity with the caller's number
	HonourPrivacy      bool   // the caller's "Privacy: id" hides its number
	Emergency          bool
	// Codecs are offered to the carrier in this order (trunkmedia.go);
	// empty: the caller's. Media is the trunk's store.Trunk.Media.
	Codecs []string
	Media  string
}

// servers are the trunk's servers in the order to try them.
func (t TrunkTarget) servers() []store.Binding {
	if len(t.Servers) == 0 {
		return []store.Binding{t.Binding}
	}
	return t.Servers
}

// ringServers sends the call to trunk t's servers one after the other
// (RFC 3263 §4.3, failover.go): the next is tried when a server cannot be
// reached, stays silent for spec.setup or answers 503; any other outcome
// is the trunk's. more, when not nil, may forbid the next server (the
// caller's media already went to this one). The result is the last
// server's.
func (m *Manager) ringServers(c *Call, t TrunkTarget, spec legSpec, build func(store.Binding) (*sip.Request, error), more func() bool) forked {
	spec.build = build
	return m.tryServers(c, t.servers(), spec, more, "trunk", t.Trunk)
}

// trunkSetupTimeout is how long a server (a trunk's, another domain's)
// may stay silent (not even 100 Trying) before the next is tried.
const trunkSetupTimeout = 4 * time.Second

// cdrNumber is the number a call record names for the outbound leg
// through t: E.164, or a short code as the trunk gets it.
func cdrNumber(t TrunkTarget) string {
	if t.E164 != "" {
		return t.E164
	}
	return t.Number
}

// failover reports whether a trunk's final answer means "try the next
// trunk": a server failure (5xx) or a timeout (408); 0 is no answer at all.
func failover(code int) bool {
	return code == 0 || code == 408 || code >= 500 && code < 600
}

// inboundTrunk says whether an INVITE is a carrier's call to one of our
// numbers: it comes from a trunk's addresses, carries no credentials
// (a phone at a trunk's address still authenticates), and names a DID in
// the Request-URI or, for carriers that send calls to our registered
// Contact, in To. did is "" for a number that is not ours.
func (m *Manager) inboundTrunk(req *sip.Request, src netip.Addr) (trunk, number, target string, ok bool) {
	g := m.cfg.Gateway
	if g == nil || req.GetHeader("Proxy-Authorization") != nil {
		return "", "", "", false
	}
	trunk, ok = g.FromTrunk(src)
	if !ok {
		return "", "", "", false
	}
	number = req.Recipient.User
	candidates := []string{req.Recipient.User}
	if to := req.To(); to != nil && to.Address.User != "" {
		candidates = append(candidates, to.Address.User)
	}
	for _, n := range candidates {
		if t, ok := g.DID(trunk, n); ok {
			return trunk, n, t, true
		}
	}
	if from := req.From(); from != nil && m.ownFrom(from.Address) {
		// Not one of our numbers, and the caller claims to be one of our
		// users: a phone that shares the carrier's address (same host,
		// same NAT). It authenticates like any other.
		return "", "", "", false
	}
	return trunk, number, "", true
}

// callerNumber is the number a trunk call presents for the caller: the
// caller's DID, else the trunk's default, else the caller's name.
func (m *Manager) callerNumber(c *Call, t TrunkTarget) string {
	if n := m.cfg.Gateway.CallerNumber(c.Caller); n != "" {
		return n
	}
	if t.CallerID != "" {
		return t.CallerID
	}
	return c.Caller
}

// privacyRequested reports whether the caller asked for its identity to
// be withheld (RFC 3323 §4.2 priv-values; we act on "id", RFC 3325 §9.3),
// and the caller's priv-values, to pass on.
func privacyRequested(req *sip.Request) (bool, string) {
	id := false
	var values []string
	for _, h := range req.GetHeaders("Privacy") {
		for _, v := range strings.Split(h.Value(), ";") {
			v = strings.TrimSpace(v)
			if v == "" {
				continue
			}
			id = id || strings.EqualFold(v, "id")
			values = append(values, v)
		}
	}
	return id, strings.Join(values, ";")
}

// newTrunkInvite builds the INVITE toward a carrier: the number in the
// Request-URI as the trunk wants it, the caller presented by its number
// (RFC 3325 P-Asserted-Identity when the trunk wants it, anonymous From
// when the caller asked for privacy and the trunk honours it).
func (m *Manager) newTrunkInvite(c *Call, req *sip.Request, t TrunkTarget, b store.Binding) (*sip.Request, error) {
	var uri sip.Uri
	if err := sip.ParseUri(b.Contact, &uri); err != nil {
		return nil, err
	}
	out := sip.NewRequest(sip.INVITE, uri)
	number := m.callerNumber(c, t)
	identity := sip.Uri{Scheme: "sip", User: number, Host: m.cfg.Domain}
	from := sip.FromHeader{Address: identity, Params: sip.HeaderParams{{K: "tag", V: sip.GenerateTagN(16)}}}
	if f := req.From(); f != nil {
		from.DisplayName = m.displayName(c, f.DisplayName)
	}
	if private, values := privacyRequested(req); private && t.HonourPrivacy {
		// RFC 3323 §4.1.1.3: an anonymous From; the carrier, a trusted
		// network (RFC 3325 §2.3), gets the identity only in
		// P-Asserted-Identity, with the caller's Privacy to keep it from
		// the called party (RFC 3325 §7).
		from.DisplayName = "Anonymous"
		from.Address = sip.Uri{Scheme: "sip", User: "anonymous", Host: "anonymous.invalid"}
		out.AppendHeader(sip.NewHeader("Privacy", values))
	}
	out.AppendHeader(&from)
	if t.SendPAI {
		out.AppendHeader(sip.NewHeader("P-Asserted-Identity", "<"+identity.String()+">"))
	}
	out.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: uri.Scheme, User: uri.User, Host: uri.Host, Port: uri.Port}})
	copyLegHeaders(m, req, out, c)
	if err := m.route(out, b); err != nil {
		return nil, err
	}
	return out, nil
}

// copyLegHeaders puts on a new leg (to a phone or a trunk) what is relayed
// end to end: Allow, Supported (with 100rel, which each leg does itself:
// it PRACKs the callee's reliable 1xx), session timers (negotiated end to
// end, see sessiontimer.go) and the anchored offer.
func copyLegHeaders(m *Manager, req, out *sip.Request, c *Call) {
	if h := req.GetHeader("Allow"); h != nil {
		out.AppendHeader(sip.NewHeader("Allow", h.Value()))
	}
	supported := "100rel"
	for _, h := range req.GetHeaders("Supported") {
		if v := withoutOption(h.Value(), "100rel"); v != "" {
			supported += ", " + v
		}
	}
	out.AppendHeader(sip.NewHeader("Supported", supported))
	if h := req.GetHeader("Session-Expires"); h != nil {
		out.AppendHeader(sip.NewHeader("Session-Expires", h.Value()))
		out.AppendHeader(minSEHeader(req, m.cfg.MinSE))
	}
	body := req.Body()
	if c.med != nil {
		body = c.med.outOffer
	}
	if len(body) > 0 {
		out.SetBody(body)
		out.AppendHeader(sdpType(body)[0])
	}
}

// trunkCaller names the caller of a carrier's call: the number the
// carrier asserts (RFC 3325 P-Asserted-Identity: a trunk is trusted, so
// its assertion is believed even behind an anonymous From), else the
// number in From, "anonymous" when it has none. Only carriers' calls get
// here: anyone else's P-Asserted-Identity is never read.
func trunkCaller(req *sip.Request) string {
	if n := assertedNumber(req); n != "" {
		return n
	}
	if f := req.From(); f != nil && f.Address.User != "" {
		return f.Address.User
	}
	return "anonymous"
}

// assertedNumber is the phone number of the first P-Asserted-Identity
// that has one, as a sip:, sips: or tel: URI (RFC 3325 §9.1); "" when
// there is none.
func assertedNumber(req *sip.Request) string {
	for _, h := range req.GetHeaders("P-Asserted-Identity") {
		for _, v := range strings.Split(h.Value(), ",") {
			v = strings.TrimSpace(v)
			if i, j := strings.IndexByte(v, '<'), strings.LastIndexByte(v, '>'); i >= 0 && j > i {
				v = v[i+1 : j]
			}
			var user string
			if tel, ok := cutPrefixFold(v, "tel:"); ok {
				user, _, _ = strings.Cut(tel, ";")
			} else {
				var u sip.Uri
				if sip.ParseUri(v, &u) != nil {
					continue
				}
				user = u.User
			}
			if phoneNumber(user) {
				return user
			}
		}
	}
	return ""
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// phoneNumber: an optional + then 1 to 32 digits.
func phoneNumber(s string) bool {
	s = strings.TrimPrefix(s, "+")
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// ringTrunks sends an outbound call through the trunks of plan, one after
// the other: the next is tried when a trunk is down or full, answers 5xx
// or 408, or sends nothing for trunkSetupTimeout. Any other answer (busy,
// 404, the caller's CANCEL, no answer) is the caller's. False when the
// call did not connect (and is finished).
func (m *Manager) ringTrunks(c *Call, req *sip.Request, plan []TrunkTarget, emergency bool) bool {
	// Billing reserves once per call, for the destination (not per trunk
	// tried); emergency calls are never charged nor refused.
	if !emergency && m.cfg.OnTrunkCall != nil {
		c.E164 = plan[0].E164
		if err := m.cfg.OnTrunkCall(c, plan[0]); err != nil {
			c.Log.Warn("trunk call refused by billing", "error", err)
			m.reject(c, 403, err.Error())
			return false
		}
	}
	var last forked
	tried, noCodec := 0, 0
	for _, t := range plan {
		// The offer as this trunk wants it; without anchoring (no relay)
		// the caller's SDP goes as it is.
		if c.med != nil {
			if err := c.med.offerToTrunk(t); errors.Is(err, errNoTrunkCodec) {
				noCodec++
				c.Log.Warn("trunk skipped: none of its codecs offered by the caller", "trunk", t.Trunk, "codecs", strings.Join(t.Codecs, ","))
				continue
			} else if err != nil {
				c.Log.Warn("trunk skipped: no offer for it", "trunk", t.Trunk, "error", err)
				continue
			}
		}
		release, ok := m.cfg.Gateway.Acquire(t.Trunk, emergency)
		if !ok {
			c.Log.Info("trunk skipped: down or all channels busy", "trunk", t.Trunk)
			continue
		}
		tried++
		c.Trunk, c.E164 = t.Trunk, t.E164
		c.cdr.Trunk(t.Trunk, cdrNumber(t))
		c.Log.Info("calling through trunk", "trunk", t.Trunk, "route", t.Route, "number", t.Number, "emergency", emergency)
		r := m.ringServers(c, t, legSpec{user: t.Username, password: t.Password, setup: trunkSetupTimeout},
			func(b store.Binding) (*sip.Request, error) { return m.newTrunkInvite(c, req, t, b) }, nil)
		if r.winner != nil {
			c.trunkRelease = release
			ok := m.connect(c, r.winner)
			r.done()
			return ok
		}
		r.done()
		release()
		last = r
		if r.callerGone || r.noAnswer || !r.silent && !failover(r.best) {
			break
		}
		c.Log.Warn("trunk failed; trying the next", "trunk", t.Trunk, "status", r.best, "reason", r.bestReason, "silent", r.silent)
	}
	if tried == 0 && noCodec == len(plan) {
		// No trunk can carry what the caller offered (RFC 3261 §21.4.26).
		m.reject(c, 488, "Not Acceptable Here")
		return false
	}
	if tried == 0 || last.unreached {
		// No trunk to try, or none of them could be reached (connection
		// refused, TLS not verified): the phone network is unavailable.
		c.Log.Warn("no trunk available for the call", "number", c.Dialed)
		m.reject(c, 503, "Service Unavailable")
		return false
	}
	m.failed(c, last)
	return false
}
