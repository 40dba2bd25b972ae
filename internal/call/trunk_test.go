package call

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/store"
)

// stubGateway answers CallerNumber from a map; the rest is unused here.
type stubGateway map[string]string

func (g stubGateway) Outbound(string) []TrunkTarget       { return nil }
func (g stubGateway) FromTrunk(netip.Addr) (string, bool) { return "", false }
func (g stubGateway) DID(string, string) (string, bool)   { return "", false }
func (g stubGateway) Acquire(string, bool) (func(), bool) { return func() {}, true }
func (g stubGateway) CallerNumber(user string) string     { return g[user] }
func (stubUsers) CanonicalUser(login string) (string, bool) {
	return login, login == "alice" || login == "bob"
}
func noRoute(*sip.Request, store.Binding) error { return nil }

func header(r *sip.Request, name string) string {
	if h := r.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}

type stubUsers struct{}

// trunkCallerInvite is an INVITE from alice with extra header lines.
func trunkCallerInvite(headers ...string) *sip.Request {
	raw := "INVITE sip:00442071234567@kaopu.test SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n" +
		"From: \"Alice\" <sip:alice@kaopu.test>;tag=a1\r\n" +
		"To: <sip:00442071234567@kaopu.test>\r\n" +
		"Call-ID: c1\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@127.0.0.1:5070>\r\nMax-Forwards: 70\r\n" +
		strings.Join(headers, "") + "Content-Length: 0\r\n\r\n"
	msg, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		panic(err)
	}
	return msg.(*sip.Request)
}

