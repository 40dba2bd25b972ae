package store

import (
	"context"
	"errors"
	"time"
)

// Errors returned by every implementation.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
)

// User is a SIP account. Only digest HA1 values are kept, never the password.
type User struct {
	Name  string
	Ext   string // optional extension number, unique
	Realm string // realm the HA1 values were computed for
	// HA1 values for username Name: MD5 and SHA-256 (RFC 8760), hex.
	HA1MD5, HA1SHA256 string
	// HA1 values for username Ext, so phones may log in with the extension.
	ExtHA1MD5, ExtHA1SHA256 string
	Created                 time.Time
	Policy                  Policy
}

// Policy is what one user may do. Zero fields follow the server's settings.
type Policy struct {
	MediaEncryption string   // "", "optional" or "required" (SRTP)
	Signalling      string   // "", "any" or "tls_required"
	Allow           []string // destination classes permitted: "international", "premium"
	// Fraud caps: 0 follows the server's calls.max_concurrent and
	// calls.max_per_minute, -1 is no cap.
	MaxConcurrent, MaxPerMinute int
}

// Destination classes a user needs permission for.
const (
	ClassInternational = "international"
	ClassPremium       = "premium"
)

// IsZero reports whether p follows the server's settings in everything.
func (p Policy) IsZero() bool {
	return p.MediaEncryption == "" && p.Signalling == "" && len(p.Allow) == 0 &&
		p.MaxConcurrent == 0 && p.MaxPerMinute == 0
}

// Allows reports whether the user may call destinations of class.
func (p Policy) Allows(class string) bool {
	for _, c := range p.Allow {
		if c == class {
			return true
		}
	}
	return false
}

// Binding is one registered contact of an address of record (RFC 3261 §10).
type Binding struct {
	AOR       string    // user name the binding belongs to
	Contact   string    // Contact URI as the phone sent it
	Source    string    // IP:port the REGISTER really came from
	Transport string    // UDP, TCP, TLS, WS, WSS
	LocalAddr string    // our listener that received it
	CallID    string    // Call-ID of the REGISTER
	CSeq      uint32    // CSeq of the REGISTER
	Q         string    // q parameter, "" when absent
	Expires   time.Time // absolute expiry
	UserAgent string
	Instance  string // +sip.instance (RFC 5626), "" when absent
	RegID     string // reg-id (RFC 5626), "" when absent
	Updated   time.Time
	// Trunk names the carrier's trunk of a target made for one (never
	// stored): its TLS verification is the trunk's.
	Trunk string
}

// BindingOp is a change to the persisted location table.
type BindingOp struct {
	Delete  bool // delete AOR+Contact (or all of AOR when Contact is "")
	Binding Binding
}

// Users is user-account storage.
type Users interface {
	AddUser(ctx context.Context, u User) error
	// AddUsers adds many users at once, all or none.
	AddUsers(ctx context.Context, us []User) error
	UpdateUser(ctx context.Context, u User) error
	DeleteUser(ctx context.Context, name string) error
	GetUser(ctx context.Context, name string) (User, error)
	ListUsers(ctx context.Context) ([]User, error)
	// EachUser streams every user to fn without holding them all in memory.
	EachUser(ctx context.Context, fn func(User) error) error
	// UsersVersion changes whenever any user row changes, in any process.
	UsersVersion(ctx context.Context) (int64, error)
}

// Bindings is persisted registration state.
type Bindings interface {
	LoadBindings(ctx context.Context, now time.Time) ([]Binding, error)
	ApplyBindings(ctx context.Context, ops []BindingOp) error
	// DeleteExpiredBindings drops rows whose expiry has passed.
	DeleteExpiredBindings(ctx context.Context, now time.Time) (int64, error)
}

// Ban is a source address refused until a time (brute force, flood, scanner).
type Ban struct {
	Addr     string // IP address
	Until    time.Time
	Reason   string
	Offences int // bans of this source so far; each lasts longer
	Created  time.Time
}

// Bans is persisted ban state, shared by the server and `kaopu ban`.
type Bans interface {
	// PutBan inserts or replaces the ban of b.Addr.
	PutBan(ctx context.Context, b Ban) error
	// DeleteBan lifts a ban; ErrNotFound when there is none.
	DeleteBan(ctx context.Context, addr string) error
	// ListBans returns every row, expired ones too, ordered by address.
	ListBans(ctx context.Context) ([]Ban, error)
	// DeleteExpiredBans drops rows whose ban ended before.
	DeleteExpiredBans(ctx context.Context, before time.Time) (int64, error)
	// BansVersion changes whenever any ban row changes, in any process.
	BansVersion(ctx context.Context) (int64, error)
}

// Settings is a small key/value table for server-wide state.
type Settings interface {
	GetSetting(ctx context.Context, key string) (string, error)
	PutSetting(ctx context.Context, key, value string) error
}

// Store is everything kaopu persists.
type Store interface {
	Users
	Bindings
	Settings
	Bans
	CDRs
	Accounts
	Rates
	Trunks
	Cards
	Conferences
	PBX
	Voicemail
	Close() error
}
