package sdpx

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// testKeyLen is the media layer's list as the call layer passes it.
func testKeyLen(s string) int {
	switch s {
	case "AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32":
		return 30
	case "AEAD_AES_128_GCM":
		return 28
	}
	return 0
}

const key30 = "lwqPbc2ZVkvGm0Gm8S0u1GD9xnHQ+bVBfRAAIzKQ"

func TestParseCrypto(t *testing.T) {
	k28 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 28))
	tests := []struct {
		v     string
		tag   int
		suite string
		err   error
	}{
		{v: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30, tag: 1, suite: "AES_CM_128_HMAC_SHA1_80"},
		{v: "7 AES_CM_128_HMAC_SHA1_32 inline:" + key30 + "|2^20", tag: 7, suite: "AES_CM_128_HMAC_SHA1_32"},
		{v: "2 AEAD_AES_128_GCM inline:" + k28, tag: 2, suite: "AEAD_AES_128_GCM"},
		{v: "2 AEAD_AES_128_GCM inline:" + strings.TrimRight(k28, "="), tag: 2, suite: "AEAD_AES_128_GCM"}, // unpadded
		{v: "1 AES_256_CM_HMAC_SHA1_80 inline:" + key30, err: ErrUnsupported},
		{v: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^20|1:4", err: ErrUnsupported},         // MKI
		{v: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|1:4", err: ErrUnsupported},              // MKI, no lifetime
		{v: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + ";inline:" + key30, err: ErrUnsupported},  // two keys
		{v: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + " UNENCRYPTED_SRTP", err: ErrUnsupported}, // session param
		{v: "1 AEAD_AES_128_GCM inline:" + key30, err: ErrMalformed},                                // 30 bytes for a 28-byte suite
		{v: "1 AES_CM_128_HMAC_SHA1_80 inline:%%%", err: ErrMalformed},
		{v: "x AES_CM_128_HMAC_SHA1_80 inline:" + key30, err: ErrMalformed},
		{v: "1 AES_CM_128_HMAC_SHA1_80 key:" + key30, err: ErrUnsupported},
		{v: "1 AES_CM_128_HMAC_SHA1_80", err: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.v[:min(len(tt.v), 40)], func(t *testing.T) {
			c, err := ParseCrypto(tt.v, testKeyLen)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				if strings.Contains(err.Error(), key30[:10]) {
					t.Errorf("error quotes the key: %v", err)
				}
				return
			}
			if c.Tag != tt.tag || c.Suite != tt.suite || len(c.Key) != testKeyLen(tt.suite) {
				t.Errorf("got %v (%d-byte key)", c, len(c.Key))
			}
			if c.attr() != strings.Split(tt.v, "|")[0] && !strings.HasSuffix(tt.v, strings.TrimRight(k28, "=")) {
				t.Errorf("attr() = %q", c.attr())
			}
		})
	}
	c, _ := ParseCrypto(tests[0].v, testKeyLen)
	for _, s := range []string{c.String(), fmt.Sprint(c), fmt.Sprintf("%+v", c), c.LogValue().String()} {
		if strings.Contains(s, key30[:10]) || !strings.Contains(s, "redacted") {
			t.Errorf("formatted crypto shows the key: %q", s)
		}
	}
}

func TestSelectCrypto(t *testing.T) {
	offer := mustParse(t, load(t, "baresip_srtp_besteffort.sdp"))
	c, ok := offer.Audio.SelectCrypto(testKeyLen)
	if !ok || c.Tag != 1 || c.Suite != "AES_CM_128_HMAC_SHA1_80" {
		t.Fatalf("selected %v %v", c, ok)
	}
	only32 := func(s string) int {
		if s == "AES_CM_128_HMAC_SHA1_32" {
			return 30
		}
		return 0
	}
	if c, ok := offer.Audio.SelectCrypto(only32); !ok || c.Tag != 2 {
		t.Fatalf("with only the 32-bit suite: %v %v", c, ok)
	}
	if _, ok := offer.Audio.SelectCrypto(func(string) int { return 0 }); ok {
		t.Fatal("selected a suite nobody supports")
	}

	ours := []Crypto{{Tag: 1, Suite: "AES_CM_128_HMAC_SHA1_80", Key: make([]byte, 30)}, {Tag: 2, Suite: "AEAD_AES_128_GCM", Key: make([]byte, 28)}}
	ans := mustParse(t, sdpWith("", "m=audio 4000 RTP/AVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"+key30+"\r\n"))
	if c, ok, err := ans.Audio.AnswerCrypto(ours, testKeyLen); !ok || err != nil || c.Tag != 1 {
		t.Errorf("answer: %v %v %v", c, ok, err)
	}
	plain := mustParse(t, sdpWith("", "m=audio 4000 RTP/AVP 0\r\n"))
	if _, ok, err := plain.Audio.AnswerCrypto(ours, testKeyLen); ok || err != nil {
		t.Errorf("plain answer: %v %v", ok, err)
	}
	wrong := mustParse(t, sdpWith("", "m=audio 4000 RTP/AVP 0\r\na=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:"+key30+"\r\n"))
	if _, _, err := wrong.Audio.AnswerCrypto(ours, testKeyLen); !errors.Is(err, ErrUnsupported) {
		t.Errorf("answer with a tag/suite not offered: %v", err)
	}
}

