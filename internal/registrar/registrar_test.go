package registrar

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/auth"
	"github.com/kaopu/kaopu/internal/store"
)

const realm = "kaopu.test"

type memStore struct {
	mu  sync.Mutex
	ops []store.BindingOp
}

func (m *memStore) DeleteExpiredBindings(context.Context, time.Time) (int64, error)  { return 0, nil }
func (m *memStore) LoadBindings(context.Context, time.Time) ([]store.Binding, error) { return nil, nil }
func (m *memStore) ApplyBindings(_ context.Context, ops []store.BindingOp) error {
	m.mu.Lock()
	m.ops = append(m.ops, ops...)
	m.mu.Unlock()
	return nil
}

type dir map[string]string // login -> canonical

func (d dir) CanonicalUser(l string) (string, bool) { u, ok := d[l]; return u, ok }

type creds struct{}

func (creds) HA1(login, alg string) (string, string, bool) {
	user := map[string]string{"alice": "alice", "1001": "alice", "bob": "bob"}[login]
	if user == "" {
		return "", "", false
	}
	return user, auth.H(auth.Algorithm(alg), login, realm, "pw-"+user), true
}

type fixture struct {
	t     testing.TB
	now   time.Time
	reg   *Registrar
	nonce string
	nc    int
	cseq  int
	// transport the REGISTERs arrive over; "" is UDP.
	transport string
}

func newFixture(t testing.TB) *fixture {
	f := &fixture{t: t, now: time.Unix(1_700_000_000, 0)}
	clock := func() time.Time { return f.now }
	d := auth.NewDigest(realm, []auth.Algorithm{auth.MD5}, auth.NewNonces(5*time.Minute, clock), creds{}, nil)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	loc := NewLocation(&memStore{}, log, clock)
	f.reg = New(Config{MinExpires: 60, MaxExpires: 3600, DefaultExpires: 600, MaxContacts: 3}, d, loc,
		dir{"alice": "alice", "1001": "alice", "bob": "bob"}, log, clock)
	return f
}

var nonceRE = regexp.MustCompile(`nonce="([^"]+)"`)

// send builds a REGISTER for aor with extra header lines, authenticated as
// login/password when login != "", and returns the response.
func (f *fixture) send(aor, login, password, callID string, extra ...string) *sip.Response {
	f.t.Helper()
	f.cseq++
	hdrs := strings.Join(extra, "\r\n")
	if hdrs != "" {
		hdrs += "\r\n"
	}
	if login != "" {
		if f.nonce == "" {
			res := f.send(aor, "", "", callID, extra...)
			if res.StatusCode != 401 {
				return res // refused before authentication (e.g. 420)
			}
			m := nonceRE.FindStringSubmatch(res.GetHeader("WWW-Authenticate").Value())
			f.nonce = m[1]
			f.cseq++
		}
		f.nc++
		uri := "sip:" + realm
		ha1 := auth.H(auth.MD5, login, realm, password)
		ncs := fmt.Sprintf("%08x", f.nc)
		resp := auth.H(auth.MD5, ha1, f.nonce, ncs, "abc", "auth", auth.H(auth.MD5, "REGISTER", uri))
		hdrs += fmt.Sprintf("Authorization: Digest username=\"%s\", realm=\"%s\", nonce=\"%s\", uri=\"%s\", response=\"%s\", algorithm=MD5, qop=auth, nc=%s, cnonce=\"abc\"\r\n",
			login, realm, f.nonce, uri, resp, ncs)
	}
	raw := "REGISTER sip:" + realm + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK" + fmt.Sprint(f.cseq) + ";rport\r\n" +
		"From: <sip:" + aor + "@" + realm + ">;tag=a1\r\n" +
		"To: <sip:" + aor + "@" + realm + ">\r\n" +
		"Call-ID: " + callID + "\r\n" +
		"CSeq: " + fmt.Sprint(f.cseq) + " REGISTER\r\n" +
		"Max-Forwards: 70\r\n" + hdrs + "Content-Length: 0\r\n\r\n"
	msg, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		f.t.Fatalf("parse: %v\n%s", err, raw)
	}
	req := msg.(*sip.Request)
	req.SetSource("203.0.113.9:40000")
	req.SetTransport("UDP")
	if f.transport != "" {
		req.SetTransport(f.transport)
	}
	return f.reg.Handle(req)
}

func contacts(res *sip.Response) []string {
	var out []string
	for _, h := range res.GetHeaders("Contact") {
		out = append(out, h.Value())
	}
	return out
}

