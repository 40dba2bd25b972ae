//go:build linux

package test

// End-to-end tests of trunks named by DNS (RFC 3263) and of verified TLS
// toward carriers. The messages name made-up hosts (carrier.test), so
// everything runs inside a network namespace with only lo up, with a DNS
// server the test runs:
//
//	TestTrunkNAPTR:     carrier.test NAPTR SIP+D2U -> _sip._udp.carrier.test
//	                    SRV 0 a.carrier.test (127.0.0.3), 1 b.carrier.test (127.0.0.4)
//	TestTrunkTLSVerify: carrier.test and wrong.test A 127.0.0.3, a kaopu
//	                    whose certificate (for carrier.test) a test CA signed

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kaopu/kaopu/test/harness"
)

// sippInBackground runs sipp with args inside ns in the background; wait
// returns its result.
func sippInBackground(t *testing.T, ns *harness.Netns, args ...string) (wait func() *harness.SippResult) {
	t.Helper()
	done := make(chan *harness.SippResult, 1)
	go func() { done <- harness.SippIn(t, ns, append(args, "-timeout", "20s")...) }()
	time.Sleep(300 * time.Millisecond) // sipp binds its port before it reads
	return func() *harness.SippResult {
		select {
		case r := <-done:
			return r
		case <-time.After(40 * time.Second):
			t.Fatal("carrier sipp did not finish")
			return nil
		}
	}
}

// TestTrunkNAPTR: a trunk named only by its domain (transport auto).
// kaopu finds its servers by NAPTR, then SRV: a.carrier.test first, which
// answers 503 (or is dead), then b.carrier.test, which answers; the call
// connects through the second server of the same trunk, and the log says
// why the first was left.
func TestTrunkNAPTR(t *testing.T) {
	ns := harness.StartNetns(t)
	const portA, portB = 5070, 5080
	dns := harness.StartDNS(t, ns, harness.DNSZone{
		NAPTR: map[string][]harness.NAPTR{"carrier.test": {
			{Order: 10, Preference: 10, Flags: "s", Service: "SIP+D2U", Replacement: "_sip._udp.carrier.test"},
			// A transport kaopu does not have: skipped.
			{Order: 5, Preference: 10, Flags: "s", Service: "SIP+D2S", Replacement: "_sip._sctp.carrier.test"},
		}},
		SRV: map[string][]net.SRV{"_sip._udp.carrier.test": {
			{Target: "a.carrier.test", Port: portA, Priority: 0, Weight: 10},
			{Target: "b.carrier.test", Port: portB, Priority: 1, Weight: 10},
		}},
		A: map[string][]netip.Addr{
			"a.carrier.test": {netip.MustParseAddr("127.0.0.3")},
			"b.carrier.test": {netip.MustParseAddr("127.0.0.4")},
		},
	})
	srv := harness.StartServer(t, harness.ServerOptions{Config: trunkConfig + "rtp:\n  ports: 30000-30098\n",
		Netns: ns, IP: "127.0.0.2", SIPPort: 5060})
	harness.AddUser(t, srv.DataDir, "alice", "alice-secret-1", "1001")
	if out := cli(t, srv, "trunk", "add", "carrier", "--address", "carrier.test", "--qualify", "0"); !strings.Contains(out, "over auto") {
		t.Fatalf("trunk add without --transport: %q, want transport auto", out)
	}
	cli(t, srv, "route", "add", "uk", "--pattern", "_0[1-9]X.", "--trunks", "carrier")
	if _, err := srv.WaitLog(10*time.Second, `msg="trunk address resolved" trunk=carrier .*UDP:127.0.0.3:5070 UDP:127.0.0.4:5080`); err != nil {
		t.Fatal(err)
	}
	if q := dns.Queries(); !slices.Contains(q, "NAPTR carrier.test.") || !slices.Contains(q, "SRV _sip._udp.carrier.test.") ||
		slices.Contains(q, "SRV _sip._sctp.carrier.test.") {
		t.Fatalf("DNS queries %q: want NAPTR then the UDP SRV (and not the SCTP one)", q)
	}
	call := func(t *testing.T) {
		t.Helper()
		r := harness.SippIn(t, ns, srv.SIPAddr(), "-sf", harness.Scenario(t, "uac_auth.xml"), "-s", "02079460000",
			"-au", "alice", "-ap", "alice-secret-1", "-key", "caller", "alice", "-auth_uri", srv.Domain, "-timeout", "25s")
		if r.ExitCode != 0 {
			t.Fatalf("caller: exit %d, want 0 (answered by b.carrier.test)\n%s", r.ExitCode, r.Errors)
		}
	}

	t.Run("first server 503", func(t *testing.T) {
		waitA := sippInBackground(t, ns, "-i", "127.0.0.3", "-p", fmt.Sprint(portA), "-sf", rejectingCallee(t, 503, "Service Unavailable"))
		waitB := sippInBackground(t, ns, "-i", "127.0.0.4", "-p", fmt.Sprint(portB), "-sn", "uas")
		call(t)
		a, b := waitA(), waitB()
		if a.ExitCode != 0 || b.ExitCode != 0 {
			t.Fatalf("servers: a exit %d, b exit %d\n%s\n%s", a.ExitCode, b.ExitCode, a.Errors, b.Errors)
		}
		for name, res := range map[string]*harness.SippResult{"a": a, "b": b} {
			// The Request-URI names the trunk's domain, not the server.
			if inv := receivedInvite(t, res); !strings.HasPrefix(inv.StartLine, "INVITE sip:+442079460000@carrier.test SIP/2.0") {
				t.Errorf("server %s got %q", name, inv.StartLine)
			}
		}
		if _, err := srv.WaitLog(5*time.Second, `msg="trunk server failed; trying the next" .*trunk=carrier server=UDP:127.0.0.3:5070 status=503 .*next=UDP:127.0.0.4:5080`); err != nil {
			t.Fatal(err)
		}
		if c := lastCDR(t, srv); c.Disposition != "ANSWERED" {
			t.Errorf("CDR %+v, want ANSWERED", c)
		}
	})

	t.Run("first server dead", func(t *testing.T) {
		waitB := sippInBackground(t, ns, "-i", "127.0.0.4", "-p", fmt.Sprint(portB), "-sn", "uas")
		call(t)
		if b := waitB(); b.ExitCode != 0 {
			t.Fatalf("server b: exit %d\n%s", b.ExitCode, b.Errors)
		}
		if _, err := srv.WaitLog(5*time.Second, `msg="trunk server failed; trying the next" .*server=UDP:127.0.0.3:5070 status=0 silent=true`); err != nil {
			t.Fatal(err)
		}
	})
}

