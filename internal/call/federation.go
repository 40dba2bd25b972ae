package call

// Federation: calls between SIP domains, as with e-mail. A caller of
// another domain reaches our users without an account here; our users
// reach users of other domains, whose server is found in DNS (RFC 3263).
// The server is never an open relay: a request we did not authenticate
// only ever reaches our own users.

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/sipdns"
	"github.com/kaopu/kaopu/internal/store"
)

// Federation says which calls may cross between our domain and others.
type Federation struct {
	// Inbound accepts an INVITE from a caller of another domain to one of
	// our users without digest authentication (we cannot authenticate
	// users of other domains).
	Inbound bool
	// Outbound lets authenticated callers call sip:user@other.domain; the
	// other domain's server is located with DNS.
	Outbound bool
}

// ServerLocator finds another domain's SIP servers in DNS (RFC 3263);
// *sipdns.Resolver is one.
type ServerLocator interface {
	Resolve(ctx context.Context, q sipdns.Query) (sipdns.Result, error)
}

// dnsTimeout bounds locating another domain's server: the caller waits
// for it before it hears anything.
const dnsTimeout = 5 * time.Second

// dest is where a Request-URI points.
type dest int

const (
	destLocal  dest = iota // our domain or one of our addresses: our users
	destDirect             // sip:user@IP[:port] of another host
	destDomain             // sip:user@other.domain
)

// destination classifies a Request-URI by its host. Without IsSelf every
// Request-URI names our users (direct calls and other domains are off).
func (m *Manager) destination(u sip.Uri) dest {
	host := strings.TrimSuffix(u.Host, ".")
	if host == "" || strings.EqualFold(host, m.cfg.Domain) || m.cfg.IsSelf == nil {
		return destLocal // tel: numbers have no host
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return destDomain
	}
	port := u.Port
	if port == 0 {
		port = 5060
	}
	if m.cfg.IsSelf(ip.String(), port) {
		return destLocal
	}
	return destDirect
}

