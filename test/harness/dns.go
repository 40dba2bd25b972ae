//go:build linux

package harness

// A small authoritative DNS server for made-up test domains (alpha.test,
// beta.test), run inside a Netns on 127.0.0.1:53 and named in the
// namespace's resolv.conf, so that the programs under test resolve them
// with their ordinary resolver.

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// DNSZone is what StartDNS answers. Names may be given with or without
// the final dot, in any case.
type DNSZone struct {
	// A maps a name to its addresses: A records for IPv4, AAAA for IPv6.
	A map[string][]netip.Addr
	// SRV maps a service name ("_sip._udp.beta.test") to its records.
	SRV map[string][]net.SRV
	// NAPTR maps a domain to its NAPTR records (RFC 3403).
	NAPTR map[string][]NAPTR
}

// NAPTR is one NAPTR record; RFC 3263 uses Flags "s", Services such as
// "SIP+D2U" and a Replacement naming SRV records.
type NAPTR struct {
	Order, Preference      uint16
	Flags, Service, Regexp string
	Replacement            string
}

// rdata is the record's wire form (RFC 3403 §4.1): the replacement is a
// domain name, not compressed.
func (n NAPTR) rdata() ([]byte, bool) {
	b := []byte{byte(n.Order >> 8), byte(n.Order), byte(n.Preference >> 8), byte(n.Preference)}
	for _, s := range []string{n.Flags, n.Service, n.Regexp} {
		if len(s) > 255 {
			return nil, false
		}
		b = append(append(b, byte(len(s))), s...)
	}
	for _, label := range strings.Split(strings.TrimSuffix(fqdn(n.Replacement), "."), ".") {
		if label == "" {
			continue // the root: "."
		}
		if len(label) > 63 {
			return nil, false
		}
		b = append(append(b, byte(len(label))), label...)
	}
	return append(b, 0), true
}

// DNS is a running test DNS server.
type DNS struct {
	Addr string // 127.0.0.1:53, inside the namespace

	a     map[string][]netip.Addr
	srv   map[string][]net.SRV
	naptr map[string][]NAPTR

	mu      sync.Mutex
	queries []string // "SRV _sip._udp.beta.test." in arrival order
}

// StartDNS serves zone over UDP on 127.0.0.1:53 inside ns and writes the
// namespace's resolv.conf to use it (and nothing else). Names outside the
// zone get NXDOMAIN; names in it get NOERROR with no records for types
// they lack. The server stops when the test ends.
func StartDNS(t testing.TB, ns *Netns, zone DNSZone) *DNS {
	t.Helper()
	d := &DNS{Addr: "127.0.0.1:53", a: map[string][]netip.Addr{}, srv: map[string][]net.SRV{}, naptr: map[string][]NAPTR{}}
	for name, addrs := range zone.A {
		d.a[fqdn(name)] = addrs
	}
	for name, recs := range zone.SRV {
		d.srv[fqdn(name)] = recs
	}
	for name, recs := range zone.NAPTR {
		d.naptr[fqdn(name)] = recs
	}
	pc, err := ns.ListenPacket("udp4", d.Addr)
	if err != nil {
		t.Fatalf("DNS server in netns %s: %v", ns.Name, err)
	}
	ns.WriteEtc(t, "resolv.conf", "nameserver 127.0.0.1\noptions timeout:1 attempts:2\n")
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					t.Logf("test DNS server: %v", err)
				}
				return
			}
			if out, ok := d.answer(buf[:n]); ok {
				pc.WriteTo(out, from)
			}
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	return d
}

// Queries are the questions asked so far, as "TYPE name." in order.
func (d *DNS) Queries() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.queries)
}

func fqdn(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, ".")) + "."
}

// typeNAPTR is RFC 3403's record type, which dnsmessage does not name.
const typeNAPTR dnsmessage.Type = 35

// answer builds the response to one query; false for garbage.
func (d *DNS) answer(msg []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil || h.Response {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	name := fqdn(q.Name.String())
	d.mu.Lock()
	qt := strings.TrimPrefix(q.Type.String(), "Type")
	if q.Type == typeNAPTR {
		qt = "NAPTR"
	}
	d.queries = append(d.queries, qt+" "+name)
	d.mu.Unlock()

	addrs, hasA := d.a[name]
	srvs, hasSRV := d.srv[name]
	naptrs, hasNAPTR := d.naptr[name]
	rh := dnsmessage.Header{ID: h.ID, Response: true, OpCode: h.OpCode, Authoritative: true,
		RecursionDesired: h.RecursionDesired}
	if !hasA && !hasSRV && !hasNAPTR {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), rh)
	b.EnableCompression()
	if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
		return nil, false
	}
	rr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 5}
	switch q.Type {
	case dnsmessage.TypeA, dnsmessage.TypeAAAA:
		for _, a := range addrs {
			switch {
			case a.Is4() && q.Type == dnsmessage.TypeA:
				err = b.AResource(rr, dnsmessage.AResource{A: a.As4()})
			case a.Is6() && q.Type == dnsmessage.TypeAAAA:
				err = b.AAAAResource(rr, dnsmessage.AAAAResource{AAAA: a.As16()})
			}
			if err != nil {
				return nil, false
			}
		}
	case typeNAPTR:
		for _, n := range naptrs {
			data, ok := n.rdata()
			if !ok {
				return nil, false
			}
			nrr := rr
			nrr.Type = typeNAPTR
			if err := b.UnknownResource(nrr, dnsmessage.UnknownResource{Type: typeNAPTR, Data: data}); err != nil {
				return nil, false
			}
		}
	case dnsmessage.TypeSRV:
		for _, s := range srvs {
			target, err := dnsmessage.NewName(fqdn(s.Target)) // "." stays "."
			if err != nil {
				return nil, false
			}
			if err := b.SRVResource(rr, dnsmessage.SRVResource{Priority: s.Priority, Weight: s.Weight,
				Port: s.Port, Target: target}); err != nil {
				return nil, false
			}
		}
	}
	out, err := b.Finish()
	return out, err == nil
}