// testPKI is a test CA and certificates it signs, as PEM files in dir.
type testPKI struct {
	dir    string
	caFile string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir()}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kaopu test CA"},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p.ca, _ = x509.ParseCertificate(der)
	p.caKey = key
	p.caFile = p.write(t, "ca.pem", "CERTIFICATE", der)
	return p
}

func (p *testPKI) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	f := filepath.Join(p.dir, name)
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// issue makes a server certificate for name; it returns the cert and key files.
func (p *testPKI) issue(t *testing.T, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return p.write(t, name+".pem", "CERTIFICATE", der), p.write(t, name+".key", "EC PRIVATE KEY", kder)
}

// TestTrunkTLSVerify: kaopu A calls the phone network through kaopu B (the
// carrier, carrier.test) over TLS. B's certificate is for carrier.test,
// signed by a test CA. With --tls-ca CA the call goes through; a trunk
// that expects another name (wrong.test, same server) fails verification
// and the route fails over to the good one; a trunk without the CA (the
// system's roots) cannot be verified either, and the caller gets 503. Each refusal is logged
// with its reason.
func TestTrunkTLSVerify(t *testing.T) {
	ns := harness.StartNetns(t)
	harness.StartDNS(t, ns, harness.DNSZone{A: map[string][]netip.Addr{
		"carrier.test": {netip.MustParseAddr("127.0.0.3")},
		"wrong.test":   {netip.MustParseAddr("127.0.0.3")},
	}})
	pki := newTestPKI(t)
	cert, key := pki.issue(t, "carrier.test")
	a := harness.StartServer(t, harness.ServerOptions{Config: trunkConfig + "rtp:\n  ports: 30000-30098\n",
		Netns: ns, IP: "127.0.0.2", SIPPort: 5060})
	b := harness.StartServer(t, harness.ServerOptions{Config: trunkConfig + "rtp:\n  ports: 30100-30198\n" +
		fmt.Sprintf("sip:\n  tls_cert: %s\n  tls_key: %s\n", cert, key), Netns: ns, IP: "127.0.0.3", SIPPort: 5060})
	harness.AddUser(t, a.DataDir, "alice", "alice-secret-1", "1001")
	harness.AddUser(t, b.DataDir, "bob", "bob-secret-2", "1002")
	// B: A is a carrier known by its address; +442071230002 is bob's.
	cli(t, b, "trunk", "add", "a", "--address", a.SIPAddr(), "--qualify", "0")
	cli(t, b, "did", "add", "+442071230002", "--to", "bob")
	sips := fmt.Sprint(b.SIPSPort)
	cli(t, a, "trunk", "add", "good", "--address", "carrier.test:"+sips, "--transport", "tls", "--tls-ca", pki.caFile, "--qualify", "0")
	cli(t, a, "trunk", "add", "wrong", "--address", "wrong.test:"+sips, "--transport", "tls", "--tls-ca", pki.caFile, "--qualify", "0")
	cli(t, a, "trunk", "add", "noca", "--address", "carrier.test:"+sips, "--transport", "tls", "--qualify", "0")
	if out := cli(t, a, "trunk", "show", "good"); !strings.Contains(out, "tls_verify:      true") || !strings.Contains(out, "(1 certificates)") {
		t.Fatalf("trunk show good:\n%s", out)
	}
	cli(t, a, "route", "add", "uk", "--pattern", "_0[1-9]X.", "--trunks", "wrong,good")
	cli(t, a, "route", "add", "short", "--pattern", "9", "--strip", "1", "--trunks", "noca", "--priority", "10")
	for _, name := range []string{"good", "wrong", "noca"} {
		if _, err := a.WaitLog(10*time.Second, `msg="trunk address resolved" trunk=`+name+` `); err != nil {
			t.Fatal(err)
		}
	}
	bobPort := 5090
	reg := harness.SippIn(t, ns, b.SIPAddr(), "-sf", harness.Scenario(t, "register.xml"), "-s", "bob", "-ap", "bob-secret-2",
		"-auth_uri", b.Domain, "-key", "expires", "600", "-i", "127.0.0.5", "-p", fmt.Sprint(bobPort))
	if reg.ExitCode != 0 {
		t.Fatalf("bob's registration: exit %d\n%s", reg.ExitCode, reg.Errors)
	}
	call := func(t *testing.T, dialed string, scenario string) *harness.SippResult {
		return harness.SippIn(t, ns, a.SIPAddr(), "-sf", scenario, "-s", dialed,
			"-au", "alice", "-ap", "alice-secret-1", "-key", "caller", "alice", "-auth_uri", a.Domain, "-timeout", "20s")
	}

	t.Run("verified, after a wrong name", func(t *testing.T) {
		wait := sippInBackground(t, ns, "-i", "127.0.0.5", "-p", fmt.Sprint(bobPort), "-sn", "uas")
		if r := call(t, "02071230002", harness.Scenario(t, "uac_auth.xml")); r.ExitCode != 0 {
			t.Fatalf("alice: exit %d, want 0 (answered by bob through trunk good)\n%s", r.ExitCode, r.Errors)
		}
		if u := wait(); u.ExitCode != 0 {
			t.Fatalf("bob: exit %d\n%s", u.ExitCode, u.Errors)
		}
		if _, err := a.WaitLog(5*time.Second, `msg="trunk TLS certificate not accepted" trunk=wrong server=127.0.0.3:`+sips+
			` expected_name=wrong.test own_ca=true error=".*valid for carrier.test, not wrong.test`); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`msg="trunk failed; trying the next" .*trunk=wrong`, `msg="calling through trunk" .*trunk=good`} {
			if _, err := a.WaitLog(5*time.Second, want); err != nil {
				t.Fatal(err)
			}
		}
		if c := lastCDR(t, a); c.Disposition != "ANSWERED" {
			t.Errorf("A's CDR %+v, want ANSWERED", c)
		}
	})

	t.Run("no CA", func(t *testing.T) {
		// Whether on the connection good opened (checked again for noca)
		// or on a new one, the system's roots do not know the test CA.
		if r := call(t, "902071230002", failingCaller(t, 503)); r.ExitCode != 0 {
			t.Fatalf("alice: exit %d, want 503\n%s", r.ExitCode, r.Errors)
		}
		if _, err := a.WaitLog(5*time.Second, `msg="trunk TLS certificate not accepted" trunk=noca .*expected_name=carrier.test own_ca=false error=".*unknown authority`); err != nil {
			t.Fatal(err)
		}
	})
}
