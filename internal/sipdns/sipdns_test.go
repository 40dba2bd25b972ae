package sipdns_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/sipdns"
	"github.com/kaopu/kaopu/internal/sipdns/dnstest"
)

// zone is a carrier with NAPTR (TCP preferred over UDP, and a SIPS and
// an unknown service), SRV with two priorities, and plain names.
var zone = []string{
	`carrier.test. 60 IN NAPTR 10 50 "s" "SIP+D2T" "" _sip._tcp.carrier.test.`,
	`carrier.test. 60 IN NAPTR 20 50 "s" "SIP+D2U" "" _sip._udp.carrier.test.`,
	`carrier.test. 60 IN NAPTR 5 50 "s" "SIP+D2S" "" _sip._sctp.carrier.test.`,
	`carrier.test. 60 IN NAPTR 5 10 "u" "SIP+D2U" "!^.*$!sip:x@evil.test!" .`,
	`_sip._tcp.carrier.test. 60 IN SRV 0 0 5070 tcp1.carrier.test.`,
	`_sip._udp.carrier.test. 60 IN SRV 10 0 5062 udp2.carrier.test.`,
	`_sip._udp.carrier.test. 60 IN SRV 0 0 5061 udp1.carrier.test.`,
	`tcp1.carrier.test. 60 IN A 127.0.0.11`,
	`udp1.carrier.test. 60 IN A 127.0.0.12`,
	`udp1.carrier.test. 60 IN AAAA ::1`,
	`udp2.carrier.test. 60 IN CNAME real.carrier.test.`,
	`real.carrier.test. 60 IN A 127.0.0.13`,

	`srvonly.test. 60 IN A 127.0.0.99`,
	`_sip._udp.srvonly.test. 60 IN SRV 0 0 5080 srvonly.test.`,
	`_sips._tcp.srvonly.test. 60 IN SRV 0 0 5081 srvonly.test.`,

	`plain.test. 30 IN A 127.0.0.20`,
	`plain.test. 30 IN A 127.0.0.21`,

	`nosip.test. 60 IN A 127.0.0.30`,
	`_sip._udp.nosip.test. 60 IN SRV 0 0 0 .`,
}

func newResolver(t *testing.T, dns *dnstest.Server, mod func(*sipdns.Config)) *sipdns.Resolver {
	cfg := sipdns.Config{Servers: []string{dns.Addr}, Hosts: "-", Timeout: 300 * time.Millisecond, Attempts: 1,
		RandN: func(int) int { return 0 }}
	if mod != nil {
		mod(&cfg)
	}
	return sipdns.New(cfg)
}

func targets(r sipdns.Result) string {
	var s []string
	for _, t := range r.Targets {
		s = append(s, t.String())
	}
	return strings.Join(s, " ")
}

