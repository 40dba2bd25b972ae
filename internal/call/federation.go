package call

// Federation: calls between SIP domains, as with e-mail. A caller of
// another domain reaches our users without an account here; our users
// reach users of other domains, whose server is found in DNS (RFC 3263).
// The server is never an open relay: a request we did not authenticate
// only ever reaches our own users.

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
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

// Resolver is the DNS that calls to other domains need; *net.Resolver is
// one.
type Resolver interface {
	LookupSRV(ctx context.Context, service, proto, name string) (cname string, addrs []*net.SRV, err error)
	LookupHost(ctx context.Context, host string) (addrs []string, err error)
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

// remote turns a Request-URI for another host into the single target of
// an (authenticated) call: a direct call to sip:user@IP:port, or a call to
// another domain, whose server is located with DNS. false, nil: the
// callee is one of our users. A refusal is the caller's answer.
func (m *Manager) remote(u sip.Uri) (store.Binding, bool, *refusal) {
	if b, ok := m.direct(u); ok {
		return b, true, nil
	}
	if m.destination(u) != destDomain {
		return store.Binding{}, false, nil
	}
	if !m.cfg.Federation.Outbound {
		return store.Binding{}, false, &refusal{403, "Calls To Other Domains Are Off"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), dnsTimeout)
	defer cancel()
	b, rf := m.locate(ctx, u)
	if rf != nil {
		m.log.Info("other domain not reachable", "uri", u.String(), "status", rf.code, "reason", rf.reason)
		return store.Binding{}, false, rf
	}
	if ap, err := netip.ParseAddrPort(b.Source); err == nil && m.cfg.IsSelf(ap.Addr().String(), int(ap.Port())) {
		// The name is one of ours (an alias of the domain): our users.
		return store.Binding{}, false, nil
	}
	return b, true, nil
}

// locate finds the server of another domain for u, RFC 3263 §4
// simplified: no NAPTR; SRV _sip._udp then _sip._tcp (only the URI's
// transport= when it has one) unless the URI has a port; else the
// domain's own addresses (A/AAAA) on port 5060. The first SRV record
// (lowest priority, by weight) and its first address win: the call has one
// target. A domain that does not exist, has no SIP server (SRV target
// "."), or no address is 404; a DNS failure is 503.
func (m *Manager) locate(ctx context.Context, u sip.Uri) (store.Binding, *refusal) {
	host := strings.TrimSuffix(u.Host, ".")
	if !strings.EqualFold(u.Scheme, "sip") {
		// sips: needs TLS toward the other domain, which we do not do yet.
		return store.Binding{}, &refusal{416, "Unsupported URI Scheme"}
	}
	transports := []string{"udp", "tcp"}
	if v, ok := u.UriParams.Get("transport"); ok && v != "" {
		v = strings.ToLower(v)
		if v != "udp" && v != "tcp" {
			return store.Binding{}, &refusal{503, "Transport Not Supported"}
		}
		transports = []string{v}
	}
	r := m.cfg.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	failed := false // a lookup failed for another reason than "no such record"
	var addr netip.AddrPort
	tp := transports[0]
	if u.Port == 0 {
	srv:
		for _, t := range transports {
			_, recs, err := r.LookupSRV(ctx, "sip", t, host)
			if err != nil {
				failed = failed || !notFound(err)
				continue
			}
			if len(recs) == 1 && recs[0].Target == "." {
				// RFC 2782: the service is decidedly not available here.
				return store.Binding{}, &refusal{404, "Not Found"}
			}
			for _, rec := range recs {
				ip, err := lookupAddr(ctx, r, rec.Target)
				if err != nil {
					failed = failed || !notFound(err)
					continue
				}
				addr, tp = netip.AddrPortFrom(ip, rec.Port), t
				break srv
			}
		}
	}
	if !addr.IsValid() {
		// RFC 3263 §4.2: no SRV (or an explicit port): the domain's own
		// addresses, at the URI's port or the default one.
		ip, err := lookupAddr(ctx, r, host)
		if err != nil {
			if failed || !notFound(err) {
				return store.Binding{}, &refusal{503, "Service Unavailable"}
			}
			return store.Binding{}, &refusal{404, "Not Found"}
		}
		port := u.Port
		if port == 0 {
			port = 5060
		}
		addr = netip.AddrPortFrom(ip, uint16(port))
	}
	// The Request-URI keeps the domain (its server checks it is its own);
	// the request goes to the address found.
	contact := sip.Uri{Scheme: "sip", User: u.User, Host: host, Port: u.Port}
	if v, ok := u.UriParams.Get("transport"); ok && v != "" {
		contact.UriParams = sip.HeaderParams{{K: "transport", V: strings.ToLower(v)}}
	}
	return store.Binding{AOR: u.User + "@" + host, Contact: contact.String(), Source: addr.String(),
		Transport: strings.ToUpper(tp), Instance: DirectMark}, nil
}

// lookupAddr is the first address of name, IPv4 first (our listeners and
// most SIP servers are IPv4).
func lookupAddr(ctx context.Context, r Resolver, name string) (netip.Addr, error) {
	addrs, err := r.LookupHost(ctx, name)
	if err != nil {
		return netip.Addr{}, err
	}
	var v6 netip.Addr
	for _, a := range addrs {
		ip, err := netip.ParseAddr(a)
		switch {
		case err != nil:
		case ip.Is4() || ip.Is4In6():
			return ip.Unmap(), nil
		case !v6.IsValid():
			v6 = ip
		}
	}
	if v6.IsValid() {
		return v6, nil
	}
	return netip.Addr{}, &net.DNSError{Err: "no usable address", Name: name, IsNotFound: true}
}

// notFound tells "no such name or record" from a failure to ask (timeout,
// server failure).
func notFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}
