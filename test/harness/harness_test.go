package harness

import (
	"slices"
	"strings"
	"testing"
)

// The digest code is checked against answers real peers computed, so the
// end-to-end tests fail because of the server, not because of the client.
func TestCredentials(t *testing.T) {
	for _, tc := range []struct {
		name                                string
		challenge                           string
		user, password, method, uri, cnonce string
		want                                string
	}{
		{
			// RFC 7616 §3.9.1.
			name:      "RFC 7616 SHA-256",
			challenge: `Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`,
			user:      "Mufasa", password: "Circle of Life", method: "GET", uri: "/dir/index.html",
			cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
			want:   "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
		},
		{
			name:      "RFC 7616 MD5",
			challenge: `Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`,
			user:      "Mufasa", password: "Circle of Life", method: "GET", uri: "/dir/index.html",
			cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
			want:   "8ca523f5e9506fed4657c9700eebdbec",
		},
		{
			// Computed by baresip 1.0 against a sipp registrar.
			name:      "baresip MD5",
			challenge: `Digest realm="kaopu.test", nonce="abc123", algorithm=MD5, qop="auth"`,
			user:      "alice", password: "secret", method: "REGISTER", uri: "sip:kaopu.test",
			cnonce: "fc806bacee9be155",
			want:   "02f1515310b6d0fa99b1958d9a8f5d67",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch, err := ParseChallenge(tc.challenge)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Credentials(ch, tc.user, tc.password, tc.method, tc.uri, tc.cnonce)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(got, `response="`+tc.want+`"`) {
				t.Errorf("Credentials = %s\nwant response=%q", got, tc.want)
			}
			if o := ch.Params["opaque"]; o != "" && !strings.Contains(got, `opaque="`+o+`"`) {
				t.Errorf("opaque not echoed: %s", got)
			}
		})
	}
}

func TestParseChallenge(t *testing.T) {
	ch, err := ParseChallenge(`Digest realm="kaopu.test", nonce="a,b\"c", algorithm=SHA-256,qop="auth"`)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Scheme != "Digest" || ch.Params["realm"] != "kaopu.test" || ch.Params["nonce"] != `a,b"c` ||
		ch.Algorithm() != "SHA-256" || ch.Params["qop"] != "auth" {
		t.Errorf("parsed %+v", ch)
	}
	if want := []string{"realm", "nonce", "algorithm", "qop"}; !slices.Equal(ch.Names, want) {
		t.Errorf("names %v, want %v", ch.Names, want)
	}
	if _, err := ParseChallenge(`Digest realm="open`); err == nil {
		t.Error("unterminated quote accepted")
	}
}

func TestMessageContacts(t *testing.T) {
	m, err := ParseMessage([]byte("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n" +
		"Contact: <sip:a@127.0.0.1:1>;expires=60, \"B, b\" <sip:b@127.0.0.1:2;transport=tcp>;expires=30\r\n" +
		"m: sip:c@127.0.0.1:3;expires=5\r\nContent-Length: 0\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	cs := m.Contacts()
	if len(cs) != 3 {
		t.Fatalf("contacts %q, want 3", cs)
	}
	for i, want := range []struct {
		uri     string
		expires int
	}{{"sip:a@127.0.0.1:1", 60}, {"sip:b@127.0.0.1:2;transport=tcp", 30}, {"sip:c@127.0.0.1:3", 5}} {
		if ContactURI(cs[i]) != want.uri || ContactExpires(cs[i]) != want.expires {
			t.Errorf("contact %q: uri %q expires %d, want %q %d", cs[i], ContactURI(cs[i]), ContactExpires(cs[i]), want.uri, want.expires)
		}
	}
	if m.StatusCode() != 200 || m.Reason() != "OK" {
		t.Errorf("status %d %q", m.StatusCode(), m.Reason())
	}
}

func TestSippTrace(t *testing.T) {
	r := &SippResult{Messages: "----------------------------------------------- 2026-11-24 02:12:55.769932\n" +
		"UDP message sent (20 bytes):\n\nREGISTER sip:kaopu.test SIP/2.0\nCSeq: 1 REGISTER\nContent-Length: 0\n\n\n" +
		"----------------------------------------------- 2026-11-24 02:12:55.770153\n" +
		"UDP message received [20] bytes :\n\nSIP/2.0 401 Unauthorized\nCSeq: 1 REGISTER\nContent-Length: 0\n\n\n"}
	tr := r.Trace()
	if len(tr) != 2 || !tr[0].Sent || tr[1].Sent || tr[1].StatusCode() != 401 {
		t.Fatalf("trace %+v", tr)
	}
	if r.LastResponse().StatusCode() != 401 {
		t.Errorf("last response %q", r.LastResponse().Status())
	}
}
