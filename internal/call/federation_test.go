package call

import (
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/sipdns"
	"github.com/kaopu/kaopu/internal/sipdns/dnstest"
)

// fakeDNS is a zone for a test DNS server: SRV records and addresses
// by name, and names whose questions go unanswered (a timeout).
type fakeDNS struct {
	srv   map[string][]*net.SRV // "_sip._udp.beta.test"
	hosts map[string][]string
	fail  map[string]bool
	raw   []string // more records, in master-file syntax (NAPTR)
}

// fedDNS is sipdns (UDP and TCP, as federation uses it) over a test DNS
// server serving a fakeDNS zone.
type fedDNS struct {
	*sipdns.Resolver
	srv *dnstest.Server
}

func (f fakeDNS) start(t *testing.T) *fedDNS {
	t.Helper()
	var rrs []string
	for name, recs := range f.srv {
		for _, r := range recs {
			rrs = append(rrs, fmt.Sprintf("%s. 60 IN SRV %d %d %d %s", strings.TrimSuffix(name, "."), r.Priority, r.Weight, r.Port, r.Target))
		}
	}
	for name, addrs := range f.hosts {
		for _, a := range addrs {
			typ := "A"
			if strings.Contains(a, ":") {
				typ = "AAAA"
			}
			rrs = append(rrs, fmt.Sprintf("%s. 60 IN %s %s", strings.TrimSuffix(name, "."), typ, a))
		}
	}
	srv := dnstest.Start(t, append(rrs, f.raw...)...)
	for name := range f.fail {
		srv.Silence(name)
	}
	return &fedDNS{srv: srv, Resolver: sipdns.New(sipdns.Config{Servers: []string{srv.Addr}, Hosts: "-",
		Transports: []string{"UDP", "TCP"}, Timeout: 150 * time.Millisecond, Attempts: 1})}
}

// asked are the questions the server got, "TYPE name." in order.
func (f *fedDNS) asked() []string { return f.srv.Queries() }

// fedManager is a manager of domain beta.test listening on 127.0.0.3:5060
// (UDP and TCP) and 127.0.0.3:5061 (TLS).
func fedManager(fed Federation, r ServerLocator) *Manager {
	self := func(host string, port int) bool {
		return host == "127.0.0.3" && (port == 0 || port == 5060 || port == 5061)
	}
	return &Manager{cfg: Config{Domain: "beta.test", IsSelf: self, Federation: fed, Resolver: r},
		log: slog.New(slog.DiscardHandler)}
}

func invite(t *testing.T, ruri, from string) *sip.Request {
	t.Helper()
	var u, f sip.Uri
	if err := sip.ParseUri(ruri, &u); err != nil {
		t.Fatalf("request-uri %q: %v", ruri, err)
	}
	if err := sip.ParseUri(from, &f); err != nil {
		t.Fatalf("from %q: %v", from, err)
	}
	req := sip.NewRequest(sip.INVITE, u)
	req.AppendHeader(&sip.FromHeader{Address: f, Params: sip.HeaderParams{{K: "tag", V: "x"}}})
	req.AppendHeader(&sip.ToHeader{Address: u})
	return req
}

