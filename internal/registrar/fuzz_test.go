package registrar

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// FuzzRegister sends authenticated REGISTERs whose Contact and one more
// header line are fuzzed, so the input reaches what runs after digest
// authentication: Contact parsing (URIs, params, wildcard, instance and
// reg-id), expiry rules and the binding table. The answer must be a
// response with a status code, never more bindings than MaxContacts.
func FuzzRegister(f *testing.F) {
	f.Add("<sip:alice@10.0.0.5:5060>", "Expires: 600")
	f.Add("*", "Expires: 0")
	f.Add("*", "")
	f.Add(`<sip:alice@[2001:db8::1]:5070;transport=tcp>;expires=30;+sip.instance="<urn:uuid:00000000-0000-0000-0000-000000000001>";reg-id=1`, "Supported: outbound, path")
	f.Add(`"Alice" <sips:alice@example.org;ob>;q=0.5, <sip:alice@10.0.0.6>;expires=0`, "")
	f.Add("<sip:alice@10.0.0.5>;expires=abc", "Expires: -1")
	f.Add("<tel:+15551234567>", "Require: path")
	f.Add("<sip:alice@10.0.0.5>, <sip:alice@10.0.0.6>, <sip:alice@10.0.0.7>, <sip:alice@10.0.0.8>", "Expires: 60")
	f.Add("sip:alice@10.0.0.5:99999", "Expires: 4294967296")
	f.Add("<sip:%61lice@host;maddr=10.0.0.9>;expires=1", "Path: <sip:edge.example.org;lr>")
	// The fuzzed messages authenticate: the first seed is registered.
	if res := newFixture(f).send("alice", "alice", "pw-alice", "seed", "Contact: <sip:alice@10.0.0.5:5060>"); res.StatusCode != 200 {
		f.Fatalf("seed REGISTER: %d, want 200", res.StatusCode)
	}
	f.Fuzz(func(t *testing.T, contact, extra string) {
		if strings.ContainsAny(contact, "\r\n") {
			return // one header line
		}
		extras := []string{"Contact: " + contact}
		if extra != "" {
			extras = append(extras, extra)
		}
		// Only messages sipgo parses reach the registrar.
		raw := "REGISTER sip:" + realm + " SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1\r\n" +
			"From: <sip:alice@" + realm + ">;tag=a1\r\nTo: <sip:alice@" + realm + ">\r\nCall-ID: fz\r\n" +
			"CSeq: 1 REGISTER\r\n" + strings.Join(extras, "\r\n") + "\r\nContent-Length: 0\r\n\r\n"
		if _, err := sip.ParseMessage([]byte(raw)); err != nil {
			return
		}
		fx := newFixture(t)
		res := fx.send("alice", "alice", "pw-alice", "fz", extras...)
		if res == nil {
			t.Fatal("no response")
		}
		if res.StatusCode < 200 || res.StatusCode > 699 {
			t.Fatalf("status %d", res.StatusCode)
		}
		if n := len(fx.reg.loc.Lookup("alice")); n > 3 {
			t.Fatalf("%d bindings held, MaxContacts is 3", n)
		}
		if res.StatusCode == 200 && len(contacts(res)) > 3 {
			t.Fatalf("200 lists %d contacts, MaxContacts is 3", len(contacts(res)))
		}
	})
}