func TestRegisterFlow(t *testing.T) {
	f := newFixture(t)
	if res := f.send("alice", "", "", "c1", "Contact: <sip:alice@10.0.0.5:5060>"); res.StatusCode != 401 {
		t.Fatalf("unauthenticated: %d, want 401", res.StatusCode)
	}
	res := f.send("alice", "alice", "pw-alice", "c1", "Contact: <sip:alice@10.0.0.5:5060>", "Expires: 300")
	if res.StatusCode != 200 {
		t.Fatalf("register: %d %s", res.StatusCode, res.Reason)
	}
	if got := contacts(res); len(got) != 1 || got[0] != "<sip:alice@10.0.0.5:5060>;expires=300" {
		t.Fatalf("contacts = %q", got)
	}
	b := f.reg.Location().Lookup("alice")
	if len(b) != 1 || b[0].Source != "203.0.113.9:40000" || b[0].Transport != "UDP" {
		t.Fatalf("binding = %+v, want source 203.0.113.9:40000 over UDP (NAT: real source kept)", b)
	}

	// A second device via the extension login, with per-contact expires.
	res = f.send("1001", "1001", "pw-alice", "c2", "Contact: <sip:alice@10.0.0.6:5062>;expires=120")
	if res.StatusCode != 200 || len(contacts(res)) != 2 {
		t.Fatalf("second contact: %d %q", res.StatusCode, contacts(res))
	}
	// Query lists both.
	if res = f.send("alice", "alice", "pw-alice", "c3"); len(contacts(res)) != 2 {
		t.Fatalf("query: %q", contacts(res))
	}
	// Expiry: after 121 s the 120 s contact is gone.
	f.now = f.now.Add(121 * time.Second)
	if n := f.reg.Location().Sweep(); n != 1 {
		t.Fatalf("swept %d, want 1", n)
	}
	// Unregister one contact.
	res = f.send("alice", "alice", "pw-alice", "c1", "Contact: <sip:alice@10.0.0.5:5060>;expires=0")
	if res.StatusCode != 200 || len(contacts(res)) != 0 {
		t.Fatalf("unregister: %d %q", res.StatusCode, contacts(res))
	}
}

func TestRegisterRules(t *testing.T) {
	tests := []struct {
		name   string
		extra  []string
		code   int
		reason string
	}{
		{"too brief", []string{"Contact: <sip:alice@10.0.0.5>", "Expires: 10"}, 423, "Interval Too Brief"},
		{"wildcard needs expires 0", []string{"Contact: *", "Expires: 60"}, 400, "Invalid Wildcard Contact"},
		{"bad expires", []string{"Contact: <sip:alice@10.0.0.5>", "Expires: soon"}, 400, "Invalid Expires"},
		{"non-sip contact", []string{"Contact: <http://example.invalid/>"}, 400, "Invalid Contact URI"},
		{"unsupported require", []string{"Contact: <sip:alice@10.0.0.5>", "Require: foo"}, 420, "Bad Extension"},
		{"too many contacts", []string{"Contact: <sip:a@10.0.0.1>, <sip:a@10.0.0.2>, <sip:a@10.0.0.3>, <sip:a@10.0.0.4>"}, 403, "Too Many Registered Contacts"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			res := f.send("alice", "alice", "pw-alice", "c1", tc.extra...)
			if res.StatusCode != tc.code || res.Reason != tc.reason {
				t.Fatalf("got %d %s, want %d %s", res.StatusCode, res.Reason, tc.code, tc.reason)
			}
			if tc.code == 423 && res.GetHeader("Min-Expires").Value() != "60" {
				t.Fatal("423 without Min-Expires: 60")
			}
		})
	}
}

func TestRegisterOtherUsersAOR(t *testing.T) {
	f := newFixture(t)
	// bob authenticates correctly but tries to register alice's address.
	res := f.send("alice", "bob", "pw-bob", "c1", "Contact: <sip:evil@10.9.9.9>")
	if res.StatusCode != 403 {
		t.Fatalf("got %d, want 403", res.StatusCode)
	}
	if len(f.reg.Location().Lookup("alice")) != 0 {
		t.Fatal("binding created for another user's AOR")
	}
}