// TestGuest: which INVITEs federation accepts without authentication.
// Only a From of another domain calling one of our users (by name, by
// extension, at our domain or our address) is a guest; a From of our own
// domain or address (a forged local caller) and any Request-URI for
// another host (open relay) must authenticate.
func TestGuest(t *testing.T) {
	both := Federation{Inbound: true, Outbound: true}
	tests := []struct {
		name       string
		fed        Federation
		ruri, from string
		want       string // caller; "" means: not a guest, authenticate
	}{
		{"foreign caller to our user", both, "sip:bob@beta.test", "sip:alice@alpha.test", "alice@alpha.test"},
		{"foreign caller to an extension", both, "sip:1002@beta.test", "sip:alice@alpha.test", "alice@alpha.test"},
		{"foreign caller to our address", both, "sip:bob@127.0.0.3:5060", "sip:alice@alpha.test", "alice@alpha.test"},
		{"foreign caller, domain case and root dot", both, "sip:bob@BETA.test.", "sip:alice@alpha.test.", "alice@alpha.test"},
		{"sips From", both, "sip:bob@beta.test", "sips:alice@alpha.test", "alice@alpha.test"},
		{"From with an IP of someone else", both, "sip:bob@beta.test", "sip:alice@192.0.2.1", "alice@192.0.2.1"},
		{"From without user", both, "sip:bob@beta.test", "sip:alpha.test", "alpha.test"},
		{"inbound only", Federation{Inbound: true}, "sip:bob@beta.test", "sip:alice@alpha.test", "alice@alpha.test"},

		{"forged From of our domain", both, "sip:bob@beta.test", "sip:alice@beta.test", ""},
		{"forged From of our domain, other case", both, "sip:bob@beta.test", "sip:alice@Beta.Test", ""},
		{"From of our address", both, "sip:bob@beta.test", "sip:alice@127.0.0.3", ""},
		{"From of our address, other port", both, "sip:bob@beta.test", "sip:alice@127.0.0.3:7000", ""},
		{"relay to another domain", both, "sip:carol@gamma.test", "sip:alice@alpha.test", ""},
		{"relay back to the caller's domain", both, "sip:carol@alpha.test", "sip:alice@alpha.test", ""},
		{"relay to an IP address", both, "sip:carol@192.0.2.7:5060", "sip:alice@alpha.test", ""},
		{"relay to our IP on a port not ours", both, "sip:carol@127.0.0.3:5099", "sip:alice@alpha.test", ""},
		{"inbound off", Federation{Outbound: true}, "sip:bob@beta.test", "sip:alice@alpha.test", ""},
		{"federation off", Federation{}, "sip:bob@beta.test", "sip:alice@alpha.test", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dns := fakeDNS{}.start(t)
			m := fedManager(tc.fed, dns)
			req := invite(t, tc.ruri, tc.from)
			caller, ok := m.guest(req)
			if ok != (tc.want != "") || caller != tc.want {
				t.Fatalf("guest(INVITE %s From %s) = %q, %v; want %q, %v", tc.ruri, tc.from, caller, ok, tc.want, tc.want != "")
			}
			if !ok {
				return
			}
			// A guest reaches our users only: no remote target, no DNS.
			if b, remote, rf := m.remote(req.Recipient); remote || rf != nil || len(dns.asked()) > 0 {
				t.Fatalf("guest's Request-URI %s gave remote=%v target %+v refusal %v, DNS %v; want our users only",
					tc.ruri, remote, b, rf, dns.asked())
			}
		})
	}
}

