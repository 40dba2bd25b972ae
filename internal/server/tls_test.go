package server

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// writePair writes a self-signed certificate with common name cn and
// serial to dir/cert.pem and dir/key.pem.
func writePair(t *testing.T, dir, cn string, serial int64) (certFile, keyFile string) {
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
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	// Write then rename, as certificate tools do, so a reader never sees
	// half a file.
	for path, data := range map[string][]byte{
		certFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyFile:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}),
	} {
		if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

// lockedBuffer collects log output written from handshake goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// tlsListener serves handshakes with conf on loopback until the test ends.
func tlsListener(t *testing.T, conf *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				c.(*tls.Conn).Handshake()
				c.Read(make([]byte, 1)) // until the client closes
			}()
		}
	}()
	return ln.Addr().String()
}

func handshake(addr string, conf *tls.Config) (tls.ConnectionState, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: conf}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState(), nil
}

// TestTLSVersionsAndSuites: TLS 1.3 and TLS 1.2 with ECDHE and an AEAD
// cipher are accepted; TLS 1.0/1.1, CBC suites and static-RSA key
// exchange are refused.
func TestTLSVersionsAndSuites(t *testing.T) {
	certFile, keyFile := writePair(t, t.TempDir(), "kaopu.test", 1)
	certs, err := newCertReloader(certFile, keyFile, slog.New(slog.DiscardHandler), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	addr := tlsListener(t, tlsConfig(certs))
	for _, tc := range []struct {
		name     string
		min, max uint16
		suites   []uint16
		ok       bool
	}{
		{"TLS 1.3", tls.VersionTLS13, tls.VersionTLS13, nil, true},
		{"TLS 1.2 ECDHE AES-GCM", tls.VersionTLS12, tls.VersionTLS12, []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, true},
		{"TLS 1.2 ECDHE ChaCha20-Poly1305", tls.VersionTLS12, tls.VersionTLS12, []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305}, true},
		{"TLS 1.2 ECDHE AES-CBC", tls.VersionTLS12, tls.VersionTLS12, []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}, false},
		{"TLS 1.2 static RSA AES-GCM", tls.VersionTLS12, tls.VersionTLS12, []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}, false},
		{"TLS 1.1", tls.VersionTLS10, tls.VersionTLS11, nil, false},
		{"TLS 1.0", tls.VersionTLS10, tls.VersionTLS10, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, err := handshake(addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tc.min, MaxVersion: tc.max, CipherSuites: tc.suites})
			if tc.ok && err != nil {
				t.Fatalf("handshake refused: %v", err)
			}
			if !tc.ok && err == nil {
				t.Fatalf("handshake accepted: version %x suite %s", cs.Version, tls.CipherSuiteName(cs.CipherSuite))
			}
		})
	}
}

// TestCertReload: replacing the certificate and key files is seen by the
// next handshake once the check interval has passed; a broken file keeps
// the previous certificate and logs an error naming the file; a later good
// pair is taken up again.
func TestCertReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writePair(t, dir, "first.kaopu.test", 101)
	var logs lockedBuffer
	var mu sync.Mutex
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	certs, err := newCertReloader(certFile, keyFile, slog.New(slog.NewTextHandler(&logs, nil)), clock)
	if err != nil {
		t.Fatal(err)
	}
	addr := tlsListener(t, tlsConfig(certs))
	served := func() (string, int64) {
		t.Helper()
		cs, err := handshake(addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		leaf := cs.PeerCertificates[0]
		return leaf.Subject.CommonName, leaf.SerialNumber.Int64()
	}
	if cn, serial := served(); cn != "first.kaopu.test" || serial != 101 {
		t.Fatalf("first certificate: CN %q serial %d", cn, serial)
	}

	writePair(t, dir, "second.kaopu.test", 202)
	// Within the check interval the cached certificate is served.
	if cn, _ := served(); cn != "first.kaopu.test" {
		t.Fatalf("files looked at again within the check interval: CN %q", cn)
	}
	advance(2 * time.Second)
	if cn, serial := served(); cn != "second.kaopu.test" || serial != 202 {
		t.Fatalf("after replacing the files: CN %q serial %d, want second.kaopu.test 202", cn, serial)
	}

	// A broken certificate file: the second one stays, and the log says
	// which file failed.
	if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	advance(2 * time.Second)
	if cn, _ := served(); cn != "second.kaopu.test" {
		t.Fatalf("broken file replaced the certificate in use: CN %q", cn)
	}
	if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, certFile) {
		t.Fatalf("no error naming %s in the log:\n%s", certFile, l)
	}
	// Reported once, not at every handshake.
	advance(2 * time.Second)
	served()
	if n := strings.Count(logs.String(), "level=ERROR"); n != 1 {
		t.Fatalf("broken file reported %d times, want once", n)
	}

	// A missing key file, then a good pair again.
	os.Remove(keyFile)
	if err := certs.Reload(); err == nil || !strings.Contains(err.Error(), keyFile) {
		t.Fatalf("Reload with no key file: %v, want an error naming %s", err, keyFile)
	}
	writePair(t, dir, "third.kaopu.test", 303)
	if err := certs.Reload(); err != nil {
		t.Fatal(err)
	}
	if cn, serial := served(); cn != "third.kaopu.test" || serial != 303 {
		t.Fatalf("after a good pair again: CN %q serial %d", cn, serial)
	}
}

// TestNewCertReloaderFails: a pair that does not load at start-up is an
// error naming the file, not a server without a certificate.
func TestNewCertReloaderFails(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writePair(t, dir, "x", 1)
	os.WriteFile(keyFile, []byte("garbage"), 0o600)
	_, err := newCertReloader(certFile, keyFile, slog.New(slog.DiscardHandler), time.Now)
	if err == nil || !strings.Contains(err.Error(), keyFile) {
		t.Fatalf("err = %v, want one naming %s", err, keyFile)
	}
}

// TestVerifyPeer: a peer dialled by IP address (a phone's Contact) is not
// verified; one dialled by name must chain to a trusted root for that name.
func TestVerifyPeer(t *testing.T) {
	certFile, _ := writePair(t, t.TempDir(), "phone.example", 7)
	b, _ := os.ReadFile(certFile)
	blk, _ := pem.Decode(b)
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyPeer(tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}); err != nil {
		t.Errorf("peer dialled by IP: %v", err)
	}
	if err := verifyPeer(tls.ConnectionState{ServerName: "phone.example", PeerCertificates: []*x509.Certificate{leaf}}); err == nil {
		t.Error("self-signed certificate accepted for a peer dialled by name")
	}
}
