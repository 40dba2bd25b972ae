package test

// End-to-end tests of SIP over TLS (issue 5, item 1): connection reuse
// toward phones registered over TLS, sips: URIs, the tls_required
// signalling policy and certificate reload, with raw clients on 127.0.0.1.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kaopu/kaopu/test/harness"
)

// testSDP is a minimal G.711 offer from 127.0.0.1.
const testSDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
	"m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"

// newInvite builds an INVITE from user (over c) to uri, with an SDP offer.
func newInvite(c *harness.Client, uri, user string) *harness.Request {
	r := c.NewRequest("INVITE", uri, user)
	r.Set("To", "<"+uri+">")
	r.Add("Contact", c.ContactURI(user))
	r.Add("Content-Type", "application/sdp")
	r.Body = testSDP
	return r
}

// call sends an authenticated INVITE from user to uri over c and returns
// its final response, having ACKed it (and the 407 before it).
func call(t *testing.T, c *harness.Client, uri, user, password string) *harness.Message {
	t.Helper()
	req := newInvite(c, uri, user)
	res, err := c.DoAuth(req, user, password, []string{"MD5"}, 15*time.Second)
	if err != nil {
		t.Fatalf("INVITE %s over %s: %v", uri, c.Transport, err)
	}
	// ACK the 407 and a failure (ackFor: e2e_security_test.go).
	if res.Challenge != nil {
		c.Send(ackFor(req, res.Challenge))
	}
	if res.Sent != nil && res.Final.StatusCode() >= 300 {
		c.Send(ackFor(res.Sent, res.Final))
	}
	return res.Final
}

// response builds the response code/reason to a request received by a raw
// client (Via, From, To with a tag, Call-ID and CSeq copied).
func response(req *harness.Message, code int, reason string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", code, reason)
	for _, v := range req.Values("Via") {
		fmt.Fprintf(&b, "Via: %s\r\n", v)
	}
	fmt.Fprintf(&b, "From: %s\r\nTo: %s;tag=%s\r\nCall-ID: %s\r\nCSeq: %s\r\nContent-Length: 0\r\n\r\n",
		req.Get("From"), req.Get("To"), harness.RandomToken(), req.Get("Call-ID"), req.Get("CSeq"))
	return []byte(b.String())
}

// awaitInvite reads from c until an INVITE arrives (skipping anything
// else, e.g. ACKs of earlier calls) and answers it with code.
func awaitInvite(t *testing.T, c *harness.Client, code int, reason string) *harness.Message {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		m, err := c.Read(time.Until(deadline))
		if err != nil {
			t.Fatalf("callee over %s waiting for the INVITE: %v", c.Transport, err)
		}
		if m.IsResponse() || !strings.HasPrefix(m.StartLine, "INVITE ") {
			continue
		}
		if err := c.Send(response(m, code, reason)); err != nil {
			t.Fatalf("answering the INVITE: %v", err)
		}
		return m
	}
	t.Fatal("no INVITE within 10s")
	return nil
}