// TestRemoteDomain: where an authenticated call to another domain goes
// (RFC 3263: NAPTR, SRV over TCP and UDP, else A/AAAA on 5060), and
// the refusals when it cannot.
func TestRemoteDomain(t *testing.T) {
	both := Federation{Inbound: true, Outbound: true}
	srv := func(target string, port uint16) []*net.SRV {
		return []*net.SRV{{Target: target, Port: port, Priority: 10, Weight: 10}}
	}
	tests := []struct {
		name  string
		fed   Federation
		ruri  string
		dns   fakeDNS
		want  string // "TRANSPORT IP:PORT CONTACT", "local", or "CODE"
		asked []string
	}{
		{"SRV over UDP", both, "sip:alice@alpha.test",
			fakeDNS{srv: map[string][]*net.SRV{"_sip._udp.alpha.test": srv("sip1.alpha.test.", 5080)},
				hosts: map[string][]string{"sip1.alpha.test.": {"127.0.0.2"}}},
			"UDP 127.0.0.2:5080 sip:alice@alpha.test",
			[]string{"NAPTR alpha.test.", "SRV _sip._tcp.alpha.test.", "SRV _sip._udp.alpha.test.", "A sip1.alpha.test.", "AAAA sip1.alpha.test."}},
		{"SRV over TCP only", both, "sip:alice@alpha.test",
			fakeDNS{srv: map[string][]*net.SRV{"_sip._tcp.alpha.test": srv("sip1.alpha.test.", 5090)},
				hosts: map[string][]string{"sip1.alpha.test.": {"127.0.0.2"}}},
			"TCP 127.0.0.2:5090 sip:alice@alpha.test",
			[]string{"NAPTR alpha.test.", "SRV _sip._tcp.alpha.test.", "A sip1.alpha.test.", "AAAA sip1.alpha.test.", "SRV _sip._udp.alpha.test."}},
		{"first SRV target without address: the next one", both, "sip:alice@alpha.test",
			fakeDNS{srv: map[string][]*net.SRV{"_sip._udp.alpha.test": {
				{Target: "gone.alpha.test.", Port: 5070}, {Target: "sip2.alpha.test.", Port: 5072}}},
				hosts: map[string][]string{"sip2.alpha.test.": {"127.0.0.2"}}},
			"UDP 127.0.0.2:5072 sip:alice@alpha.test",
			[]string{"NAPTR alpha.test.", "SRV _sip._tcp.alpha.test.", "SRV _sip._udp.alpha.test.",
				"A gone.alpha.test.", "AAAA gone.alpha.test.", "A sip2.alpha.test.", "AAAA sip2.alpha.test."}},
		{"every SRV target, in order", both, "sip:alice@alpha.test",
			fakeDNS{srv: map[string][]*net.SRV{"_sip._udp.alpha.test": {
				{Target: "sip1.alpha.test.", Port: 5070, Priority: 10}, {Target: "sip2.alpha.test.", Port: 5072, Priority: 20}}},
				hosts: map[string][]string{"sip1.alpha.test.": {"127.0.0.2"}, "sip2.alpha.test.": {"127.0.0.4"}}},
			"UDP 127.0.0.2:5070 sip:alice@alpha.test, UDP 127.0.0.4:5072 sip:alice@alpha.test", nil},
		{"a later target that is us is never tried", both, "sip:alice@alpha.test",
			fakeDNS{srv: map[string][]*net.SRV{"_sip._udp.alpha.test": {
				{Target: "sip1.alpha.test.", Port: 5070, Priority: 10}, {Target: "us.beta.test.", Port: 5060, Priority: 20},
				{Target: "sip2.alpha.test.", Port: 5072, Priority: 30}}},
				hosts: map[string][]string{"sip1.alpha.test.": {"127.0.0.2"}, "us.beta.test.": {"127.0.0.3"}, "sip2.alpha.test.": {"127.0.0.4"}}},
			"UDP 127.0.0.2:5070 sip:alice@alpha.test, UDP 127.0.0.4:5072 sip:alice@alpha.test", nil},
		{"NAPTR chooses TCP", both, "sip:alice@alpha.test",
			fakeDNS{raw: []string{`alpha.test. 60 IN NAPTR 10 0 "s" "SIP+D2T" "" _sip._tcp.alpha.test.`,
				`alpha.test. 60 IN NAPTR 20 0 "s" "SIPS+D2T" "" _sips._tcp.alpha.test.`},
				srv:   map[string][]*net.SRV{"_sip._tcp.alpha.test": srv("sip1.alpha.test.", 5090), "_sip._udp.alpha.test": srv("sip1.alpha.test.", 5080)},
				hosts: map[string][]string{"sip1.alpha.test.": {"127.0.0.2"}}},
			"TCP 127.0.0.2:5090 sip:alice@alpha.test",
			[]string{"NAPTR alpha.test.", "SRV _sip._tcp.alpha.test.", "A sip1.alpha.test.", "AAAA sip1.alpha.test."}},
		{"no SRV: A on 5060", both, "sip:alice@alpha.test",
			fakeDNS{hosts: map[string][]string{"alpha.test": {"127.0.0.2"}}},
			"UDP 127.0.0.2:5060 sip:alice@alpha.test",
			[]string{"NAPTR alpha.test.", "SRV _sip._tcp.alpha.test.", "SRV _sip._udp.alpha.test.", "A alpha.test.", "AAAA alpha.test."}},
		{"IPv4 preferred, IPv6 next", both, "sip:alice@alpha.test",
			fakeDNS{hosts: map[string][]string{"alpha.test": {"2001:db8::2", "127.0.0.2"}}},
			"UDP 127.0.0.2:5060 sip:alice@alpha.test, UDP [2001:db8::2]:5060 sip:alice@alpha.test", nil},
		{"IPv6 only", both, "sip:alice@alpha.test",
			fakeDNS{hosts: map[string][]string{"alpha.test": {"2001:db8::2"}}},
			"UDP [2001:db8::2]:5060 sip:alice@alpha.test", nil},
		{"explicit port: no SRV", both, "sip:alice@alpha.test:5999",
			fakeDNS{srv: map[string][]*net.SRV{"_sip._udp.alpha.test": srv("sip1.alpha.test.", 5080)},
				hosts: map[string][]string{"alpha.test": {"127.0.0.2"}}},
			"UDP 127.0.0.2:5999 sip:alice@alpha.test:5999",
			[]string{"A alpha.test.", "AAAA alpha.test."}},
		{"transport=tcp: only the TCP SRV", both, "sip:alice@alpha.test;transport=TCP",
			fakeDNS{srv: map[string][]*net.SRV{"_sip._udp.alpha.test": srv("udp.alpha.test.", 5080),
				"_sip._tcp.alpha.test": srv("tcp.alpha.test.", 5090)},
				hosts: map[string][]string{"tcp.alpha.test.": {"127.0.0.2"}, "udp.alpha.test.": {"127.0.0.9"}}},
			"TCP 127.0.0.2:5090 sip:alice@alpha.test;transport=tcp",
			[]string{"SRV _sip._tcp.alpha.test.", "A tcp.alpha.test.", "AAAA tcp.alpha.test."}},
		{"SRV lookup fails but A answers", both, "sip:alice@alpha.test",
			fakeDNS{fail: map[string]bool{"_sip._udp.alpha.test": true},
				hosts: map[string][]string{"alpha.test": {"127.0.0.2"}}},
			"UDP 127.0.0.2:5060 sip:alice@alpha.test", nil},
		{"resolves to us: our users", both, "sip:bob@pbx.beta.test",
			fakeDNS{hosts: map[string][]string{"pbx.beta.test": {"127.0.0.3"}}},
			"local", nil},
		{"our domain: no DNS", both, "sip:bob@beta.test", fakeDNS{}, "local", []string{}},
		{"our address: no DNS", both, "sip:bob@127.0.0.3", fakeDNS{}, "local", []string{}},
		{"direct IP: no DNS", both, "sip:carol@192.0.2.7:5062", fakeDNS{},
			"UDP 192.0.2.7:5062 sip:carol@192.0.2.7:5062", []string{}},

		{"no such domain", both, "sip:alice@nowhere.test", fakeDNS{}, "404", nil},
		{"SRV target '.': no SIP here", both, "sip:alice@alpha.test",
			fakeDNS{srv: map[string][]*net.SRV{"_sip._udp.alpha.test": srv(".", 0)},
				hosts: map[string][]string{"alpha.test": {"127.0.0.2"}}},
			"404", nil},
		{"DNS failing", both, "sip:alice@alpha.test",
			fakeDNS{fail: map[string]bool{"_sip._udp.alpha.test": true, "_sip._tcp.alpha.test": true, "alpha.test": true}},
			"503", nil},
		{"SRV failing, no A", both, "sip:alice@alpha.test",
			fakeDNS{fail: map[string]bool{"_sip._udp.alpha.test": true}}, "503", nil},
		{"outbound off", Federation{Inbound: true}, "sip:alice@alpha.test",
			fakeDNS{hosts: map[string][]string{"alpha.test": {"127.0.0.2"}}}, "403", []string{}},
		{"sips", both, "sips:alice@alpha.test",
			fakeDNS{hosts: map[string][]string{"alpha.test": {"127.0.0.2"}}}, "416", []string{}},
		{"transport=tls", both, "sip:alice@alpha.test;transport=tls",
			fakeDNS{hosts: map[string][]string{"alpha.test": {"127.0.0.2"}}}, "503", []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dns := tc.dns.start(t)
			m := fedManager(tc.fed, dns)
			var u sip.Uri
			if err := sip.ParseUri(tc.ruri, &u); err != nil {
				t.Fatal(err)
			}
			b, remote, rf := m.remote(u)
			var got string
			switch {
			case rf != nil:
				got = fmt.Sprint(rf.code)
			case !remote:
				got = "local"
			default:
				var all []string
				for _, b := range b {
					all = append(all, b.Transport+" "+b.Source+" "+b.Contact)
					if b.Instance != DirectMark {
						t.Errorf("target %+v not marked as a direct target", b)
					}
				}
				got = strings.Join(all, ", ")
			}
			if got != tc.want {
				t.Fatalf("remote(%s) = %q (%+v), want %q; DNS asked %v", tc.ruri, got, b, tc.want, dns.asked())
			}
			if tc.asked != nil && !slices.Equal(dns.asked(), tc.asked) {
				t.Fatalf("DNS asked %q, want %q", dns.asked(), tc.asked)
			}
		})
	}
}

