package dnstest

import (
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Server is a running test DNS server.
type Server struct {
	Addr string // 127.0.0.1:PORT (UDP and TCP)

	mu      sync.Mutex
	records []dns.RR
	queries []string
	silent  map[string]bool // names not answered at all (a dead server)
}

// Start serves records (master-file lines such as
// "_sip._udp.example.test. 60 IN SRV 0 0 5060 a.example.test.") on UDP
// and TCP until the test ends. Names in the zone get their records of
// the asked type (with CNAMEs followed) or an empty NOERROR; other names
// NXDOMAIN.
func Start(t testing.TB, records ...string) *Server {
	t.Helper()
	s := &Server{silent: map[string]bool{}}
	s.Set(t, records...)
	// UDP and TCP on one port: the kernel picks a free UDP port, whose
	// TCP twin another process may hold; then try another port.
	var pc net.PacketConn
	var ln net.Listener
	for try := 0; ; try++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		s.Addr = pc.LocalAddr().String()
		if ln, err = net.Listen("tcp", s.Addr); err == nil {
			break
		}
		pc.Close()
		if try == 20 {
			t.Fatal(err)
		}
	}
	udp := &dns.Server{PacketConn: pc, Handler: s}
	tcp := &dns.Server{Listener: ln, Handler: s}
	var wg sync.WaitGroup
	for _, srv := range []*dns.Server{udp, tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		wg.Go(func() { _ = srv.ActivateAndServe() })
		<-started
	}
	t.Cleanup(func() {
		udp.Shutdown()
		tcp.Shutdown()
		wg.Wait()
	})
	return s
}

// Set replaces the zone.
func (s *Server) Set(t testing.TB, records ...string) {
	t.Helper()
	var rrs []dns.RR
	for _, r := range records {
		rr, err := dns.NewRR(r)
		if err != nil {
			t.Fatalf("dnstest: record %q: %v", r, err)
		}
		rrs = append(rrs, rr)
	}
	s.mu.Lock()
	s.records = rrs
	s.mu.Unlock()
}

// Silence makes the server ignore questions for name (a timeout).
func (s *Server) Silence(name string) {
	s.mu.Lock()
	s.silent[dns.CanonicalName(name)] = true
	s.mu.Unlock()
}

// Queries are the questions asked so far, as "TYPE name." in order.
func (s *Server) Queries() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.queries)
}

// Asked counts the questions of type qtype ("SRV") for name.
func (s *Server) Asked(qtype, name string) int {
	want := strings.ToUpper(qtype) + " " + dns.CanonicalName(name)
	n := 0
	for _, q := range s.Queries() {
		if q == want {
			n++
		}
	}
	return n
}

// ServeDNS answers one question.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		return
	}
	q := req.Question[0]
	name := dns.CanonicalName(q.Name)
	s.mu.Lock()
	s.queries = append(s.queries, dns.TypeToString[q.Qtype]+" "+name)
	silent := s.silent[name]
	records := s.records
	s.mu.Unlock()
	if silent {
		return
	}
	res := new(dns.Msg)
	res.SetReply(req)
	res.Authoritative = true
	known := false
	owner := name
	for hops := 0; hops < 8; hops++ {
		next := ""
		for _, rr := range records {
			h := rr.Header()
			if dns.CanonicalName(h.Name) != owner {
				continue
			}
			known = true
			switch {
			case h.Rrtype == q.Qtype:
				res.Answer = append(res.Answer, dns.Copy(rr))
			case h.Rrtype == dns.TypeCNAME:
				res.Answer = append(res.Answer, dns.Copy(rr))
				next = dns.CanonicalName(rr.(*dns.CNAME).Target)
			}
		}
		if next == "" {
			break
		}
		owner = next
	}
	if !known {
		res.Rcode = dns.RcodeNameError
	}
	if len(res.Answer) == 0 {
		// A negative answer carries the zone's SOA, whose MINIMUM says how
		// long to keep it (RFC 2308 §3).
		soa, _ := dns.NewRR(". 30 IN SOA ns.test. hostmaster.test. 1 60 60 60 30")
		res.Ns = append(res.Ns, soa)
	}
	res.Compress = true
	_ = w.WriteMsg(res)
}
