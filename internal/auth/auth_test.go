package auth

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"
)

type creds map[string][2]string // login -> md5, sha256 HA1

func (c creds) HA1(login, alg string) (string, string, bool) {
	v, ok := c[login]
	if !ok {
		return "", "", false
	}
	if alg == "SHA-256" {
		return login, v[1], true
	}
	return login, v[0], true
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

const realm = "kaopu.test"

func newTestDigest(t *testing.T, bans *Bans, ck *clock) *Digest {
	t.Helper()
	c := creds{"alice": {H(MD5, "alice", realm, "secret1"), H(SHA256, "alice", realm, "secret1")}}
	return NewDigest(realm, []Algorithm{SHA256, MD5}, NewNonces(5*time.Minute, ck.now), c, bans)
}

var nonceRE = regexp.MustCompile(`nonce="([^"]+)"`)

func nonceOf(t *testing.T, challenge string) string {
	m := nonceRE.FindStringSubmatch(challenge)
	if m == nil {
		t.Fatalf("no nonce in %q", challenge)
	}
	return m[1]
}

// authorization computes what a client would send (RFC 7616 §3.4).
func authorization(alg Algorithm, user, pw, nonce string, nc int, method, uri string) string {
	ha1 := H(alg, user, realm, pw)
	ha2 := H(alg, method, uri)
	ncs := fmt.Sprintf("%08x", nc)
	resp := H(alg, ha1, nonce, ncs, "c0ffee", "auth", ha2)
	return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s, qop=auth, nc=%s, cnonce="c0ffee"`,
		user, realm, nonce, uri, resp, alg, ncs)
}

var src = netip.MustParseAddr("192.0.2.7")

func TestDigestAlgorithms(t *testing.T) {
	for _, alg := range []Algorithm{MD5, SHA256} {
		t.Run(string(alg), func(t *testing.T) {
			ck := &clock{time.Unix(1_700_000_000, 0)}
			d := newTestDigest(t, nil, ck)
			ch := d.Challenges(false)
			if len(ch) != 2 || !strings.Contains(ch[0], "algorithm=SHA-256") || !strings.Contains(ch[1], "algorithm=MD5") {
				t.Fatalf("challenges = %q, want SHA-256 then MD5", ch)
			}
			n := nonceOf(t, ch[0])
			r := d.Check(Request{Method: "REGISTER", CSeq: 2, Source: src,
				Authorization: authorization(alg, "alice", "secret1", n, 1, "REGISTER", "sip:kaopu.test")})
			if r.Outcome != OK || r.User != "alice" {
				t.Fatalf("Check = %+v, want OK alice", r)
			}
		})
	}
}

func TestNoEnumeration(t *testing.T) {
	ck := &clock{time.Unix(1_700_000_000, 0)}
	d := newTestDigest(t, nil, ck)
	n := nonceOf(t, d.Challenges(false)[0])
	wrong := d.Check(Request{Method: "REGISTER", CSeq: 2, Source: src,
		Authorization: authorization(MD5, "alice", "nope", n, 1, "REGISTER", "sip:kaopu.test")})
	unknown := d.Check(Request{Method: "REGISTER", CSeq: 2, Source: src,
		Authorization: authorization(MD5, "mallory", "nope", n, 2, "REGISTER", "sip:kaopu.test")})
	if wrong.Outcome != Failed || unknown.Outcome != Failed {
		t.Fatalf("wrong=%v unknown=%v, want both Failed", wrong.Outcome, unknown.Outcome)
	}
	if d.Stats.Failures.Load() != 2 {
		t.Fatalf("failures = %d, want 2", d.Stats.Failures.Load())
	}
}

func TestNonceCountReplay(t *testing.T) {
	ck := &clock{time.Unix(1_700_000_000, 0)}
	d := newTestDigest(t, nil, ck)
	n := nonceOf(t, d.Challenges(false)[0])
	check := func(nc int, cseq uint32) Outcome {
		return d.Check(Request{Method: "REGISTER", CSeq: cseq, Source: src,
			Authorization: authorization(MD5, "alice", "secret1", n, nc, "REGISTER", "sip:kaopu.test")}).Outcome
	}
	steps := []struct {
		name string
		nc   int
		cseq uint32
		want Outcome
	}{
		{"first use", 1, 2, OK},
		{"retransmission", 1, 2, OK},
		{"replay with another request", 1, 3, Stale},
		{"next count", 2, 3, OK},
		{"older count", 1, 4, Stale},
	}
	for _, s := range steps {
		if got := check(s.nc, s.cseq); got != s.want {
			t.Fatalf("%s: outcome %v, want %v", s.name, got, s.want)
		}
	}
}

func TestStaleAndForeignNonces(t *testing.T) {
	ck := &clock{time.Unix(1_700_000_000, 0)}
	bans := NewBans(BanConfig{Failures: 1, Window: time.Minute, BanTime: time.Minute}, BanEvents{}, ck.now)
	d := newTestDigest(t, bans, ck)
	n := nonceOf(t, d.Challenges(false)[0])
	ck.t = ck.t.Add(6 * time.Minute)
	r := d.Check(Request{Method: "REGISTER", CSeq: 2, Source: src,
		Authorization: authorization(MD5, "alice", "secret1", n, 1, "REGISTER", "sip:kaopu.test")})
	if r.Outcome != Stale {
		t.Fatalf("expired nonce, right password: %v, want Stale", r.Outcome)
	}
	other := NewNonces(5*time.Minute, ck.now).Issue()
	r = d.Check(Request{Method: "REGISTER", CSeq: 2, Source: src,
		Authorization: authorization(MD5, "alice", "whatever", other, 1, "REGISTER", "sip:kaopu.test")})
	if r.Outcome != Challenge {
		t.Fatalf("foreign nonce: %v, want Challenge", r.Outcome)
	}
	if bans.Banned(src) {
		t.Fatal("a foreign or stale nonce must not count toward a ban")
	}
	if !strings.Contains(d.Challenges(true)[0], "stale=true") {
		t.Fatal("stale challenge lacks stale=true")
	}
}

func TestBans(t *testing.T) {
	ck := &clock{time.Unix(1_700_000_000, 0)}
	b := NewBans(BanConfig{Failures: 3, Window: time.Minute, BanTime: 15 * time.Minute,
		Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, BanEvents{}, ck.now)
	ip := netip.MustParseAddr("198.51.100.1")
	b.Fail(ip)
	b.Fail(ip)
	if b.Banned(ip) {
		t.Fatal("banned after 2 of 3 failures")
	}
	ck.t = ck.t.Add(2 * time.Minute) // window passes: count restarts
	b.Fail(ip)
	b.Fail(ip)
	if b.Banned(ip) {
		t.Fatal("failures from an old window counted")
	}
	if !b.Fail(ip) || !b.Banned(ip) {
		t.Fatal("not banned after 3 failures in the window")
	}
	ck.t = ck.t.Add(16 * time.Minute)
	if b.Banned(ip) {
		t.Fatal("ban did not lift after ban time")
	}
	trusted := netip.MustParseAddr("10.1.2.3")
	for range 10 {
		b.Fail(trusted)
	}
	if b.Banned(trusted) {
		t.Fatal("trusted network banned")
	}

	// Ban: at once, for the ban time, never a trusted source, and the
	// OnBan hook hears of it once.
	var events int
	b.events.OnBan = func(BanInfo) { events++ }
	scanner := netip.MustParseAddr("203.0.113.9")
	if !b.Ban(scanner, ReasonScanner) || !b.Banned(scanner) {
		t.Fatal("Ban did not ban")
	}
	b.Ban(scanner, ReasonScanner)
	if events != 1 {
		t.Fatalf("OnBan called %d times for one ban, want 1", events)
	}
	if b.Ban(trusted, ReasonScanner) || b.Banned(trusted) {
		t.Fatal("Ban banned a trusted source")
	}
	ck.t = ck.t.Add(16 * time.Minute)
	if b.Banned(scanner) {
		t.Fatal("Ban did not lift after ban time")
	}
}

func FuzzCheck(f *testing.F) {
	f.Add(`Digest username="alice", realm="kaopu.test", nonce="x", uri="sip:a", response="00", qop=auth, nc=00000001, cnonce="c"`)
	f.Add(`Digest username=`)
	f.Add(`Basic abc`)
	ck := &clock{time.Unix(1_700_000_000, 0)}
	d := newTestDigest(&testing.T{}, nil, ck)
	f.Fuzz(func(t *testing.T, authz string) {
		r := d.Check(Request{Method: "REGISTER", CSeq: 1, Source: src, Authorization: authz})
		if r.Outcome == OK {
			t.Fatalf("random credentials accepted: %q", authz)
		}
	})
}

func TestParseCredentials(t *testing.T) {
	c, err := parseCredentials(`Digest username="al\"ice",realm="kaopu.test" , nonce=abc, uri="sip:x", response="r", qop=auth, nc=0000000A, cnonce="z", algorithm=SHA-256`)
	if err != nil {
		t.Fatal(err)
	}
	if c.Username != `al"ice` || c.Realm != "kaopu.test" || c.Nonce != "abc" || c.Nc != 10 || c.NC != "0000000A" || c.Algorithm != "SHA-256" || c.QOP != "auth" {
		t.Fatalf("parsed %+v", c)
	}
	for _, bad := range []string{``, `Basic x`, `Digest`, `Digest username="a`, `Digest username=a, nonce=b`, `Digest username=a, nonce=b, response=c, nc=xyz`} {
		if _, err := parseCredentials(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestBanRestoreLift(t *testing.T) {
	ck := &clock{time.Unix(1_700_000_000, 0)}
	b := NewBans(BanConfig{Failures: 3, Window: time.Minute, BanTime: 10 * time.Minute,
		Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, BanEvents{OnBan: func(BanInfo) {
		t.Error("Restore called OnBan")
	}}, ck.now)
	ip := netip.MustParseAddr("198.51.100.1")
	// A ban from the store (an earlier run) comes back with its offences:
	// the next ban of the source is longer.
	b.Restore(BanInfo{IP: ip, Until: ck.t.Add(5 * time.Minute), Reason: ReasonScanner, Offences: 2})
	b.Restore(BanInfo{IP: netip.MustParseAddr("10.1.1.1"), Until: ck.t.Add(time.Hour), Offences: 1})
	if !b.Banned(ip) || b.Banned(netip.MustParseAddr("10.1.1.1")) {
		t.Fatal("Restore: banned state wrong (trusted networks are never banned)")
	}
	act := b.Active()
	if len(act) != 1 || act[0].Reason != ReasonScanner || act[0].Offences != 2 {
		t.Fatalf("Active = %+v", act)
	}
	ck.t = ck.t.Add(6 * time.Minute)
	b.events.OnBan = nil
	b.Ban(ip, ReasonFlood)
	if act := b.Active(); len(act) != 1 || act[0].Offences != 3 || act[0].Until != ck.t.Add(40*time.Minute) {
		t.Fatalf("third ban = %+v, want 40 min (10 doubled twice)", act)
	}
	if !b.Lift(ip) || b.Banned(ip) || b.Lift(ip) {
		t.Fatal("Lift")
	}
	// Lifted is pardoned: the next ban starts again at the ban time.
	b.Ban(ip, ReasonFlood)
	if act := b.Active(); len(act) != 1 || act[0].Offences != 1 {
		t.Fatalf("after a pardon: %+v", act)
	}
}

// TestSignallingPolicy: "any" allows every transport; "tls_required"
// only TLS and WSS; a per-user policy wins over the default.
func TestSignallingPolicy(t *testing.T) {
	perUser := func(user string) (string, bool) {
		switch user {
		case "strict":
			return SignallingTLSRequired, true
		case "relaxed":
			return SignallingAny, true
		}
		return "", false
	}
	for _, tc := range []struct {
		name      string
		p         SignallingPolicy
		user      string
		transport string
		want      bool
	}{
		{"default empty udp", SignallingPolicy{}, "a", "UDP", true},
		{"any udp", SignallingPolicy{Default: SignallingAny}, "a", "UDP", true},
		{"required udp", SignallingPolicy{Default: SignallingTLSRequired}, "a", "UDP", false},
		{"required tcp", SignallingPolicy{Default: SignallingTLSRequired}, "a", "tcp", false},
		{"required ws", SignallingPolicy{Default: SignallingTLSRequired}, "a", "WS", false},
		{"required tls", SignallingPolicy{Default: SignallingTLSRequired}, "a", "TLS", true},
		{"required tls lower case", SignallingPolicy{Default: SignallingTLSRequired}, "a", "tls", true},
		{"required wss", SignallingPolicy{Default: SignallingTLSRequired}, "a", "WSS", true},
		{"per-user strict over any", SignallingPolicy{Default: SignallingAny, PerUser: perUser}, "strict", "UDP", false},
		{"per-user relaxed over required", SignallingPolicy{Default: SignallingTLSRequired, PerUser: perUser}, "relaxed", "UDP", true},
		{"per-user unset keeps default", SignallingPolicy{Default: SignallingTLSRequired, PerUser: perUser}, "other", "UDP", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.Allowed(tc.user, tc.transport); got != tc.want {
				t.Fatalf("Allowed(%q, %q) = %v, want %v", tc.user, tc.transport, got, tc.want)
			}
		})
	}
}
