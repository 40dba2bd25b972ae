package sipdns

import (
	"errors"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Limits on what one answer may contribute: a hostile or broken name
// server must not make us allocate or dial without bound.
const (
	maxRecords   = 64 // records of the asked type kept from one answer
	maxCNAMEHops = 8  // CNAMEs followed inside one answer
	maxTTL       = time.Hour
	maxNegTTL    = 5 * time.Minute
)

// naptrRec is a NAPTR record (RFC 3403 §4.1) reduced to what RFC 3263
// uses.
type naptrRec struct {
	order, pref uint16
	flags       string
	service     string
	regexp      string
	replacement string // FQDN, lower case
}

// srvRec is an SRV record (RFC 2782).
type srvRec struct {
	priority, weight, port uint16
	target                 string // FQDN, lower case; "." is "no service"
}

// answer is what one DNS response says about one question.
type answer struct {
	naptr []naptrRec
	srv   []srvRec
	addrs []netip.Addr
	ttl   time.Duration // how long it may be cached and used
}

// errNXDomain is the name server's "no such name" (RCODE 3).
var errNXDomain = errors.New("no such name")

// errBadAnswer is an answer that does not belong to the question or
// that the server marked as failed.
var errBadAnswer = errors.New("unusable answer")

// parseAnswer reads the response to the question (qname, qtype): the
// records of qtype owned by qname or by the end of a CNAME chain that
// starts at qname, all inside the answer section. Records for any other
// owner are ignored (RFC 2181 §5.4.1: a response may not vouch for
// names it was not asked about). NXDOMAIN is errNXDomain; an empty
// NOERROR answer (NODATA) is no records and no error. Both negative
// answers carry the SOA's negative TTL (RFC 2308 §5).
func parseAnswer(m *dns.Msg, qname string, qtype uint16) (answer, error) {
	qname = canonical(qname)
	if m == nil || !m.Response || len(m.Question) != 1 ||
		canonical(m.Question[0].Name) != qname || m.Question[0].Qtype != qtype {
		return answer{}, errBadAnswer
	}
	switch m.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return answer{ttl: negTTL(m)}, errNXDomain
	default:
		return answer{}, errBadAnswer
	}
	// Follow the CNAME chain from the question's name.
	owner := qname
	for hops := 0; hops < maxCNAMEHops; hops++ {
		next := ""
		for _, rr := range m.Answer {
			if c, ok := rr.(*dns.CNAME); ok && canonical(c.Hdr.Name) == owner {
				next = canonical(c.Target)
				break
			}
		}
		if next == "" || next == owner {
			break
		}
		owner = next
	}
	a := answer{}
	ttl := uint32(maxTTL / time.Second)
	n := 0
	for _, rr := range m.Answer {
		h := rr.Header()
		if h == nil || h.Rrtype != qtype || h.Class != dns.ClassINET || canonical(h.Name) != owner {
			continue
		}
		if n >= maxRecords {
			break
		}
		switch r := rr.(type) {
		case *dns.NAPTR:
			a.naptr = append(a.naptr, naptrRec{order: r.Order, pref: r.Preference, flags: r.Flags,
				service: r.Service, regexp: r.Regexp, replacement: canonical(r.Replacement)})
		case *dns.SRV:
			a.srv = append(a.srv, srvRec{priority: r.Priority, weight: r.Weight, port: r.Port, target: canonical(r.Target)})
		case *dns.A:
			ip, ok := netip.AddrFromSlice(r.A)
			if !ok {
				continue
			}
			a.addrs = append(a.addrs, ip.Unmap())
		case *dns.AAAA:
			ip, ok := netip.AddrFromSlice(r.AAAA)
			if !ok || ip.Is4In6() {
				continue // an IPv4 address in an AAAA record is not IPv6
			}
			a.addrs = append(a.addrs, ip)
		default:
			continue
		}
		n++
		ttl = min(ttl, h.Ttl)
	}
	if n == 0 {
		a.ttl = negTTL(m)
		return a, nil
	}
	a.ttl = time.Duration(ttl) * time.Second
	return a, nil
}

// negTTL is how long a negative answer is kept: the SOA's TTL bounded by
// its MINIMUM field (RFC 2308 §5); without an SOA, not at all (RFC 2308
// §5: such answers SHOULD NOT be cached).
func negTTL(m *dns.Msg) time.Duration {
	for _, rr := range m.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return min(time.Duration(min(soa.Hdr.Ttl, soa.Minttl))*time.Second, maxNegTTL)
		}
	}
	return 0
}

// canonical is name as a lower-case FQDN.
func canonical(name string) string {
	return strings.ToLower(dns.Fqdn(name))
}

// naptrServices maps RFC 3263 §4.1's NAPTR services to our transport
// names.
var naptrServices = map[string]string{
	"SIP+D2U":  "UDP",
	"SIP+D2T":  "TCP",
	"SIPS+D2T": "TLS",
}

// usableNAPTR keeps the records RFC 3263 lets us follow, in the order to
// try them: order, then preference (RFC 3403 §4.1). Only the "S" flag
// (the replacement is an SRV name) with no regexp, for a service whose
// transport allowed accepts; the others are skipped (RFC 3263 §4.1: a
// client discards records for transports it does not support).
func usableNAPTR(recs []naptrRec, allowed func(transport string) bool) []naptrRec {
	var out []naptrRec
	for _, r := range recs {
		tp, ok := naptrServices[strings.ToUpper(r.service)]
		if !ok || !allowed(tp) || !strings.EqualFold(r.flags, "s") || r.regexp != "" ||
			r.replacement == "." || r.replacement == "" {
			continue
		}
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].order != out[j].order {
			return out[i].order < out[j].order
		}
		return out[i].pref < out[j].pref
	})
	return out
}

// orderSRV puts SRV records in the order to try them (RFC 2782): by
// priority, and inside one priority a weighted random order: each next
// record is picked with a probability proportional to its weight, weight
// 0 having a small chance. randN returns a number in [0, n).
func orderSRV(recs []srvRec, randN func(n int) int) []srvRec {
	recs = append([]srvRec(nil), recs...)
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].priority < recs[j].priority })
	out := make([]srvRec, 0, len(recs))
	for start := 0; start < len(recs); {
		end := start
		for end < len(recs) && recs[end].priority == recs[start].priority {
			end++
		}
		group := recs[start:end]
		// Weight 0 first (RFC 2782), so that they are chosen only when
		// the draw is 0 or nothing else is left.
		sort.SliceStable(group, func(i, j int) bool { return group[i].weight == 0 && group[j].weight != 0 })
		for len(group) > 0 {
			sum := 0
			for _, r := range group {
				sum += int(r.weight)
			}
			pick := randN(sum + 1)
			i, run := 0, 0
			for i = range group {
				run += int(group[i].weight)
				if run >= pick {
					break
				}
			}
			out = append(out, group[i])
			group = append(group[:i:i], group[i+1:]...)
		}
		start = end
	}
	return out
}
