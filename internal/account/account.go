package account

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kaopu/kaopu/internal/store"
)

// Errors for bad account input.
var (
	ErrBadName     = errors.New("user name must be 1-64 characters of letters, digits and . _ - +")
	ErrBadExt      = errors.New("extension must be 2-15 digits")
	ErrBadPassword = errors.New("password must be 6-128 characters")
)

var (
	nameRE = regexp.MustCompile(`^[A-Za-z0-9._+-]{1,64}$`)
	extRE  = regexp.MustCompile(`^[0-9]{2,15}$`)
)

// HA1 computes the digest HA1 = H(username:realm:password) for MD5 and SHA-256.
func HA1(user, realm, password string) (md5hex, sha256hex string) {
	in := user + ":" + realm + ":" + password
	m := md5.Sum([]byte(in))
	s := sha256.Sum256([]byte(in))
	return hex.EncodeToString(m[:]), hex.EncodeToString(s[:])
}

// NewUser validates input and builds a store.User holding only HA1 values.
func NewUser(name, ext, realm, password string, now time.Time) (store.User, error) {
	if !nameRE.MatchString(name) {
		return store.User{}, fmt.Errorf("%q: %w", name, ErrBadName)
	}
	if ext != "" && !extRE.MatchString(ext) {
		return store.User{}, fmt.Errorf("%q: %w", ext, ErrBadExt)
	}
	if len(password) < 6 || len(password) > 128 {
		return store.User{}, ErrBadPassword
	}
	u := store.User{Name: name, Ext: ext, Realm: realm, Created: now}
	u.HA1MD5, u.HA1SHA256 = HA1(name, realm, password)
	if ext != "" {
		u.ExtHA1MD5, u.ExtHA1SHA256 = HA1(ext, realm, password)
	}
	return u, nil
}

// Entry is what the directory knows of one login name (user name or extension).
// Digests are kept binary: 100,000 users cost ~10 MB, not ~25.
type Entry struct {
	User   string // canonical user name (the address of record)
	md5    [16]byte
	sha256 [32]byte
	policy *store.Policy // nil: the server's settings
}

func newEntry(user, md5hex, shahex string) Entry {
	e := Entry{User: user}
	hex.Decode(e.md5[:], []byte(md5hex))
	hex.Decode(e.sha256[:], []byte(shahex))
	return e
}

// Directory is an in-memory index of users by name and extension.
type Directory struct {
	users store.Users
	log   *slog.Logger
	realm string

	snap atomic.Pointer[map[string]Entry]
	ver  atomic.Int64

	mu        sync.Mutex // serializes reloads
	lastCheck atomic.Int64
}

// NewDirectory loads all users from st.
func NewDirectory(ctx context.Context, st store.Users, realm string, log *slog.Logger) (*Directory, error) {
	d := &Directory{users: st, log: log, realm: realm}
	empty := map[string]Entry{}
	d.snap.Store(&empty)
	if err := d.reload(ctx, true); err != nil {
		return nil, err
	}
	return d, nil
}

// Lookup finds a login name (user name or extension).
func (d *Directory) Lookup(login string) (Entry, bool) {
	e, ok := (*d.snap.Load())[login]
	return e, ok
}

// LookupOrRefresh is Lookup that, on a miss, re-checks the store at most
// every 100 ms so a user added by the CLI a moment ago is found.
func (d *Directory) LookupOrRefresh(ctx context.Context, login string) (Entry, bool) {
	if e, ok := d.Lookup(login); ok {
		return e, true
	}
	now := time.Now().UnixNano()
	last := d.lastCheck.Load()
	if now-last < int64(100*time.Millisecond) || !d.lastCheck.CompareAndSwap(last, now) {
		return Entry{}, false
	}
	if err := d.reload(ctx, false); err != nil {
		d.log.Warn("user directory refresh failed", "error", err)
	}
	return d.Lookup(login)
}

// Len returns the number of login names known.
func (d *Directory) Len() int { return len(*d.snap.Load()) }

// Run polls the store for user changes until ctx ends.
func (d *Directory) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := d.reload(ctx, false); err != nil && ctx.Err() == nil {
				d.log.Warn("user directory refresh failed", "error", err)
			}
		}
	}
}

func (d *Directory) reload(ctx context.Context, force bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.users.UsersVersion(ctx)
	if err != nil {
		return err
	}
	if !force && v == d.ver.Load() {
		return nil
	}
	m := make(map[string]Entry, d.Len())
	stale := 0
	err = d.users.EachUser(ctx, func(u store.User) error {
		if u.Realm != d.realm {
			stale++
		}
		var p *store.Policy
		if !u.Policy.IsZero() {
			p = &u.Policy
		}
		e := newEntry(u.Name, u.HA1MD5, u.HA1SHA256)
		e.policy = p
		m[u.Name] = e
		if u.Ext != "" {
			e := newEntry(u.Name, u.ExtHA1MD5, u.ExtHA1SHA256)
			e.policy = p
			m[u.Ext] = e
		}
		return nil
	})
	if err != nil {
		return err
	}
	if stale > 0 {
		d.log.Warn("users were created for another realm and cannot authenticate; set their passwords again",
			"count", stale, "realm", d.realm)
	}
	d.snap.Store(&m)
	d.ver.Store(v)
	return nil
}

// HA1 implements auth.Credentials: algorithm "MD5" or "SHA-256".
func (d *Directory) HA1(login string, alg string) (user, ha1 string, ok bool) {
	e, ok := d.LookupOrRefresh(context.Background(), login)
	if !ok {
		return "", "", false
	}
	if alg == "SHA-256" {
		return e.User, hex.EncodeToString(e.sha256[:]), true
	}
	return e.User, hex.EncodeToString(e.md5[:]), true
}

// ErrBadPolicy is a user policy value kaopu does not know.
var ErrBadPolicy = errors.New("bad user policy")

// CheckPolicy validates a user's policy.
func CheckPolicy(p store.Policy) error {
	switch p.MediaEncryption {
	case "", "optional", "required":
	default:
		return fmt.Errorf("%w: media encryption %q: want optional or required", ErrBadPolicy, p.MediaEncryption)
	}
	switch p.Signalling {
	case "", "any", "tls_required":
	default:
		return fmt.Errorf("%w: signalling %q: want any or tls_required", ErrBadPolicy, p.Signalling)
	}
	for _, c := range p.Allow {
		if c != store.ClassInternational && c != store.ClassPremium {
			return fmt.Errorf("%w: destination class %q: want %s or %s", ErrBadPolicy, c, store.ClassInternational, store.ClassPremium)
		}
	}
	if p.MaxConcurrent < -1 || p.MaxPerMinute < -1 {
		return fmt.Errorf("%w: call caps are -1 (none), 0 (the server's) or a positive number", ErrBadPolicy)
	}
	return nil
}

// Policy returns the policy of a user (by user name); zero when the user
// is unknown or follows the server's settings.
func (d *Directory) Policy(user string) store.Policy {
	if e, ok := d.Lookup(user); ok && e.policy != nil {
		return *e.policy
	}
	return store.Policy{}
}