// selfSigned makes a TLS certificate for 127.0.0.1 with common name cn.
func selfSigned(t *testing.T, cn string, serial int64) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// TestTLSPhoneReachedOverItsConnection: a phone registered over TLS gets
// its calls over the very TLS connection it registered on (it could be
// behind NAT); once that connection is closed, a new TLS connection goes to
// its Contact address; when nothing listens there either, the caller gets
// 480.
func TestTLSPhoneReachedOverItsConnection(t *testing.T) {
	srv := harness.StartServer(t, harness.ServerOptions{Config: sippConfig})
	harness.AddUser(t, srv.DataDir, "alice", "alice-secret-1", "1001")
	harness.AddUser(t, srv.DataDir, "bob", "bob-secret-2", "1002")

	alice := harness.Dial(t, "tls", srv.SIPSAddr())
	// The Contact names a port where alice listens for TLS only later in
	// the test: the first calls must not go there.
	listenPort := harness.FreePort(t, "tcp")
	contact := fmt.Sprintf("<sip:alice@127.0.0.1:%d;transport=tls>", listenPort)
	register(t, alice, "alice", "alice-secret-1", contact, 300, 200)
	if _, err := waitBindingLog(srv, 5*time.Second, "binding added", "alice"); err != nil {
		t.Fatal(err)
	}

	bob := harness.Dial(t, "udp", srv.SIPAddr())
	done := make(chan *harness.Message, 1)
	go func() { done <- call(t, bob, "sip:alice@"+srv.Domain, "bob", "bob-secret-2") }()
	inv := awaitInvite(t, alice, 486, "Busy Here")
	if via := inv.Get("Via"); !strings.HasPrefix(via, "SIP/2.0/TLS ") {
		t.Errorf("INVITE on alice's connection has Via %q, want SIP/2.0/TLS", via)
	}
	if c := inv.Get("Contact"); !strings.Contains(c, fmt.Sprintf(":%d;transport=tls", srv.SIPSPort)) {
		t.Errorf("INVITE Contact %q, want the TLS listener (port %d, transport=tls)", c, srv.SIPSPort)
	}
	if res := <-done; res.StatusCode() != 486 {
		t.Fatalf("caller got %q, want the callee's 486", res.Status())
	}

	// The registered connection goes away; alice now listens on her
	// Contact's port (a phone on a LAN).
	alice.Conn().Close()
	certPEM, keyPEM := selfSigned(t, "alice-phone", 42)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", listenPort), &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	go func() { done <- call(t, bob, "sip:alice@"+srv.Domain, "bob", "bob-secret-2") }()
	var conn net.Conn
	select {
	case conn = <-accepted:
	case <-time.After(15 * time.Second):
		t.Fatal("no new TLS connection to the Contact address after the registered one closed")
	}
	defer conn.Close()
	lan := harness.WrapConn(conn, "TLS")
	inv = awaitInvite(t, lan, 486, "Busy Here")
	if want := fmt.Sprintf("INVITE sip:alice@127.0.0.1:%d;transport=tls ", listenPort); !strings.HasPrefix(inv.StartLine, want) {
		t.Errorf("INVITE on the new connection: %q, want %q...", inv.StartLine, want)
	}
	if tc := conn.(*tls.Conn).ConnectionState(); tc.Version < tls.VersionTLS12 {
		t.Errorf("new connection negotiated TLS version %x", tc.Version)
	}
	if res := <-done; res.StatusCode() != 486 {
		t.Fatalf("caller got %q over the new connection, want 486", res.Status())
	}

	// Neither the registered connection nor the Contact: 480.
	ln.Close()
	conn.Close()
	if res := call(t, bob, "sip:alice@"+srv.Domain, "bob", "bob-secret-2"); res.StatusCode() != 480 {
		t.Fatalf("callee unreachable over TLS: caller got %q, want 480", res.Status())
	}
}

// TestTLSSIPS: a sips: call is delivered over TLS only, with a sips:
// Contact; a callee with only a UDP binding gives 480 with Warning 380; a
// sips: INVITE over UDP is refused; a sips: Contact registers over TLS
// only.
func TestTLSSIPS(t *testing.T) {
	srv := harness.StartServer(t, harness.ServerOptions{Config: sippConfig})
	harness.AddUser(t, srv.DataDir, "alice", "alice-secret-1", "1001")
	harness.AddUser(t, srv.DataDir, "bob", "bob-secret-2", "1002")
	harness.AddUser(t, srv.DataDir, "carol", "carol-secret-3", "1003")

	alice := harness.Dial(t, "tls", srv.SIPSAddr())
	register(t, alice, "alice", "alice-secret-1", "<sips:alice@"+alice.LocalAddr()+">", 300, 200)
	carol := harness.Dial(t, "udp", srv.SIPAddr())
	register(t, carol, "carol", "carol-secret-3", "<"+carol.ContactURI("carol")+">", 300, 200)
	// A sips: Contact over plain UDP is refused.
	sipsOverUDP := harness.Dial(t, "udp", srv.SIPAddr())
	register(t, sipsOverUDP, "carol", "carol-secret-3", "<sips:carol@"+sipsOverUDP.LocalAddr()+">", 300, 403)

	bob := harness.Dial(t, "tls", srv.SIPSAddr())
	done := make(chan *harness.Message, 1)
	go func() { done <- call(t, bob, "sips:alice@"+srv.Domain, "bob", "bob-secret-2") }()
	inv := awaitInvite(t, alice, 486, "Busy Here")
	if c := harness.ContactURI(inv.Get("Contact")); !strings.HasPrefix(c, "sips:") ||
		!strings.HasSuffix(c, fmt.Sprintf(":%d", srv.SIPSPort)) {
		t.Errorf("sips: leg INVITE Contact %q, want sips: on the TLS port %d", c, srv.SIPSPort)
	}
	if !strings.HasPrefix(inv.StartLine, "INVITE sips:") {
		t.Errorf("INVITE to a sips: Contact has Request-URI %q", inv.StartLine)
	}
	if res := <-done; res.StatusCode() != 486 {
		t.Fatalf("sips: call: caller got %q, want 486", res.Status())
	}

	res := call(t, bob, "sips:carol@"+srv.Domain, "bob", "bob-secret-2")
	if res.StatusCode() != 480 || !strings.Contains(res.Get("Warning"), "380") {
		t.Fatalf("sips: call to a UDP-only callee: %q Warning %q, want 480 with Warning 380", res.Status(), res.Get("Warning"))
	}
	if m, err := carol.Read(time.Second); err == nil && strings.HasPrefix(m.StartLine, "INVITE ") {
		t.Fatal("a sips: call reached a UDP binding")
	}

	bobUDP := harness.Dial(t, "udp", srv.SIPAddr())
	if res := call(t, bobUDP, "sips:alice@"+srv.Domain, "bob", "bob-secret-2"); res.StatusCode() != 403 {
		t.Fatalf("sips: INVITE over UDP: %q, want 403", res.Status())
	}
}

