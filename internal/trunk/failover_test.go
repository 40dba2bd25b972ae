package trunk

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/sipdns"
	"github.com/kaopu/kaopu/internal/sipdns/dnstest"
	"github.com/kaopu/kaopu/internal/store"
)

// fakeSender answers each server as told: a status, or 0 for a timeout.
type fakeSender struct {
	mu      sync.Mutex
	answers map[string]int // "UDP 192.0.2.1:5060" -> status
	sent    []string       // "METHOD TRANSPORT addr uri"
	dst     map[*sip.Request]string
}

func (f *fakeSender) Route(req *sip.Request, trunk string, dst netip.AddrPort, transport string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dst == nil {
		f.dst = map[*sip.Request]string{}
	}
	f.dst[req] = transport + " " + dst.String()
	f.sent = append(f.sent, string(req.Method)+" "+transport+" "+dst.String()+" "+req.Recipient.String())
	return nil
}

func (f *fakeSender) Do(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	f.mu.Lock()
	code := f.answers[f.dst[req]]
	f.mu.Unlock()
	if code == 0 {
		return nil, errors.New("transaction timed out")
	}
	return sip.NewResponseFromRequest(req, code, "X", nil), nil
}

func (f *fakeSender) DoDigestAuth(ctx context.Context, req *sip.Request, res *sip.Response, user, password string) (*sip.Response, error) {
	return f.Do(ctx, req)
}

func (f *fakeSender) Contact(transport string) sip.ContactHeader {
	return sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: "192.0.2.100", Port: 5060}}
}

// A trunk named by domain: NAPTR to SRV with three servers; REGISTER and
// OPTIONS go to the next on a timeout or a 503 (RFC 3263 §4.3), stop at
// any other answer; the INVITE's servers come in the same order; every
// server's address counts as the trunk's for its calls.
func TestServerFailover(t *testing.T) {
	dns := dnstest.Start(t,
		`carrier.example. 60 IN NAPTR 10 0 "s" "SIP+D2U" "" _sip._udp.carrier.example.`,
		`_sip._udp.carrier.example. 60 IN SRV 0 0 5060 a.carrier.example.`,
		`_sip._udp.carrier.example. 60 IN SRV 1 0 5060 b.carrier.example.`,
		`_sip._udp.carrier.example. 60 IN SRV 2 0 5060 c.carrier.example.`,
		`a.carrier.example. 60 IN A 192.0.2.1`,
		`b.carrier.example. 60 IN A 192.0.2.2`,
		`c.carrier.example. 60 IN A 192.0.2.3`,
	)
	send := &fakeSender{answers: map[string]int{"UDP 192.0.2.1:5060": 503, "UDP 192.0.2.2:5060": 0, "UDP 192.0.2.3:5060": 200}}
	m, st := newManager(t)
	m.cfg.Sender = send
	m.cfg.Resolver = sipdns.New(sipdns.Config{Servers: []string{dns.Addr}, Hosts: "-", Timeout: 300 * time.Millisecond})
	m.log = slog.New(slog.DiscardHandler)
	ctx := context.Background()
	tr := store.Trunk{Name: "dns", Address: "carrier.example", Transport: TransportAuto, Auth: store.TrunkAuthRegister,
		Username: "u", Password: "p", NumberFormat: "e164", Expires: time.Hour, Enabled: true, Created: time.Unix(1, 0)}
	if err := st.AddTrunk(ctx, tr); err != nil {
		t.Fatal(err)
	}
	if err := st.AddRoute(ctx, store.Route{Name: "dns", Pattern: "7", Trunks: []string{"dns"}, Priority: 1}); err != nil {
		t.Fatal(err)
	}
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	l := m.snap.Load().lines["dns"]
	res, err := resolve(ctx, m.cfg.Resolver, l.t)
	if err != nil {
		t.Fatal(err)
	}
	l.setTargets(res.Targets)

	if err := m.qualify(ctx, l); err != nil {
		t.Fatalf("qualify: %v", err)
	}
	if _, err := m.register(ctx, l, time.Hour); err != nil {
		t.Fatalf("register: %v", err)
	}
	want := []string{
		"OPTIONS UDP 192.0.2.1:5060 sip:carrier.example", "OPTIONS UDP 192.0.2.2:5060 sip:carrier.example", "OPTIONS UDP 192.0.2.3:5060 sip:carrier.example",
		"REGISTER UDP 192.0.2.1:5060 sip:carrier.example", "REGISTER UDP 192.0.2.2:5060 sip:carrier.example", "REGISTER UDP 192.0.2.3:5060 sip:carrier.example",
	}
	if strings.Join(send.sent, "\n") != strings.Join(want, "\n") {
		t.Fatalf("sent\n%s\nwant\n%s", strings.Join(send.sent, "\n"), strings.Join(want, "\n"))
	}
	// A 404 from the first server is the trunk's answer: no failover.
	send.answers["UDP 192.0.2.1:5060"] = 404
	send.sent = nil
	if _, err := m.register(ctx, l, time.Hour); err == nil || len(send.sent) != 1 {
		t.Fatalf("a 404 failed over: %v, sent %v", err, send.sent)
	}
	// Every server down: the last error.
	send.answers = map[string]int{}
	if err := m.qualify(ctx, l); err == nil {
		t.Fatal("qualify with every server silent succeeded")
	}

	got := m.Outbound("7123")
	if len(got) != 1 || len(got[0].Servers) != 3 || got[0].Binding != got[0].Servers[0] {
		t.Fatalf("outbound: %+v", got)
	}
	for i, b := range got[0].Servers {
		if want := "192.0.2." + string(rune('1'+i)) + ":5060"; b.Source != want || b.Transport != "UDP" || b.Trunk != "dns" ||
			b.Contact != "sip:7123@carrier.example" {
			t.Errorf("server %d: %+v, want %s", i, b, want)
		}
	}
	for _, ip := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
		if name, ok := m.FromTrunk(netip.MustParseAddr(ip)); !ok || name != "dns" {
			t.Errorf("a call from %s: trunk %q, %v", ip, name, ok)
		}
	}
}

// TLSPeer names the trunk's host for its TLS servers when it verifies.
func TestTLSPeer(t *testing.T) {
	m, st := newManager(t)
	ctx := context.Background()
	for _, tr := range []store.Trunk{
		{Name: "sec", Address: "192.0.2.50", Transport: "tls", TLSVerify: true},
		{Name: "lax", Address: "192.0.2.51", Transport: "tls"},
	} {
		tr.Auth, tr.NumberFormat, tr.Enabled, tr.Created = "ip", "e164", true, time.Unix(1, 0)
		if err := st.AddTrunk(ctx, tr); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if p, ok := m.TLSPeer("sec"); !ok || p.ServerName != "192.0.2.50" || p.Trunk != "sec" || p.Roots != nil {
		t.Errorf("verified trunk: %+v %v", p, ok)
	}
	if _, ok := m.TLSPeer("lax"); ok {
		t.Error("a trunk with tls_verify off asked for verification")
	}
	if !m.VerifiesTLS(netip.MustParseAddrPort("192.0.2.50:5061")) {
		t.Error("the verified trunk's server may be connected to unverified")
	}
	for _, a := range []string{"192.0.2.51:5061", "192.0.2.50:5060"} {
		if m.VerifiesTLS(netip.MustParseAddrPort(a)) {
			t.Errorf("%s: verification asked for a server of no verified trunk", a)
		}
	}
}
