package auth

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"net/netip"
	"strings"
	"sync/atomic"
)

// Algorithm is a digest hash algorithm name as it appears on the wire.
type Algorithm string

// Supported algorithms (RFC 8760).
const (
	MD5    Algorithm = "MD5"
	SHA256 Algorithm = "SHA-256"
)

// Credentials resolves a digest username to its HA1 values. Implemented by
// account.Directory.
type Credentials interface {
	// HA1 returns the canonical user and the HA1 for alg, ok=false if unknown.
	HA1(login, alg string) (user, ha1 string, ok bool)
}

// Request is the part of a SIP request that digest authentication reads.
type Request struct {
	Method        string
	Authorization string // the Authorization (or Proxy-Authorization) value, "" if none
	CSeq          uint32
	Source        netip.Addr
}

// Outcome is the verdict on a request's credentials.
type Outcome int

// Outcomes of Check.
const (
	// Challenge: no usable credentials; answer 401/407 with a fresh challenge.
	Challenge Outcome = iota
	// Stale: right password, old nonce; challenge again with stale=true.
	Stale
	// Failed: wrong password, unknown user or replay; answer like Challenge
	// (so nobody can tell which) and count a failure toward a ban.
	Failed
	// OK: authenticated as Result.User.
	OK
)

// Result is Check's answer.
type Result struct {
	Outcome Outcome
	User    string // canonical user name when OK
	Login   string // the username the client sent (for logs), may be unknown
	Reason  string // why it failed, for logs only; never sent on the wire
}

// Stats are counters for metrics.
type Stats struct {
	Challenges, Successes, Failures, Stale atomic.Uint64
}

// Digest checks digest credentials and builds challenges for one realm.
type Digest struct {
	realm  string
	algs   []Algorithm
	nonces *Nonces
	creds  Credentials
	bans   *Bans
	Stats  Stats
}

// NewDigest makes an authenticator offering algs, most preferred first.
func NewDigest(realm string, algs []Algorithm, nonces *Nonces, creds Credentials, bans *Bans) *Digest {
	return &Digest{realm: realm, algs: algs, nonces: nonces, creds: creds, bans: bans}
}

// Realm returns the realm challenges use.
func (d *Digest) Realm() string { return d.realm }

// Bans returns the ban table failures are counted in.
func (d *Digest) Bans() *Bans { return d.bans }

// Challenges returns the WWW-Authenticate values to send, one per algorithm.
func (d *Digest) Challenges(stale bool) []string {
	nonce := d.nonces.Issue()
	out := make([]string, len(d.algs))
	for i, a := range d.algs {
		var b strings.Builder
		b.Grow(128)
		b.WriteString(`Digest realm="`)
		b.WriteString(d.realm)
		b.WriteString(`", nonce="`)
		b.WriteString(nonce)
		b.WriteString(`", algorithm=`)
		b.WriteString(string(a))
		b.WriteString(`, qop="auth"`)
		if stale {
			b.WriteString(`, stale=true`)
		}
		out[i] = b.String()
	}
	d.Stats.Challenges.Add(1)
	return out
}

// Check verifies the credentials in r. It records failures in the ban table.
func (d *Digest) Check(r Request) Result {
	if r.Authorization == "" {
		return Result{Outcome: Challenge}
	}
	c, err := parseCredentials(r.Authorization)
	if err != nil {
		return d.fail(r, "", "unparseable credentials")
	}
	res := Result{Login: c.Username}
	if c.Realm != d.realm {
		// Credentials for another realm say nothing about our passwords.
		res.Outcome, res.Reason = Challenge, "other realm"
		return res
	}
	alg := MD5
	if c.Algorithm != "" {
		alg = Algorithm(strings.ToUpper(c.Algorithm))
	}
	if !d.offers(alg) {
		res.Outcome, res.Reason = Challenge, "algorithm not offered"
		return res
	}
	seq, st := d.nonces.check(c.Nonce)
	if st == nonceInvalid {
		// Not our nonce (e.g. issued before a restart): no password was
		// tested against it, so it is not a failure.
		res.Outcome, res.Reason = Challenge, "unknown nonce"
		return res
	}
	user, ha1, known := d.creds.HA1(c.Username, string(alg))
	if !known {
		// Same work as for a known user, so timing tells nothing.
		ha1 = decoyHA1(alg, d.nonces.key[:], c.Username)
	}
	want := response(alg, ha1, &c, r.Method)
	match := hmac.Equal([]byte(want), []byte(strings.ToLower(c.Response)))
	if !known || !match {
		why := "wrong password"
		if !known {
			why = "unknown user"
		}
		return d.fail(r, c.Username, why)
	}
	if st == nonceStale {
		d.Stats.Stale.Add(1)
		res.Outcome, res.Reason = Stale, "stale nonce"
		return res
	}
	nc := uint32(1)
	if c.QOP != "" {
		if !strings.EqualFold(c.QOP, "auth") || c.Nc <= 0 || c.Cnonce == "" {
			return d.fail(r, c.Username, "bad qop/nc/cnonce")
		}
		nc = uint32(c.Nc)
	}
	if !d.nonces.use(seq, nc, r.CSeq) {
		// A replayed nonce-count: ask again with stale=true, so honest
		// clients that reused a nonce simply retry with a fresh one.
		d.Stats.Stale.Add(1)
		res.Outcome, res.Reason = Stale, "nonce count replay"
		return res
	}
	d.Stats.Successes.Add(1)
	res.Outcome, res.User = OK, user
	return res
}

func (d *Digest) fail(r Request, login, why string) Result {
	d.Stats.Failures.Add(1)
	if d.bans != nil && r.Source.IsValid() {
		d.bans.Fail(r.Source)
	}
	return Result{Outcome: Failed, Login: login, Reason: why}
}

func (d *Digest) offers(a Algorithm) bool {
	for _, x := range d.algs {
		if x == a {
			return true
		}
	}
	return false
}

func newHash(alg Algorithm) hash.Hash {
	if alg == SHA256 {
		return sha256.New()
	}
	return md5.New()
}

// H returns the hex digest of s under alg.
func H(alg Algorithm, parts ...string) string {
	h := newHash(alg)
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{':'})
		}
		h.Write([]byte(p))
	}
	var buf [32]byte
	return hex.EncodeToString(h.Sum(buf[:0]))
}

// response computes the expected digest response (RFC 7616 §3.4.1).
func response(alg Algorithm, ha1 string, c *credentials, method string) string {
	ha2 := H(alg, method, c.URI)
	if c.QOP == "" {
		return H(alg, ha1, c.Nonce, ha2)
	}
	// nc is hashed exactly as the client sent it (8 hex digits, any case).
	return H(alg, ha1, c.Nonce, c.NC, c.Cnonce, strings.ToLower(c.QOP), ha2)
}

func decoyHA1(alg Algorithm, key []byte, login string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(login))
	return H(alg, hex.EncodeToString(m.Sum(nil)))
}
