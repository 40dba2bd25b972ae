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
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ensureCert returns cert/key paths, generating a self-signed ECDSA P-256
// certificate for domain in dir when none exists yet.
func ensureCert(dir, domain string) (certFile, keyFile string, created bool, err error) {
	certFile = filepath.Join(dir, "tls", "cert.pem")
	keyFile = filepath.Join(dir, "tls", "key.pem")
	if _, err := os.Stat(certFile); err == nil {
		return certFile, keyFile, false, nil
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return "", "", false, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", false, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: domain, Organization: []string{"kaopu self-signed"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(5, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	if ip := net.ParseIP(domain); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{domain}
	}
	tmpl.IPAddresses = append(tmpl.IPAddresses, net.IPv4(127, 0, 0, 1), net.IPv6loopback)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", false, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", false, err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return "", "", false, err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", false, err
	}
	return certFile, keyFile, true, nil
}

// tlsSuites are the TLS 1.2 cipher suites accepted: forward secrecy
// (ECDHE) and an AEAD cipher only. TLS 1.3 suites are all of that kind and
// are not configurable in crypto/tls.
var tlsSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,
}

// tlsConfig serves the certificate the reloader holds and allows TLS 1.2+
// with modern suites only.
func tlsConfig(certs *certReloader) *tls.Config {
	return &tls.Config{
		GetCertificate: certs.GetCertificate,
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   tlsSuites,
	}
}

// clientTLSConfig is used when we open a TLS connection ourselves: to a
// phone whose registered TLS connection is gone (its own connection is
// preferred; see route). Phones present self-signed certificates and are
// reached by the IP address of their Contact, so a peer named by an IP
// address is not verified (the phone proved who it is with digest auth
// when it registered; TLS still keeps the call's signalling private). A
// peer named by a host name is verified against the system roots.
func clientTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: tlsSuites,
		// Verification is done by verifyPeer, which knows whether the
		// peer was named by a host name.
		InsecureSkipVerify: true,
		VerifyConnection:   verifyPeer,
	}
}

// verifyPeer checks a server certificate chain against the system roots
// and the host name we dialled; a peer dialled by IP address (no SNI, so
// ServerName is empty) is accepted as it is.
func verifyPeer(cs tls.ConnectionState) error {
	if cs.ServerName == "" || net.ParseIP(cs.ServerName) != nil {
		return nil
	}
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: peer sent no certificate")
	}
	opts := x509.VerifyOptions{DNSName: cs.ServerName, Intermediates: x509.NewCertPool()}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(opts)
	return err
}

// certReloader hands TLS handshakes the certificate in certFile/keyFile,
// and reads the files again when their modification time or size has
// changed (looked at, at most, once per checkEvery), so a renewed
// certificate is served without a restart. A pair that does not load
// keeps the previous certificate in service and logs an error naming the
// file.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	now               func() time.Time
	checkEvery        time.Duration

	mu        sync.Mutex
	cert      *tls.Certificate
	stamp     [2]fileStamp // of certFile and keyFile when last read
	nextCheck time.Time
}

// fileStamp is what tells that a file changed.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.ModTime(), fi.Size()}, nil
}

// newCertReloader loads the pair; it fails when the first load does.
func newCertReloader(certFile, keyFile string, log *slog.Logger, now func() time.Time) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log, now: now, checkEvery: time.Second}
	cs, _ := stampOf(certFile)
	ks, _ := stampOf(keyFile)
	cert, err := loadPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	r.cert, r.stamp, r.nextCheck = cert, [2]fileStamp{cs, ks}, now().Add(r.checkEvery)
	return r, nil
}

// loadPair reads a PEM certificate and key; the error names the file at
// fault when it can tell which.
func loadPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("sip.tls_cert %s: %w", certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("sip.tls_key %s: %w", keyFile, err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("sip.tls_cert %s / sip.tls_key %s: %w", certFile, keyFile, err)
	}
	if len(pair.Certificate) == 0 {
		return nil, fmt.Errorf("sip.tls_cert %s: no certificate", certFile)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("sip.tls_cert %s: %w", certFile, err)
		}
	}
	return &pair, nil
}

// GetCertificate serves tls.Config.GetCertificate.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); !now.Before(r.nextCheck) {
		r.nextCheck = now.Add(r.checkEvery)
		r.reloadLocked(false)
	}
	return r.cert, nil
}

// Reload reads the files again now, changed or not (SIGHUP); the error
// is also logged, and the previous certificate stays in service.
func (r *certReloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloadLocked(true)
}

func (r *certReloader) reloadLocked(force bool) error {
	cs, cerr := stampOf(r.certFile)
	ks, kerr := stampOf(r.keyFile)
	next := [2]fileStamp{cs, ks}
	if !force && next == r.stamp {
		return nil
	}
	// Remember what was looked at even when it does not load, so a
	// broken file is reported once, not at every handshake; any further
	// change to either file is tried again.
	r.stamp = next
	err := errors.Join(cerr, kerr)
	var cert *tls.Certificate
	if err == nil {
		cert, err = loadPair(r.certFile, r.keyFile)
	}
	if err != nil {
		r.log.Error("TLS certificate not reloaded; the previous one stays in use",
			"cert_file", r.certFile, "key_file", r.keyFile, "error", err)
		return err
	}
	old := r.cert
	r.cert = cert
	if old == nil || !bytes.Equal(old.Certificate[0], cert.Certificate[0]) {
		r.log.Info("TLS certificate loaded", "file", r.certFile, "subject", cert.Leaf.Subject.CommonName,
			"serial", cert.Leaf.SerialNumber.Text(16), "not_after", cert.Leaf.NotAfter.Format(time.RFC3339))
	}
	return nil
}
