package store

import (
	"context"
	"errors"
	"time"
)

// Trunk is a carrier: where its SIP server is, how it knows us, and how
// calls through it are presented.
type Trunk struct {
	Name string
	// Address is an IP address or host name, with or without port; a
	// name is located with DNS (RFC 3263: NAPTR when the transport is
	// "auto", SRV when there is no port, then A/AAAA).
	Address string
	// Transport is "udp", "tcp", "tls" or "auto" (DNS NAPTR/SRV chooses;
	// UDP when it says nothing).
	Transport string
	// TLSVerify checks a TLS carrier's certificate against the trunk's
	// host name (RFC 5922), with TLSCA (PEM certificates) as the roots,
	// or the system's when empty.
	TLSVerify bool
	TLSCA     string
	// Auth is how the carrier knows us: "register" (we register with
	// Username and Password) or "ip" (it knows our address; its calls
	// come from Networks).
	Auth string
	// Username and Password answer the carrier's digest challenges (to
	// REGISTER and to INVITE, in either auth mode). The password is kept
	// in clear: it must be presented, not checked. Never logged.
	Username, Password string
	// Networks (CIDR) the carrier's calls come from; empty: the addresses
	// Address resolves to.
	Networks []string
	Channels int // calls at once through the trunk, both ways; 0: no limit
	// Codecs are the codecs offered to the carrier, by SDP name, in this
	// order (those the caller offered; telephone-event kept); empty: the
	// caller's, in its order.
	Codecs []string
	// Media is the media encryption offered to the carrier: TrunkMediaRTP
	// ("" too), TrunkMediaSRTP or TrunkMediaBestEffort.
	Media string
	// CallerID is the number presented on outbound calls when the caller
	// has no DID of its own; empty: the caller's user name or extension.
	CallerID string
	SendPAI  bool // send P-Asserted-Identity (RFC 3325) with the caller's number
	// HonourPrivacy: a caller's "Privacy: id" hides its number in From
	// (anonymous) and is passed on to the carrier.
	HonourPrivacy bool
	// NumberFormat is how the called number is written in the
	// Request-URI toward the carrier: "e164" (+4420...), "digits"
	// (4420...) or "national" (020... for our country).
	NumberFormat string
	// Qualify is how often an OPTIONS checks that the carrier answers
	// (0: never; the trunk counts as up).
	Qualify time.Duration
	// Expires is the registration interval asked for (auth "register").
	Expires time.Duration
	Enabled bool
	Created time.Time
}

// Trunk auth modes.
const (
	TrunkAuthRegister = "register"
	TrunkAuthIP       = "ip"
)

// Trunk media encryption modes (Trunk.Media).
const (
	// TrunkMediaRTP offers plain RTP (RTP/AVP, no keys), whatever the
	// caller's leg is: the relay bridges an SRTP caller to it.
	TrunkMediaRTP = "rtp"
	// TrunkMediaSRTP offers RTP/SAVP with SDES keys (RFC 4568); an answer
	// without keys ends the attempt.
	TrunkMediaSRTP = "srtp"
	// TrunkMediaBestEffort offers RTP/AVP with SDES keys: SRTP when the
	// carrier answers with a key, plain RTP otherwise.
	TrunkMediaBestEffort = "best-effort"
)

// Route sends dialed numbers that match Pattern to Trunks, in order.
type Route struct {
	Name     string
	Pattern  string   // dialplan pattern (prefix, or _ pattern with X/N/Z, ranges, . and !)
	Trunks   []string // tried in order; the next on failure
	Strip    int      // digits removed from the front of the dialed number
	Prepend  string   // digits added in front after stripping
	Priority int      // lower first; equal priorities by name
	Created  time.Time
}

// DID is a number of ours on the phone network, delivered to a user.
type DID struct {
	Number  string // E.164 (+...) or the digits as the carrier sends them
	Target  string // user name or extension
	Trunk   string // only accepted from this trunk; "" from any
	Created time.Time
}

// Trunks is storage of trunks, outbound routes and DIDs.
type Trunks interface {
	AddTrunk(ctx context.Context, t Trunk) error
	UpdateTrunk(ctx context.Context, t Trunk) error
	DeleteTrunk(ctx context.Context, name string) error
	GetTrunk(ctx context.Context, name string) (Trunk, error)
	ListTrunks(ctx context.Context) ([]Trunk, error)

	AddRoute(ctx context.Context, r Route) error
	DeleteRoute(ctx context.Context, name string) error
	// ListRoutes returns routes in the order they are tried.
	ListRoutes(ctx context.Context) ([]Route, error)

	AddDID(ctx context.Context, d DID) error
	DeleteDID(ctx context.Context, number string) error
	ListDIDs(ctx context.Context) ([]DID, error)

	// TrunksVersion changes whenever a trunk, route or DID changes, in
	// any process.
	TrunksVersion(ctx context.Context) (int64, error)
}

// ErrInUse is a trunk that a route or a DID still names.
var ErrInUse = errors.New("in use")