func TestResolve(t *testing.T) {
	srv := dnstest.Start(t, zone...)
	tests := []struct {
		name  string
		q     sipdns.Query
		tps   []string // supported transports; nil: all
		want  string
		asked []string // questions that must have been asked
		not   []string // and must not
	}{
		{name: "naptr order then srv priority", q: sipdns.Query{Host: "carrier.test"},
			want:  "TCP:127.0.0.11:5070 UDP:127.0.0.12:5061 UDP:[::1]:5061 UDP:127.0.0.13:5062",
			asked: []string{"NAPTR carrier.test.", "SRV _sip._tcp.carrier.test.", "SRV _sip._udp.carrier.test."},
			not:   []string{"SRV _sip._sctp.carrier.test.", "SRV _sips._tcp.carrier.test."}},
		{name: "naptr of a transport we lack is skipped", q: sipdns.Query{Host: "carrier.test"}, tps: []string{"UDP"},
			want: "UDP:127.0.0.12:5061 UDP:[::1]:5061 UDP:127.0.0.13:5062",
			not:  []string{"SRV _sip._tcp.carrier.test."}},
		{name: "explicit transport skips naptr", q: sipdns.Query{Host: "carrier.test", Transport: "udp"},
			want: "UDP:127.0.0.12:5061 UDP:[::1]:5061 UDP:127.0.0.13:5062",
			not:  []string{"NAPTR carrier.test."}},
		{name: "explicit port skips naptr and srv", q: sipdns.Query{Host: "plain.test", Port: 5099},
			want: "UDP:127.0.0.20:5099 UDP:127.0.0.21:5099",
			not:  []string{"NAPTR plain.test.", "SRV _sip._udp.plain.test."}},
		{name: "no naptr: srv of every transport", q: sipdns.Query{Host: "srvonly.test"},
			want:  "TLS:127.0.0.99:5081 UDP:127.0.0.99:5080",
			asked: []string{"NAPTR srvonly.test.", "SRV _sips._tcp.srvonly.test.", "SRV _sip._tcp.srvonly.test.", "SRV _sip._udp.srvonly.test."}},
		{name: "sips uri: tls only", q: sipdns.Query{Host: "srvonly.test", Secure: true},
			want: "TLS:127.0.0.99:5081"},
		{name: "nothing: A at the default port", q: sipdns.Query{Host: "plain.test"},
			want: "UDP:127.0.0.20:5060 UDP:127.0.0.21:5060"},
		{name: "tls without srv: default port 5061", q: sipdns.Query{Host: "plain.test", Transport: "TLS"},
			want: "TLS:127.0.0.20:5061 TLS:127.0.0.21:5061"},
		{name: "ip literal", q: sipdns.Query{Host: "192.0.2.1", Transport: "tcp"}, want: "TCP:192.0.2.1:5060"},
		{name: "ipv6 literal", q: sipdns.Query{Host: "[2001:db8::1]", Port: 5070}, want: "UDP:[2001:db8::1]:5070"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(srv.Queries())
			r := newResolver(t, srv, func(c *sipdns.Config) { c.Transports = tc.tps })
			res, err := r.Resolve(context.Background(), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := targets(res); got != tc.want {
				t.Errorf("targets\n got %s\nwant %s", got, tc.want)
			}
			asked := strings.Join(srv.Queries()[before:], "\n")
			for _, q := range tc.asked {
				if !strings.Contains(asked, q) {
					t.Errorf("%q not asked; asked:\n%s", q, asked)
				}
			}
			for _, q := range tc.not {
				if strings.Contains(asked, q) {
					t.Errorf("%q asked; it must not be", q)
				}
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	srv := dnstest.Start(t, zone...)
	r := newResolver(t, srv, nil)
	ctx := context.Background()
	if _, err := r.Resolve(ctx, sipdns.Query{Host: "nosip.test", Transport: "UDP"}); !errors.Is(err, sipdns.ErrNoService) {
		t.Errorf("SRV target \".\": %v, want ErrNoService", err)
	}
	if _, err := r.Resolve(ctx, sipdns.Query{Host: "missing.test"}); !errors.Is(err, sipdns.ErrNotFound) {
		t.Errorf("NXDOMAIN: %v, want ErrNotFound", err)
	}
	if _, err := r.Resolve(ctx, sipdns.Query{Host: "plain.test", Transport: "WS"}); !errors.Is(err, sipdns.ErrTransport) {
		t.Errorf("transport ws: %v, want ErrTransport", err)
	}
	if _, err := r.Resolve(ctx, sipdns.Query{Host: "plain.test", Transport: "UDP", Secure: true}); !errors.Is(err, sipdns.ErrTransport) {
		t.Errorf("sips over udp: %v, want ErrTransport", err)
	}
	if _, err := r.Resolve(ctx, sipdns.Query{Host: "bad name!"}); err == nil {
		t.Error("a bad name resolved")
	}
	srv.Silence("plain.test")
	_, err := r.Resolve(ctx, sipdns.Query{Host: "plain.test", Port: 5060})
	if err == nil || errors.Is(err, sipdns.ErrNotFound) {
		t.Errorf("a silent server: %v, want a failure that is not ErrNotFound", err)
	}
}

// A dead first name server: the second answers.
func TestServerFailover(t *testing.T) {
	dead := dnstest.Start(t)
	dead.Silence("plain.test")
	live := dnstest.Start(t, zone...)
	r := sipdns.New(sipdns.Config{Servers: []string{dead.Addr, live.Addr}, Hosts: "-", Timeout: 200 * time.Millisecond})
	res, err := r.Resolve(context.Background(), sipdns.Query{Host: "plain.test", Port: 5060})
	if err != nil {
		t.Fatal(err)
	}
	if got := targets(res); got != "UDP:127.0.0.20:5060 UDP:127.0.0.21:5060" {
		t.Errorf("targets %s", got)
	}
}

func TestResolvConfAndHosts(t *testing.T) {
	srv := dnstest.Start(t, zone...)
	dir := t.TempDir()
	conf := filepath.Join(dir, "resolv.conf")
	// resolv.conf names servers without a port (53 is implied), where
	// nothing listens in a test: names go to the hosts file or fail.
	host, _, _ := strings.Cut(srv.Addr, ":")
	os.WriteFile(conf, []byte("nameserver "+host+"\noptions timeout:1\n"), 0o644)
	hosts := filepath.Join(dir, "hosts")
	os.WriteFile(hosts, []byte("# comment\n127.0.0.77 pbx.local pbx-alias.local # trailing\n::2 pbx.local\n"), 0o644)
	r := sipdns.New(sipdns.Config{ResolvConf: conf, Hosts: hosts, Timeout: 200 * time.Millisecond, Attempts: 1})
	res, err := r.Resolve(context.Background(), sipdns.Query{Host: "pbx-alias.local", Port: 5070})
	if err != nil {
		t.Fatal(err)
	}
	if got := targets(res); got != "UDP:127.0.0.77:5070" {
		t.Errorf("hosts file: %s", got)
	}
	res, err = r.Resolve(context.Background(), sipdns.Query{Host: "pbx.local", Port: 5070, Transport: "tcp"})
	if err != nil || targets(res) != "TCP:127.0.0.77:5070 TCP:[::2]:5070" {
		t.Errorf("hosts file, two addresses: %s %v", targets(res), err)
	}
	// A name not in the hosts file goes to resolv.conf's server: no
	// answer is a failure, not "not found".
	if _, err := r.Resolve(context.Background(), sipdns.Query{Host: "elsewhere.test", Port: 5060}); err == nil || errors.Is(err, sipdns.ErrNotFound) {
		t.Errorf("no server: %v", err)
	}
	// A resolv.conf without nameservers is an error that says so.
	os.WriteFile(conf, []byte("search example\n"), 0o644)
	r = sipdns.New(sipdns.Config{ResolvConf: conf, Hosts: "-"})
	if _, err := r.Resolve(context.Background(), sipdns.Query{Host: "x.test", Port: 1}); err == nil || !strings.Contains(err.Error(), "nameserver") {
		t.Errorf("empty resolv.conf: %v", err)
	}
}

// Answers are reused for their TTL and asked again after it; the
// cache's size is bounded.
func TestCache(t *testing.T) {
	srv := dnstest.Start(t, zone...)
	var mu sync.Mutex
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	r := newResolver(t, srv, func(c *sipdns.Config) { c.Now = clock; c.CacheSize = 4 })
	ctx := context.Background()
	q := sipdns.Query{Host: "plain.test", Port: 5060}
	res, err := r.Resolve(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if res.TTL != 30*time.Second {
		t.Errorf("TTL %v, want the records' 30s", res.TTL)
	}
	n := len(srv.Queries())
	mu.Lock()
	now = now.Add(20 * time.Second)
	mu.Unlock()
	res, err = r.Resolve(ctx, q)
	if err != nil || len(srv.Queries()) != n {
		t.Fatalf("asked again within the TTL: %v, %d queries, want %d", err, len(srv.Queries()), n)
	}
	if res.TTL != 10*time.Second {
		t.Errorf("cached TTL %v, want what is left (10s)", res.TTL)
	}
	mu.Lock()
	now = now.Add(11 * time.Second)
	mu.Unlock()
	if _, err := r.Resolve(ctx, q); err != nil || srv.Asked("A", "plain.test") != 2 {
		t.Errorf("not asked again after the TTL: %v, %d", err, srv.Asked("A", "plain.test"))
	}
	// Six other names through a cache of four: the first is gone.
	for i := range 6 {
		r.Resolve(ctx, sipdns.Query{Host: fmt.Sprintf("n%d.test", i), Port: 5060})
	}
	before := srv.Asked("A", "plain.test")
	r.Resolve(ctx, q)
	if srv.Asked("A", "plain.test") != before+1 {
		t.Error("the least recently used answer stayed in a full cache")
	}
	// Negative answers are cached too, for the SOA's 30s.
	m := srv.Asked("A", "missing.test")
	r.Resolve(ctx, sipdns.Query{Host: "missing.test", Port: 5060})
	r.Resolve(ctx, sipdns.Query{Host: "missing.test", Port: 5060})
	if got := srv.Asked("A", "missing.test"); got != m+1 {
		t.Errorf("NXDOMAIN asked %d times, want once", got-m)
	}
}

// RFC 2782: weights share the draws; priority comes first.
func TestSRVWeights(t *testing.T) {
	srv := dnstest.Start(t,
		`_sip._udp.w.test. 60 IN SRV 0 90 5060 heavy.w.test.`,
		`_sip._udp.w.test. 60 IN SRV 0 10 5060 light.w.test.`,
		`_sip._udp.w.test. 60 IN SRV 1 100 5060 backup.w.test.`,
		`heavy.w.test. 60 IN A 127.0.0.1`,
		`light.w.test. 60 IN A 127.0.0.2`,
		`backup.w.test. 60 IN A 127.0.0.3`,
	)
	firsts := map[string]int{}
	draw := 0
	for range 100 {
		// Draws 0..100 in turn over the weights' sum (100).
		d := draw
		r := newResolver(t, srv, func(c *sipdns.Config) { c.RandN = func(n int) int { return d % n } })
		draw++
		res, err := r.Resolve(context.Background(), sipdns.Query{Host: "w.test", Transport: "UDP"})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Targets) != 3 || res.Targets[2].Host != "backup.w.test" {
			t.Fatalf("targets %s: the priority 1 record must be last", targets(res))
		}
		firsts[res.Targets[0].Host]++
	}
	if firsts["heavy.w.test"] < 85 || firsts["light.w.test"] < 5 {
		t.Errorf("first picks %v, want about 90/10", firsts)
	}
}
