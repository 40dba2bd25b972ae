package sipdns

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// FuzzAnswer feeds arbitrary bytes to the parsing of a name server's
// answer and to the ordering of what it yields: no panic, nothing kept
// that does not answer the question, and every record kept in the order.
func FuzzAnswer(f *testing.F) {
	seed := func(qtype uint16, rrs ...string) {
		m := new(dns.Msg)
		m.SetQuestion("carrier.test.", qtype)
		m.Response = true
		for _, s := range rrs {
			rr, err := dns.NewRR(s)
			if err != nil {
				f.Fatal(err)
			}
			m.Answer = append(m.Answer, rr)
		}
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed(dns.TypeNAPTR, `carrier.test. 60 IN NAPTR 10 50 "s" "SIP+D2U" "" _sip._udp.carrier.test.`,
		`carrier.test. 60 IN NAPTR 5 50 "S" "SIPS+D2T" "" _sips._tcp.carrier.test.`)
	seed(dns.TypeSRV, `carrier.test. 60 IN SRV 0 5 5060 a.carrier.test.`, `carrier.test. 60 IN SRV 0 0 5060 b.carrier.test.`,
		`carrier.test. 60 IN SRV 1 65535 5062 .`)
	seed(dns.TypeA, `carrier.test. 60 IN CNAME x.test.`, `x.test. 60 IN A 192.0.2.1`, `other.test. 60 IN A 192.0.2.66`)
	seed(dns.TypeAAAA, `carrier.test. 60 IN AAAA 2001:db8::1`, `carrier.test. 60 IN AAAA ::ffff:192.0.2.1`)
	f.Fuzz(func(t *testing.T, b []byte) {
		m := new(dns.Msg)
		if m.Unpack(b) != nil || len(m.Question) != 1 {
			return
		}
		qtype := m.Question[0].Qtype
		a, err := parseAnswer(m, "carrier.test.", qtype)
		if err != nil {
			return
		}
		if n := len(a.naptr) + len(a.srv) + len(a.addrs); n > maxRecords {
			t.Fatalf("%d records kept", n)
		}
		if a.ttl < 0 || a.ttl > maxTTL {
			t.Fatalf("ttl %v", a.ttl)
		}
		for _, ip := range a.addrs {
			if !ip.IsValid() || qtype == dns.TypeAAAA && ip.Is4() || qtype == dns.TypeA && !ip.Is4() {
				t.Fatalf("address %v for %s", ip, dns.TypeToString[qtype])
			}
		}
		prev := naptrRec{}
		for i, r := range usableNAPTR(a.naptr, func(string) bool { return true }) {
			if naptrServices[strings.ToUpper(r.service)] == "" || r.regexp != "" {
				t.Fatalf("unusable NAPTR kept: %+v", r)
			}
			if i > 0 && (r.order < prev.order || r.order == prev.order && r.pref < prev.pref) {
				t.Fatalf("NAPTR out of order: %+v after %+v", r, prev)
			}
			prev = r
		}
		draws := 0
		ordered := orderSRV(a.srv, func(n int) int { draws++; return (draws * 7919) % n })
		if len(ordered) != len(a.srv) {
			t.Fatalf("%d SRV records ordered out of %d", len(ordered), len(a.srv))
		}
		for i := 1; i < len(ordered); i++ {
			if ordered[i].priority < ordered[i-1].priority {
				t.Fatal("SRV out of priority order")
			}
		}
	})
}
