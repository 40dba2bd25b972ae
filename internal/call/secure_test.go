package call

import (
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/store"
)

// TestSecureTargets: a sips: call keeps only bindings over TLS or WSS.
func TestSecureTargets(t *testing.T) {
	in := []store.Binding{{Contact: "a", Transport: "UDP"}, {Contact: "b", Transport: "TLS"},
		{Contact: "c", Transport: "TCP"}, {Contact: "d", Transport: "WSS"}, {Contact: "e", Transport: "WS"}}
	got := secureTargets(in)
	if len(got) != 2 || got[0].Contact != "b" || got[1].Contact != "d" {
		t.Fatalf("secureTargets = %+v, want the TLS and WSS bindings", got)
	}
	if len(in) != 5 || in[0].Contact != "a" {
		t.Fatal("secureTargets changed its input")
	}
}

// TestLegSide: our Contact is sips: on a TLS leg whose Request-URI is
// sips: (RFC 3261 §8.1.1.8), the transport's own otherwise.
func TestLegSide(t *testing.T) {
	sips := sip.Uri{Scheme: "sips", User: "bob", Host: "kaopu.test"}
	plain := sip.Uri{Scheme: "sip", User: "bob", Host: "kaopu.test"}
	uas := map[string]*sipgo.DialogUA{"UDP": {}, "TCP": {}, "TLS": {}, "SIPS": {}}
	for _, tc := range []struct {
		transport string
		uri       sip.Uri
		want      string
	}{
		{"TLS", sips, "SIPS"}, {"tls", sips, "SIPS"}, {"TLS", plain, "TLS"},
		{"UDP", plain, "UDP"}, {"tcp", plain, "TCP"}, {"UDP", sips, "UDP"},
	} {
		side := legSide(tc.transport, tc.uri)
		if side != tc.want {
			t.Errorf("legSide(%s, %s) = %s, want %s", tc.transport, tc.uri.Scheme, side, tc.want)
		}
		if dialogUA(uas, side) != uas[tc.want] {
			t.Errorf("dialogUA(%s) is not the %s side", side, tc.want)
		}
	}
	// Without a SIPS side (no TLS listener announced as sips:), TLS's.
	delete(uas, "SIPS")
	if dialogUA(uas, "SIPS") != uas["TLS"] {
		t.Error("SIPS side missing: want the TLS side")
	}
}

// TestDirectSIPS: a direct call to sips:user@IP goes over TLS, to port
// 5061 unless the URI names one.
func TestDirectSIPS(t *testing.T) {
	m := &Manager{cfg: Config{Domain: "kaopu.test", IsSelf: func(string, int) bool { return false }}}
	for _, tc := range []struct {
		uri, source, transport, contactScheme string
	}{
		{"sips:bob@192.0.2.7", "192.0.2.7:5061", "TLS", "sips"},
		{"sips:bob@192.0.2.7:5071", "192.0.2.7:5071", "TLS", "sips"},
		{"sip:bob@192.0.2.7", "192.0.2.7:5060", "UDP", "sip"},
		{"sip:bob@192.0.2.7;transport=tls", "192.0.2.7:5061", "TLS", "sip"},
	} {
		var u sip.Uri
		if err := sip.ParseUri(tc.uri, &u); err != nil {
			t.Fatal(err)
		}
		b, ok := m.direct(u)
		if !ok {
			t.Fatalf("%s: not a direct call", tc.uri)
		}
		var c sip.Uri
		if err := sip.ParseUri(b.Contact, &c); err != nil {
			t.Fatal(err)
		}
		if b.Source != tc.source || b.Transport != tc.transport || c.Scheme != tc.contactScheme {
			t.Errorf("%s: source %s transport %s contact %s; want %s %s %s:", tc.uri, b.Source, b.Transport, b.Contact,
				tc.source, tc.transport, tc.contactScheme)
		}
	}
}