// ownFrom reports whether a From address claims our domain or one of our
// addresses (at any port): such a caller is one of our users and must
// prove it.
func (m *Manager) ownFrom(u sip.Uri) bool {
	host := strings.TrimSuffix(u.Host, ".")
	if strings.EqualFold(host, m.cfg.Domain) {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && m.cfg.IsSelf != nil && m.cfg.IsSelf(ip.String(), 0)
}

// guest reports whether an INVITE is a call from another domain to one of
// our users, which inbound federation accepts without authentication, and
// names the caller by its full address (user@domain). An INVITE whose
// From is in our domain is never a guest (a forged local From does not
// skip authentication), and neither is one for any other host than ours
// (no open relay): both must authenticate.
func (m *Manager) guest(req *sip.Request) (caller string, ok bool) {
	if !m.cfg.Federation.Inbound || m.destination(req.Recipient) != destLocal {
		return "", false
	}
	from := req.From()
	if from == nil {
		return "", false
	}
	a := from.Address
	host := strings.TrimSuffix(a.Host, ".")
	if s := strings.ToLower(a.Scheme); s != "sip" && s != "sips" || host == "" || m.ownFrom(a) {
		return "", false
	}
	if a.User == "" {
		return host, true
	}
	return a.User + "@" + host, true
}

// callerURI is the caller's address toward the callee: a user of ours in
// our domain, a guest from another domain as it came, anonymous for a
// carrier's caller who asked for privacy.
func (m *Manager) callerURI(c *Call) sip.Uri {
	if c.callerHidden {
		return sip.Uri{Scheme: "sip", User: "anonymous", Host: "anonymous.invalid"} // RFC 3323 §4.1.1.3
	}
	if user, host, ok := strings.Cut(c.Caller, "@"); ok {
		return sip.Uri{Scheme: "sip", User: user, Host: host}
	}
	return sip.Uri{Scheme: "sip", User: c.Caller, Host: m.cfg.Domain}
}

// remote turns a Request-URI for another host into the targets of an
// (authenticated) call: a direct call to sip:user@IP:port (one target), or
// a call to another domain, whose servers are located with DNS, in the
// order to try them (ringRemote). false, nil: the callee is one of our
// users. A refusal is the caller's answer.
func (m *Manager) remote(u sip.Uri) ([]store.Binding, bool, *refusal) {
	if b, ok := m.direct(u); ok {
		return []store.Binding{b}, true, nil
	}
	if m.destination(u) != destDomain {
		return nil, false, nil
	}
	if !m.cfg.Federation.Outbound {
		return nil, false, &refusal{403, "Calls To Other Domains Are Off"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), dnsTimeout)
	defer cancel()
	found, rf := m.locate(ctx, u)
	if rf != nil {
		m.log.Info("other domain not reachable", "uri", u.String(), "status", rf.code, "reason", rf.reason)
		return nil, false, rf
	}
	self := func(b store.Binding) bool {
		ap, err := netip.ParseAddrPort(b.Source)
		return err == nil && m.cfg.IsSelf(ap.Addr().String(), int(ap.Port()))
	}
	if self(found[0]) {
		// The name is one of ours (an alias of the domain): our users.
		return nil, false, nil
	}
	// A later server that is us would only bring the call back here for a
	// domain we do not serve: it is never tried.
	targets := found[:0]
	for _, b := range found {
		if !self(b) {
			targets = append(targets, b)
		}
	}
	return targets, true, nil
}

// ringRemote sends a call to another host (remote's targets) one server
// at a time (RFC 3263 §4.3, failover.go): the next is tried when one
// cannot be reached, sends nothing for trunkSetupTimeout (the rule trunk
// servers follow) or answers 503; any other final answer is the caller's.
// When none could be reached at all the caller gets 503. False when the
// call did not connect (and is finished).
func (m *Manager) ringRemote(c *Call, req *sip.Request, targets []store.Binding) bool {
	spec := legSpec{setup: trunkSetupTimeout,
		build: func(b store.Binding) (*sip.Request, error) { return m.newLegInvite(c, req, b) }}
	r := m.tryServers(c, targets, spec, nil, "domain", strings.TrimSuffix(req.Recipient.Host, "."))
	defer r.done()
	if r.winner != nil {
		return m.connect(c, r.winner)
	}
	if r.unreached && !r.callerGone {
		c.Log.Warn("no server of the other side could be reached", "to", c.Callee)
		m.reject(c, 503, "Service Unavailable")
		return false
	}
	m.failed(c, r)
	return false
}

// locate finds the servers of another domain for u with RFC 3263 §4
// (sipdns), in the order to try them: NAPTR, then SRV (_sip._tcp,
// _sip._udp), then the domain's A/AAAA on 5060; only the URI's
// transport= when it has one, only A/AAAA when it has a port. UDP and TCP
// only: TLS toward other domains is not done yet. A domain that does not
// exist, has no SIP server (SRV target "."), or no address is 404; a DNS
// failure is 503.
func (m *Manager) locate(ctx context.Context, u sip.Uri) ([]store.Binding, *refusal) {
	host := strings.TrimSuffix(u.Host, ".")
	if !strings.EqualFold(u.Scheme, "sip") {
		// sips: needs TLS toward the other domain, which we do not do yet.
		return nil, &refusal{416, "Unsupported URI Scheme"}
	}
	q := sipdns.Query{Host: host, Port: uint16(u.Port)}
	if v, ok := u.UriParams.Get("transport"); ok && v != "" {
		v = strings.ToLower(v)
		if v != "udp" && v != "tcp" {
			return nil, &refusal{503, "Transport Not Supported"}
		}
		q.Transport = strings.ToUpper(v)
	}
	r := m.cfg.Resolver
	if r == nil {
		r = sipdns.New(sipdns.Config{Transports: []string{"UDP", "TCP"}})
	}
	res, err := r.Resolve(ctx, q)
	switch {
	case errors.Is(err, sipdns.ErrNotFound) || errors.Is(err, sipdns.ErrNoService):
		return nil, &refusal{404, "Not Found"}
	case err != nil:
		m.log.Warn("locating another domain failed", "domain", host, "error", err)
		return nil, &refusal{503, "Service Unavailable"}
	}
	// The Request-URI keeps the domain (its server checks it is its own);
	// the request goes to the addresses found.
	contact := sip.Uri{Scheme: "sip", User: u.User, Host: host, Port: u.Port}
	if v, ok := u.UriParams.Get("transport"); ok && v != "" {
		contact.UriParams = sip.HeaderParams{{K: "transport", V: strings.ToLower(v)}}
	}
	targets := make([]store.Binding, 0, len(res.Targets))
	for _, t := range res.Targets {
		targets = append(targets, store.Binding{AOR: u.User + "@" + host, Contact: contact.String(), Source: t.Addr.String(),
			Transport: t.Transport, Instance: DirectMark})
	}
	if len(targets) == 0 {
		return nil, &refusal{404, "Not Found"}
	}
	return targets, nil
}