func TestMaxExpiresClampAndWildcard(t *testing.T) {
	f := newFixture(t)
	res := f.send("alice", "alice", "pw-alice", "c1", "Contact: <sip:alice@10.0.0.5>, <sip:alice@10.0.0.6>", "Expires: 99999")
	if got := contacts(res); len(got) != 2 || !strings.HasSuffix(got[0], "expires=3600") {
		t.Fatalf("contacts = %q, want expires clamped to 3600", got)
	}
	res = f.send("alice", "alice", "pw-alice", "c1", "Contact: *", "Expires: 0")
	if res.StatusCode != 200 || len(contacts(res)) != 0 || f.reg.Location().Count() != 0 {
		t.Fatalf("wildcard: %d %q count=%d", res.StatusCode, contacts(res), f.reg.Location().Count())
	}
}

func TestCSeqOrdering(t *testing.T) {
	f := newFixture(t)
	f.cseq = 100
	f.send("alice", "alice", "pw-alice", "c1", "Contact: <sip:alice@10.0.0.5>")
	f.cseq -= 5 // an older request of the same Call-ID arrives late
	res := f.send("alice", "alice", "pw-alice", "c1", "Contact: <sip:alice@10.0.0.5>;expires=0")
	if res.StatusCode != 400 || len(f.reg.Location().Lookup("alice")) != 1 {
		t.Fatalf("out-of-order CSeq: %d, bindings %d; want 400 and the binding kept", res.StatusCode, len(f.reg.Location().Lookup("alice")))
	}
}

// TestSignallingTLSRequired: with a TLS-only policy, REGISTERs without
// credentials or with a wrong password get the same 401 as ever (the
// policy reveals nothing before authentication); a correct one over UDP
// gets 403 "TLS required" and binds nothing; over TLS it binds.
func TestSignallingTLSRequired(t *testing.T) {
	f := newFixture(t)
	var asked []string
	f.reg.cfg.SignallingAllowed = func(user, transport string) bool {
		asked = append(asked, user+"/"+transport)
		return auth.SignallingPolicy{Default: auth.SignallingTLSRequired}.Allowed(user, transport)
	}
	contact := "Contact: <sip:alice@10.0.0.5:5061;transport=tls>"
	if res := f.send("alice", "", "", "c1", contact); res.StatusCode != 401 {
		t.Fatalf("no credentials over UDP: %d, want 401", res.StatusCode)
	}
	if res := f.send("alice", "alice", "wrong", "c1", contact); res.StatusCode != 401 {
		t.Fatalf("wrong password over UDP: %d, want 401", res.StatusCode)
	}
	if len(asked) != 0 {
		t.Fatalf("policy asked before authentication succeeded: %q", asked)
	}
	res := f.send("alice", "alice", "pw-alice", "c1", contact)
	if res.StatusCode != 403 || res.Reason != "TLS required" {
		t.Fatalf("authenticated over UDP: %d %s, want 403 TLS required", res.StatusCode, res.Reason)
	}
	if len(f.reg.Location().Lookup("alice")) != 0 {
		t.Fatal("binding created over UDP under tls_required")
	}
	f.transport = "TLS"
	if res := f.send("alice", "alice", "pw-alice", "c1", contact); res.StatusCode != 200 {
		t.Fatalf("authenticated over TLS: %d %s", res.StatusCode, res.Reason)
	}
	if b := f.reg.Location().Lookup("alice"); len(b) != 1 || b[0].Transport != "TLS" {
		t.Fatalf("bindings %+v, want one over TLS", b)
	}
	if want := []string{"alice/UDP", "alice/TLS"}; strings.Join(asked, ",") != strings.Join(want, ",") {
		t.Fatalf("policy asked %q, want %q", asked, want)
	}
}

// TestSIPSContact: a sips: Contact registers over TLS and is refused over
// a plain transport (it could not be reached securely through that hop).
func TestSIPSContact(t *testing.T) {
	for _, tc := range []struct {
		transport string
		code      int
	}{{"UDP", 403}, {"TCP", 403}, {"TLS", 200}} {
		t.Run(tc.transport, func(t *testing.T) {
			f := newFixture(t)
			f.transport = tc.transport
			res := f.send("alice", "alice", "pw-alice", "c1", "Contact: <sips:alice@10.0.0.5:5061>")
			if res.StatusCode != tc.code {
				t.Fatalf("got %d %s, want %d", res.StatusCode, res.Reason, tc.code)
			}
			n := len(f.reg.Location().Lookup("alice"))
			if (tc.code == 200) != (n == 1) {
				t.Fatalf("%d bindings after %d", n, tc.code)
			}
		})
	}
}

func BenchmarkRegister(b *testing.B) {
	f := newFixture(&testing.T{})
	f.t = &testing.T{}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f.nonce = ""
		f.send("alice", "alice", "pw-alice", fmt.Sprint("c", i), "Contact: <sip:alice@10.0.0.5>")
	}
}