// TestRewriteCrypto: the server writes its own keys, never the peer's, in
// offers (best effort or RTP/SAVP) and in answers (offer's transport, the
// accepted tag).
func TestRewriteCrypto(t *testing.T) {
	server := netip.MustParseAddr("203.0.113.5")
	ourKey := bytes.Repeat([]byte{0xab}, 30)
	ours := Crypto{Tag: 1, Suite: "AES_CM_128_HMAC_SHA1_80", Key: ourKey}
	gcm := Crypto{Tag: 2, Suite: "AEAD_AES_128_GCM", Key: bytes.Repeat([]byte{0xcd}, 28)}
	peer := mustParse(t, load(t, "asterisk_srtp.sdp")) // RTP/SAVP, tag 1
	peerKey := strings.Fields(peer.Audio.Crypto[0])[2]

	for _, c := range []struct {
		name   string
		opts   RewriteOptions
		proto  string
		crypto []Crypto
		err    error
	}{
		{name: "best-effort offer", opts: RewriteOptions{Crypto: []Crypto{ours, gcm}}, proto: "RTP/AVP", crypto: []Crypto{ours, gcm}},
		{name: "RTP/SAVP offer", opts: RewriteOptions{Crypto: []Crypto{ours}, Secure: true}, proto: "RTP/SAVP", crypto: []Crypto{ours}},
		{name: "RTP/SAVP offer without keys", opts: RewriteOptions{Secure: true}, err: ErrInvalid},
		{name: "plain offer", opts: RewriteOptions{}, proto: "RTP/AVP"},
		{name: "answer to RTP/SAVP", opts: RewriteOptions{Crypto: []Crypto{ours}, AnswerTo: peer}, proto: "RTP/SAVP", crypto: []Crypto{ours}},
		{name: "answer to RTP/SAVP without keys", opts: RewriteOptions{AnswerTo: peer}, err: ErrUnsupported},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Origin = &Origin{SessionID: 1, Version: 1}
			out, err := Rewrite(peer, server, 20000, c.opts)
			if !errors.Is(err, c.err) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			if err != nil {
				return
			}
			if bytes.Contains(out, []byte(peerKey)) {
				t.Fatal("the peer's key was copied")
			}
			back := mustParse(t, out)
			if back.Audio.Proto != c.proto || len(back.Audio.Crypto) != len(c.crypto) {
				t.Fatalf("transport %s, crypto %q\n%s", back.Audio.Proto, back.Audio.Crypto, out)
			}
			for i, want := range c.crypto {
				got, err := ParseCrypto(back.Audio.Crypto[i], testKeyLen)
				if err != nil || got.Tag != want.Tag || got.Suite != want.Suite || !bytes.Equal(got.Key, want.Key) {
					t.Errorf("crypto %d = %v %v, want %v", i, got, err, want)
				}
			}
		})
	}
}

// FuzzParseCrypto: no panic, errors wrap a sentinel, accepted keys have
// their suite's length, and no error quotes the key part.
func FuzzParseCrypto(f *testing.F) {
	f.Add("1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^20")
	f.Add("2 AEAD_AES_128_GCM inline:" + base64.StdEncoding.EncodeToString(make([]byte, 28)))
	f.Add("1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^20|1:4 KDR=1")
	f.Fuzz(func(t *testing.T, v string) {
		c, err := ParseCrypto(v, testKeyLen)
		if err != nil {
			if !isSentinel(err, ErrMalformed, ErrUnsupported) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			// The tag and suite may be quoted (escaped), so a key that
			// also appears in their quoted form proves nothing.
			if f := strings.Fields(v); len(f) > 2 && len(f[2]) > 12 && !strings.Contains(fmt.Sprintf("%q %q", f[0], f[1]), f[2]) &&
				strings.Contains(err.Error(), f[2]) {
				t.Fatalf("error quotes the key: %v", err)
			}
			return
		}
		if len(c.Key) != testKeyLen(c.Suite) {
			t.Fatalf("%d-byte key for %s", len(c.Key), c.Suite)
		}
	})
}
