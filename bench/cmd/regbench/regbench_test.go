package main

import (
	"bufio"
	"math"
	"net"
	"strings"
	"testing"
	"time"
)

func TestDigestAuthorization(t *testing.T) {
	tests := []struct {
		name       string
		challenges []string
		u          user
		method     string
		uri        string
		cnonce     string
		want       []string // substrings of the Authorization value
	}{
		{
			// RFC 2617 §3.5: the worked example (MD5, qop=auth).
			name: "rfc2617 example",
			challenges: []string{`Digest realm="testrealm@host.com", qop="auth,auth-int", ` +
				`nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"`},
			u:      user{name: "Mufasa", password: "Circle Of Life"},
			method: "GET", uri: "/dir/index.html", cnonce: "0a4f113b",
			want: []string{`response="6629fae49393a05397450978507c4ef1"`, `qop=auth`, `nc=00000001`,
				`cnonce="0a4f113b"`, `opaque="5ccc069c403ebaf9f0171e9517f40e41"`, `algorithm=MD5`},
		},
		{
			// MD5 is preferred when SHA-256 is listed first.
			name: "prefers MD5",
			challenges: []string{
				`Digest realm="bench.test", nonce="n1", algorithm=SHA-256, qop="auth"`,
				`Digest realm="bench.test", nonce="n2", algorithm=MD5, qop="auth"`,
			},
			u:      user{name: "u1", password: "secret"},
			method: "REGISTER", uri: "sip:bench.test", cnonce: "c",
			want: []string{`nonce="n2"`, `algorithm=MD5`},
		},
		{
			// RFC 8760 §3.9.1 style: SHA-256 alone is answered with SHA-256.
			name:       "sha256 only, no qop",
			challenges: []string{`Digest realm="bench.test", nonce="n3", algorithm=SHA-256`},
			u:          user{name: "u1", password: "secret"},
			method:     "REGISTER", uri: "sip:bench.test", cnonce: "c",
			want: []string{`algorithm=SHA-256`, `nonce="n3"`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := digestAuthorization(tc.challenges, tc.u, tc.method, tc.uri, tc.cnonce)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("Authorization %q lacks %q", got, w)
				}
			}
		})
	}
	if _, err := digestAuthorization([]string{`Basic realm="x"`}, user{}, "REGISTER", "sip:x", "c"); err == nil {
		t.Error("a Basic challenge was answered")
	}
}

func TestParseResponse(t *testing.T) {
	msg := "SIP/2.0 200 OK\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n" +
		"i: reg-u1@bench\r\n" +
		"CSeq: 2 REGISTER\r\n" +
		"Contact: <sip:u1@127.0.0.1:5070>;expires=3600, <sip:u1@10.0.0.1:5060>;expires=60\r\n" +
		"m: <sip:u2@127.0.0.1:5070>\r\n" +
		"Content-Length: 0\r\n\r\n"
	r, ok := parseResponse([]byte(msg))
	if !ok {
		t.Fatal("not parsed")
	}
	if r.code != 200 || r.callID != "reg-u1@bench" || r.cseq != 2 {
		t.Errorf("got code %d call-id %q cseq %d", r.code, r.callID, r.cseq)
	}
	if n := r.contactsFor("u1"); n != 2 {
		t.Errorf("contactsFor(u1) = %d, want 2", n)
	}
	if _, ok := parseResponse([]byte("REGISTER sip:x SIP/2.0\r\n\r\n")); ok {
		t.Error("a request parsed as a response")
	}
}

func TestParseSippStat(t *testing.T) {
	// A real -trace_stat file: 2,000 calls/s for 10 s, all successful.
	st, err := parseSippStat("testdata/stat.csv")
	if err != nil {
		t.Fatal(err)
	}
	if st.created != 20000 || st.ok != 20000 || st.failed != 0 {
		t.Errorf("created %d ok %d failed %d", st.created, st.ok, st.failed)
	}
	if rate := float64(st.created) / st.createSecs; math.Abs(rate-2000) > 100 {
		t.Errorf("achieved rate %.0f/s, want about 2000/s (createSecs %.2f)", rate, st.createSecs)
	}
	if st.elapsed < st.createSecs || st.elapsed > 12 {
		t.Errorf("elapsed %.2f s, createSecs %.2f s", st.elapsed, st.createSecs)
	}
}

func TestParseSippDuration(t *testing.T) {
	for in, want := range map[string]float64{
		"00:00:00:000000": 0,
		"00:00:01:500000": 1.5,
		"01:02:03:000250": 3723.00025,
		"garbage":         0,
	} {
		if got := parseSippDuration(in); math.Abs(got-want) > 1e-9 {
			t.Errorf("parseSippDuration(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestMakeUsers(t *testing.T) {
	us := makeUsers(3)
	if us[0].name != "u100000" || us[2].name != "u100002" {
		t.Errorf("names %v", us)
	}
	seen := map[string]bool{}
	for _, u := range us {
		if len(u.password) < 6 || seen[u.password] {
			t.Errorf("password %q too short or repeated", u.password)
		}
		seen[u.password] = true
	}
}

// TestStreamConnFraming: messages on a stream are split by Content-Length,
// keep-alive CRLFs between them are skipped, and a body is kept whole.
func TestStreamConnFraming(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	msgs := []string{
		"SIP/2.0 401 Unauthorized\r\nCall-ID: x\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n",
		"SIP/2.0 200 OK\r\nCall-ID: x\r\nCSeq: 2 REGISTER\r\nl: 5\r\n\r\nhello",
		"SIP/2.0 200 OK\r\nCall-ID: y\r\nCSeq: 3 REGISTER\r\nContent-Length: 0\r\n\r\n",
	}
	go func() {
		b.Write([]byte(msgs[0] + "\r\n\r\n" + msgs[1] + msgs[2]))
	}()
	sc := &streamConn{c: a, br: bufio.NewReader(a)}
	buf := make([]byte, 16)
	for i, want := range msgs {
		got, err := sc.recv(buf, time.Now().Add(5*time.Second))
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if string(got) != want {
			t.Fatalf("message %d = %q, want %q", i, got, want)
		}
	}
}
