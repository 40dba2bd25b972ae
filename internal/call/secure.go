package call

import (
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/auth"
	"github.com/kaopu/kaopu/internal/store"
)

// Secure signalling: sips: Request-URIs and TLS-only users.
//
// kaopu is a B2BUA, so a sips: call is two TLS hops that it joins: the
// caller's (a sips: Request-URI that did not arrive over TLS is refused
// with 403) and the callee's. As RFC 5630 has it, a sips: request is only
// forwarded to contacts reached over TLS, here the bindings registered
// over TLS or WSS; a callee without any gets 480 with Warning 380 "SIPS
// Not Allowed" (the warn-code RFC 5630 defines for this), like a callee
// not registered at all but telling why. 480 rather than 403: the callee becomes reachable as soon
// as one of its phones registers over TLS.

// isSIPS reports whether u is a sips: URI.
func isSIPS(u sip.Uri) bool { return strings.EqualFold(u.Scheme, "sips") }

// secureTargets keeps the bindings reached over an encrypted transport.
func secureTargets(bs []store.Binding) []store.Binding {
	out := bs[:0:0]
	for _, b := range bs {
		if auth.SecureTransport(b.Transport) {
			out = append(out, b)
		}
	}
	return out
}

// sipsNotAllowed is the Warning of a sips: call to a callee without a
// binding over TLS (RFC 5630 warn-code 380).
func sipsNotAllowed(domain string) sip.Header {
	return sip.NewHeader("Warning", `380 `+domain+` "SIPS Not Allowed"`)
}

// signallingRefused reports whether user must not signal over transport
// (security.signalling); asked after authentication only.
func (m *Manager) signallingRefused(user, transport string) bool {
	return m.cfg.SignallingAllowed != nil && !m.cfg.SignallingAllowed(user, strings.ToUpper(transport))
}

// legSide names our dialog side for a leg: "SIPS" when its Request-URI is
// sips: over TLS (RFC 3261 §8.1.1.8: our Contact must then be a sips: URI
// too), else its transport.
func legSide(transport string, ruri sip.Uri) string {
	if isSIPS(ruri) && strings.EqualFold(transport, "TLS") {
		return "SIPS"
	}
	return strings.ToUpper(transport)
}

// dialogUA picks our dialog side for a leg (see legSide): a phone that
// talks TCP or TLS gets a Contact on that listener, so its in-dialog
// requests come back the same way.
func dialogUA(m map[string]*sipgo.DialogUA, side string) *sipgo.DialogUA {
	if ua, ok := m[side]; ok {
		return ua
	}
	if ua, ok := m["TLS"]; ok && side == "SIPS" {
		return ua
	}
	return m["UDP"]
}
