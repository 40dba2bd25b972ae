package auth

import "strings"

// Signalling policies (security.signalling, and later per user).
const (
	// SignallingAny lets a user send requests over any transport.
	SignallingAny = "any"
	// SignallingTLSRequired refuses an authenticated user's requests that
	// did not arrive over an encrypted transport (TLS or WSS).
	SignallingTLSRequired = "tls_required"
)

// ReasonTLSRequired is the reason phrase of the 403 a user gets who must
// signal over TLS and did not.
const ReasonTLSRequired = "TLS required"

// SignallingPolicy decides over which transports an authenticated user
// may signal. It is asked only after digest authentication has succeeded,
// so its refusal (403 "TLS required") tells nothing to a caller who does
// not know the password.
type SignallingPolicy struct {
	// Default is the policy of users without one of their own:
	// SignallingAny ("" too) or SignallingTLSRequired.
	Default string
	// PerUser returns a user's own policy; ok=false, or a nil PerUser,
	// means Default.
	PerUser func(user string) (policy string, ok bool)
}

// Allowed reports whether user may send requests over transport ("UDP",
// "TCP", "TLS", "WS", "WSS", any case).
func (p SignallingPolicy) Allowed(user, transport string) bool {
	policy := p.Default
	if p.PerUser != nil {
		if own, ok := p.PerUser(user); ok && own != "" {
			policy = own
		}
	}
	if policy != SignallingTLSRequired {
		return true
	}
	return SecureTransport(transport)
}

// SecureTransport reports whether a SIP transport is encrypted: TLS, or
// WSS (SIP over secure WebSocket, RFC 7118).
func SecureTransport(transport string) bool {
	return strings.EqualFold(transport, "TLS") || strings.EqualFold(transport, "WSS")
}
