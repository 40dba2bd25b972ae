package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/store"
	"github.com/kaopu/kaopu/internal/store/sqlite"
)

// TestTrunkSet: `kaopu trunk set` changes only the flags given, checks
// the result like add does (a refused change leaves the trunk as it
// was), and `trunk show` prints what is stored.
func TestTrunkSet(t *testing.T) {
	data := filepath.Join(t.TempDir(), "d")
	steps := []struct {
		args []string
		code int
		out  string // substring of stdout (or stderr when code != 0)
	}{
		{[]string{"trunk", "add", "carrier", "--address", "192.0.2.1:5070", "--transport", "tcp", "--codecs", "pcma, G722",
			"--caller-id", "+442071230000", "--pai", "--qualify", "0"}, 0, "added trunk carrier (192.0.2.1:5070 over tcp, auth ip)"},
		{[]string{"trunk", "add", "other", "--address", "192.0.2.2", "--media", "zrtp"}, 2, `--media "zrtp": want rtp, srtp or best-effort`},
		{[]string{"trunk", "add", "other", "--address", "192.0.2.2", "--codecs", "PCMU,GSM"}, 2, `--codecs: "GSM" is not a codec the relay carries`},
		{[]string{"trunk", "set", "carrier", "--media", "SRTP", "--codecs", "opus,pcmu", "--channels", "4", "--privacy=false"}, 0, "updated trunk carrier"},
		{[]string{"trunk", "set", "carrier", "--transport", "sctp"}, 2, `--transport "sctp"`},
		{[]string{"trunk", "set", "carrier", "--auth", "register", "--username", "u"}, 2, "--auth register needs --username and --password"},
		{[]string{"trunk", "set", "nobody", "--channels", "1"}, 1, "not found"},
		{[]string{"trunk", "set", "carrier", "--enabled=false"}, 0, "updated trunk carrier"},
		{[]string{"trunk", "set"}, 2, "want 1 argument(s), got 0"},
	}
	for _, s := range steps {
		code, out, errOut := run(t, "", append(s.args, "--data", data)...)
		text := out
		if s.code != 0 {
			text = errOut
		}
		if code != s.code || !strings.Contains(text, s.out) {
			t.Fatalf("kaopu %s: exit %d, output %q/%q; want exit %d and %q", strings.Join(s.args, " "), code, out, errOut, s.code, s.out)
		}
	}

	st, err := sqlite.Open(context.Background(), filepath.Join(data, "kaopu.db"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.GetTrunk(context.Background(), "carrier")
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	// Everything add set and set did not touch is as it was.
	want := store.Trunk{Name: "carrier", Address: "192.0.2.1:5070", Transport: "tcp", Auth: store.TrunkAuthIP, Channels: 4,
		Codecs: []string{"opus", "PCMU"}, Media: store.TrunkMediaSRTP, CallerID: "+442071230000", SendPAI: true,
		HonourPrivacy: false, NumberFormat: "e164", Qualify: 0, Expires: time.Hour, Enabled: false, Created: got.Created,
		TLSVerify: true}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after set:\n got %+v\nwant %+v", got, want)
	}
	_, out, _ := run(t, "", "trunk", "show", "carrier", "--data", data)
	for _, line := range []string{"media:           srtp", "codecs:          opus,PCMU", "honour_privacy:  false", "enabled:         false"} {
		if !strings.Contains(out, line) {
			t.Errorf("trunk show lacks %q:\n%s", line, out)
		}
	}
	if _, out, _ := run(t, "", "trunk", "list", "--data", data); !strings.Contains(out, "MEDIA") || !strings.Contains(out, "tcp        ip    srtp") {
		t.Errorf("trunk list:\n%s", out)
	}
	// A trunk added without --media is plain RTP.
	if code, _, errOut := run(t, "", "trunk", "add", "plain", "--address", "192.0.2.3", "--data", data); code != 0 {
		t.Fatal(errOut)
	}
	if _, out, _ := run(t, "", "trunk", "show", "plain", "--data", data); !strings.Contains(out, "media:           rtp\n") {
		t.Errorf("default media:\n%s", out)
	}
}

// TestTrunkTransportAndTLS: a bare name defaults to transport auto, an
// IP or a port to udp; TLS verification is on unless turned off, and
// --tls-ca stores a PEM bundle (a file without one is refused).
func TestTrunkTransportAndTLS(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "d")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("not a certificate"), 0o644)
	steps := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"trunk", "add", "dns", "--address", "carrier.example"}, 0, "(carrier.example over auto, auth ip)"},
		{[]string{"trunk", "add", "port", "--address", "carrier.example:5070"}, 0, "over udp"},
		{[]string{"trunk", "add", "ip", "--address", "192.0.2.9"}, 0, "over udp"},
		{[]string{"trunk", "add", "sec", "--address", "carrier.example", "--transport", "tls", "--tls-ca", ca}, 0, "over tls"},
		{[]string{"trunk", "add", "lax", "--address", "192.0.2.8", "--transport", "TLS", "--tls-verify=false"}, 0, "over tls"},
		{[]string{"trunk", "add", "bad", "--address", "192.0.2.7", "--transport", "tls", "--tls-ca", junk}, 2, "no PEM certificate"},
		{[]string{"trunk", "add", "bad", "--address", "192.0.2.7", "--tls-ca", filepath.Join(dir, "missing.pem")}, 2, "--tls-ca"},
		{[]string{"trunk", "set", "ip", "--transport", "auto"}, 0, "updated"},
	}
	for _, s := range steps {
		code, out, errOut := run(t, "", append(s.args, "--data", data)...)
		text := out
		if s.code != 0 {
			text = errOut
		}
		if code != s.code || !strings.Contains(text, s.out) {
			t.Fatalf("kaopu %s: exit %d, output %q/%q; want exit %d and %q", strings.Join(s.args, " "), code, out, errOut, s.code, s.out)
		}
	}
	for name, want := range map[string][]string{
		"sec": {"transport:       tls", "tls_verify:      true", "tls_ca:          (1 certificates)"},
		"lax": {"transport:       tls", "tls_verify:      false", "tls_ca:          (system roots)"},
		"ip":  {"transport:       auto"},
	} {
		_, out, _ := run(t, "", "trunk", "show", name, "--data", data)
		for _, line := range want {
			if !strings.Contains(out, line) {
				t.Errorf("trunk show %s lacks %q:\n%s", name, line, out)
			}
		}
	}
}