// TestTLSRequiredSignalling: with security.signalling tls_required, users
// over UDP get exactly the answers of an ordinary server until they prove
// their password, then 403 "TLS required"; over TLS they register and call.
func TestTLSRequiredSignalling(t *testing.T) {
	srv := harness.StartServer(t, harness.ServerOptions{Config: sippConfig + "security:\n  signalling: tls_required\n"})
	harness.AddUser(t, srv.DataDir, "alice", "alice-secret-1", "1001")
	harness.AddUser(t, srv.DataDir, "bob", "bob-secret-2", "1002")

	udp := harness.Dial(t, "udp", srv.SIPAddr())
	contact := "<" + udp.ContactURI("alice") + ">"
	res, err := udp.DoAuth(udp.NewRegister("alice", contact, 300), "alice", "wrong-password", nil, sipTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if res.Challenge == nil || res.Final.StatusCode() != 401 {
		t.Fatalf("wrong password over UDP: %q, want 401 as for any failed authentication", res.Final.Status())
	}
	fin := register(t, udp, "alice", "alice-secret-1", contact, 300, 403)
	if fin.Reason() != "TLS required" {
		t.Fatalf("right password over UDP: %q, want 403 TLS required", fin.Status())
	}
	tcp := harness.Dial(t, "tcp", srv.SIPAddr())
	register(t, tcp, "alice", "alice-secret-1", "<"+tcp.ContactURI("alice")+">", 300, 403)

	alice := harness.Dial(t, "tls", srv.SIPSAddr())
	register(t, alice, "alice", "alice-secret-1", "<"+alice.ContactURI("alice")+">", 300, 200)

	bobUDP := harness.Dial(t, "udp", srv.SIPAddr())
	if res := call(t, bobUDP, "sip:alice@"+srv.Domain, "bob", "bob-secret-2"); res.StatusCode() != 403 || res.Reason() != "TLS required" {
		t.Fatalf("INVITE over UDP: %q, want 403 TLS required", res.Status())
	}
	bob := harness.Dial(t, "tls", srv.SIPSAddr())
	done := make(chan *harness.Message, 1)
	go func() { done <- call(t, bob, "sip:alice@"+srv.Domain, "bob", "bob-secret-2") }()
	awaitInvite(t, alice, 486, "Busy Here")
	if res := <-done; res.StatusCode() != 486 {
		t.Fatalf("INVITE over TLS: %q, want the callee's 486", res.Status())
	}
	if _, err := srv.WaitLog(time.Second, `register refused: TLS required.*user=alice.*transport=UDP`); err != nil {
		t.Error(err)
	}

	// A user's own policy wins over the server's: dave may use UDP.
	if out, code := harness.RunCLI(t, "user", "add", "dave", "--password", "dave-secret-4", "--signalling", "any",
		"--data", srv.DataDir); code != 0 {
		t.Fatalf("kaopu user add dave --signalling any: exit %d\n%s", code, out)
	}
	dave := harness.Dial(t, "udp", srv.SIPAddr())
	if res := registerWithin(t, dave, "dave", "dave-secret-4", 5*time.Second, 200); res.StatusCode() != 200 {
		t.Fatalf("dave (signalling any) over UDP under tls_required: %q, want 200", res.Status())
	}
}

// registerWithin registers user over c until the answer is want or d has
// passed (the server takes up users and policies added while it runs
// within about a second), and returns the last answer.
func registerWithin(t *testing.T, c *harness.Client, user, password string, d time.Duration, want int) *harness.Message {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		res, err := c.DoAuth(c.NewRegister(user, "<"+c.ContactURI(user)+">", 300), user, password, nil, sipTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if res.Final.StatusCode() == want || time.Now().After(deadline) {
			return res.Final
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestTLSRequiredPerUser: on a server that allows any transport, a user
// set to tls_required (kaopu user set --signalling) is refused over UDP
// after authenticating, and registers over TLS; others are unaffected.
func TestTLSRequiredPerUser(t *testing.T) {
	srv := harness.StartServer(t, harness.ServerOptions{Config: sippConfig})
	harness.AddUser(t, srv.DataDir, "alice", "alice-secret-1", "1001")
	harness.AddUser(t, srv.DataDir, "bob", "bob-secret-2", "1002")
	if out, code := harness.RunCLI(t, "user", "set", "alice", "--signalling", "tls_required", "--data", srv.DataDir); code != 0 {
		t.Fatalf("kaopu user set alice --signalling tls_required: exit %d\n%s", code, out)
	}
	udp := harness.Dial(t, "udp", srv.SIPAddr())
	if res := registerWithin(t, udp, "alice", "alice-secret-1", 5*time.Second, 403); res.Reason() != "TLS required" {
		t.Fatalf("alice (tls_required) over UDP: %q, want 403 TLS required", res.Status())
	}
	tlsc := harness.Dial(t, "tls", srv.SIPSAddr())
	register(t, tlsc, "alice", "alice-secret-1", "<"+tlsc.ContactURI("alice")+">", 300, 200)
	bob := harness.Dial(t, "udp", srv.SIPAddr())
	register(t, bob, "bob", "bob-secret-2", "<"+bob.ContactURI("bob")+">", 300, 200)
}

// TestTLSCertificateReload: replacing the configured certificate and key
// files while the server runs changes what new TLS connections see; a
// broken file keeps the certificate in use and logs an error naming it.
func TestTLSCertificateReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	write := func(cert, key []byte) {
		t.Helper()
		for path, data := range map[string][]byte{certFile: cert, keyFile: key} {
			if err := os.WriteFile(path+".new", data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(path+".new", path); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(selfSigned(t, "first.kaopu.test", 1001))
	srv := harness.StartServer(t, harness.ServerOptions{
		Config: fmt.Sprintf("sip:\n  tls_cert: %s\n  tls_key: %s\n", certFile, keyFile)})
	served := func() *x509.Certificate {
		t.Helper()
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", srv.SIPSAddr(),
			&tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0]
	}
	if c := served(); c.Subject.CommonName != "first.kaopu.test" || c.SerialNumber.Int64() != 1001 {
		t.Fatalf("first certificate: CN %q serial %v", c.Subject.CommonName, c.SerialNumber)
	}
	write(selfSigned(t, "second.kaopu.test", 2002))
	waitCN := func(want string) *x509.Certificate {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			c := served()
			if c.Subject.CommonName == want {
				return c
			}
			if time.Now().After(deadline) {
				t.Fatalf("server still presents CN %q 5s after the files changed, want %q", c.Subject.CommonName, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if c := waitCN("second.kaopu.test"); c.SerialNumber.Int64() != 2002 {
		t.Fatalf("second certificate serial %v, want 2002", c.SerialNumber)
	}

	// A truncated certificate: the second one stays in use.
	good, _ := os.ReadFile(certFile)
	if err := os.WriteFile(certFile, good[:len(good)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	// The files are looked at during a handshake, at most once a second.
	time.Sleep(1200 * time.Millisecond)
	served()
	if _, err := srv.WaitLog(3*time.Second, `level=ERROR.*TLS certificate not reloaded.*`+regexp.QuoteMeta(certFile)); err != nil {
		t.Fatal(err)
	}
	if c := served(); c.Subject.CommonName != "second.kaopu.test" {
		t.Fatalf("after a broken file the server presents CN %q, want the previous second.kaopu.test", c.Subject.CommonName)
	}
	// TLS still works for SIP.
	c := harness.Dial(t, "tls", srv.SIPSAddr())
	requireOptions200(t, srv, c)
}