// TestDestination: our domain and addresses are local, other IPs direct,
// other names another domain; without IsSelf everything is local.
func TestDestination(t *testing.T) {
	m := fedManager(Federation{}, nil)
	for ruri, want := range map[string]dest{
		"sip:bob@beta.test":          destLocal,
		"sip:1002@BETA.TEST":         destLocal,
		"sip:bob@127.0.0.3":          destLocal,
		"sip:bob@127.0.0.3:5061":     destLocal,
		"sip:bob@127.0.0.3:6000":     destDirect,
		"sip:bob@[2001:db8::1]:5060": destDirect,
		"sip:bob@alpha.test":         destDomain,
		"sip:bob@beta.test.example":  destDomain,
	} {
		var u sip.Uri
		if err := sip.ParseUri(ruri, &u); err != nil {
			t.Fatal(err)
		}
		if got := m.destination(u); got != want {
			t.Errorf("destination(%s) = %d, want %d", ruri, got, want)
		}
	}
	m.cfg.IsSelf = nil
	var u sip.Uri
	sip.ParseUri("sip:bob@alpha.test", &u)
	if got := m.destination(u); got != destLocal {
		t.Errorf("without IsSelf: destination(%s) = %d, want local", u.String(), got)
	}
}

// TestCallerURI: toward the callee a guest keeps its own address, our
// users are in our domain.
func TestCallerURI(t *testing.T) {
	m := fedManager(Federation{Inbound: true}, nil)
	for caller, want := range map[string]string{
		"alice@alpha.test": "sip:alice@alpha.test",
		"alice":            "sip:alice@beta.test",
	} {
		u := m.callerURI(&Call{Caller: caller})
		if got := u.String(); got != want {
			t.Errorf("callerURI(%q) = %s, want %s", caller, got, want)
		}
	}
}