// TestTrunkInvitePresentation: what the carrier learns of the caller
// (RFC 3323, RFC 3325): its DID or the trunk's caller ID in From, in
// P-Asserted-Identity when the trunk sends it; a caller's Privacy: id
// makes From anonymous and goes to the carrier, which, trusted, still
// gets the identity in P-Asserted-Identity.
func TestTrunkInvitePresentation(t *testing.T) {
	m := &Manager{cfg: Config{Domain: "kaopu.test", Gateway: stubGateway{"alice": "+442071230001"}}, users: stubUsers{}, route: noRoute}
	tests := []struct {
		name              string
		caller            string
		headers           []string
		trunk             TrunkTarget
		wantFrom, wantPAI string
		wantPrivacy       string
	}{
		{name: "DID, PAI", caller: "alice", trunk: TrunkTarget{SendPAI: true, HonourPrivacy: true},
			wantFrom: `"Alice" <sip:+442071230001@kaopu.test>`, wantPAI: "<sip:+442071230001@kaopu.test>"},
		{name: "DID, no PAI", caller: "alice", trunk: TrunkTarget{HonourPrivacy: true},
			wantFrom: `"Alice" <sip:+442071230001@kaopu.test>`},
		{name: "trunk caller ID", caller: "bob", trunk: TrunkTarget{CallerID: "+442079460000", SendPAI: true},
			wantFrom: `"bob" <sip:+442079460000@kaopu.test>` /* "Alice" names another user */, wantPAI: "<sip:+442079460000@kaopu.test>"},
		{name: "privacy, PAI kept", caller: "alice", headers: []string{"Privacy: id\r\n"}, trunk: TrunkTarget{SendPAI: true, HonourPrivacy: true},
			wantFrom: `"Anonymous" <sip:anonymous@anonymous.invalid>`, wantPAI: "<sip:+442071230001@kaopu.test>", wantPrivacy: "id"},
		{name: "privacy values passed on", caller: "alice", headers: []string{"Privacy: header; id\r\n"}, trunk: TrunkTarget{HonourPrivacy: true},
			wantFrom: `"Anonymous" <sip:anonymous@anonymous.invalid>`, wantPrivacy: "header;id"},
		{name: "privacy not honoured", caller: "alice", headers: []string{"Privacy: id\r\n"}, trunk: TrunkTarget{SendPAI: true},
			wantFrom: `"Alice" <sip:+442071230001@kaopu.test>`, wantPAI: "<sip:+442071230001@kaopu.test>"},
		{name: "privacy none", caller: "alice", headers: []string{"Privacy: none\r\n"}, trunk: TrunkTarget{HonourPrivacy: true},
			wantFrom: `"Alice" <sip:+442071230001@kaopu.test>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.trunk.Binding = store.Binding{Contact: "sip:+442071234567@127.0.0.2:5060"}
			out, err := m.newTrunkInvite(&Call{Caller: tt.caller}, trunkCallerInvite(tt.headers...), tt.trunk, tt.trunk.Binding)
			if err != nil {
				t.Fatal(err)
			}
			from := header(out, "From")
			if i := strings.Index(from, ";tag="); i >= 0 {
				from = from[:i]
			}
			if from != tt.wantFrom {
				t.Errorf("From %q, want %q", from, tt.wantFrom)
			}
			if got := header(out, "P-Asserted-Identity"); got != tt.wantPAI {
				t.Errorf("P-Asserted-Identity %q, want %q", got, tt.wantPAI)
			}
			if got := header(out, "Privacy"); got != tt.wantPrivacy {
				t.Errorf("Privacy %q, want %q", got, tt.wantPrivacy)
			}
			if out.Recipient.User != "+442071234567" {
				t.Errorf("Request-URI %s", out.Recipient.String())
			}
		})
	}
}

// TestTrunkCaller: a carrier's call names its caller by the asserted
// identity (the carrier is trusted), else by From; and the callee of a
// call whose caller asked for privacy sees an anonymous From while the
// call keeps the number.
func TestTrunkCaller(t *testing.T) {
	tests := []struct {
		headers []string
		want    string
	}{
		{nil, "alice"}, // From (a carrier would send a number; the test's From is alice)
		{[]string{"P-Asserted-Identity: <sip:+33140000000@carrier.example>\r\n"}, "+33140000000"},
		{[]string{"P-Asserted-Identity: \"Paris\" <tel:+33140000001;phone-context=x>\r\n"}, "+33140000001"},
		{[]string{"P-Asserted-Identity: <sip:someone@carrier.example>, <tel:+33140000002>\r\n"}, "+33140000002"},
		{[]string{"P-Asserted-Identity: <sip:someone@carrier.example>\r\n"}, "alice"},
		{[]string{"P-Asserted-Identity: garbage\r\n"}, "alice"},
	}
	for _, tt := range tests {
		if got := trunkCaller(trunkCallerInvite(tt.headers...)); got != tt.want {
			t.Errorf("trunkCaller with %q = %q, want %q", tt.headers, got, tt.want)
		}
	}

	m := &Manager{cfg: Config{Domain: "kaopu.test"}, users: stubUsers{}, route: noRoute}
	req := trunkCallerInvite("Privacy: id\r\n", "P-Asserted-Identity: <tel:+33140000000>\r\n")
	c := &Call{Caller: trunkCaller(req), Callee: "bob"}
	c.callerHidden, _ = privacyRequested(req)
	out, err := m.newLegInvite(c, req, store.Binding{Contact: "sip:bob@127.0.0.1:5080"})
	if err != nil {
		t.Fatal(err)
	}
	if from := header(out, "From"); !strings.HasPrefix(from, `"Anonymous" <sip:anonymous@anonymous.invalid>`) || c.Caller != "+33140000000" {
		t.Errorf("hidden caller: From %q to the callee, call's caller %q", from, c.Caller)
	}
	if header(out, "P-Asserted-Identity") != "" {
		t.Error("the carrier's P-Asserted-Identity was passed to the callee")
	}
	c.callerHidden = false
	out, _ = m.newLegInvite(c, req, store.Binding{Contact: "sip:bob@127.0.0.1:5080"})
	if from := header(out, "From"); !strings.Contains(from, "<sip:+33140000000@kaopu.test>") {
		t.Errorf("caller's identity toward the callee: From %q", from)
	}
}
