package sipdns

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Errors of Resolve. A name that does not exist or has no usable record
// is ErrNotFound (a SIP "404"); a name whose SIP service is decidedly
// absent (a lone SRV target ".") is ErrNoService; a name server that
// does not answer is neither (a SIP "503").
var (
	ErrNotFound  = errors.New("sipdns: no such name or no address")
	ErrNoService = errors.New("sipdns: no SIP service at this name (SRV target \".\")")
	ErrTransport = errors.New("sipdns: transport not supported")
)

// maxTargets bounds the list Resolve returns: failover tries them one by
// one, and nobody waits for 32 timeouts.
const maxTargets = 32

// Target is one place a request can go.
type Target struct {
	Transport string         // "UDP", "TCP" or "TLS"
	Addr      netip.AddrPort // where to send
	// Host is the name the address was found for (an SRV target, or the
	// queried name); an IP literal's is the IP.
	Host string
}

func (t Target) String() string { return t.Transport + ":" + t.Addr.String() }

// Query is what to locate: a SIP URI's host, port and transport.
type Query struct {
	Host string // a name or an IP literal
	Port uint16 // 0: the URI has none
	// Transport is "UDP", "TCP" or "TLS"; "": the URI names none, and DNS
	// (NAPTR) chooses.
	Transport string
	Secure    bool // a sips: URI: TLS only (RFC 3263 §4.1)
}

// Result is Resolve's answer.
type Result struct {
	Targets []Target // in the order to try them
	// TTL is the shortest lifetime of the records used: look again after
	// it. 0 for an IP literal (nothing to look up again).
	TTL time.Duration
}

// Config tunes a Resolver; the zero value reads the system's files.
type Config struct {
	// Servers are name servers ("ip:port"); empty: those of ResolvConf.
	Servers    []string
	ResolvConf string // default /etc/resolv.conf
	Hosts      string // default /etc/hosts; "-": none
	// Transports are those we can send over, in no particular order;
	// empty: UDP, TCP and TLS.
	Transports []string
	Timeout    time.Duration // one query to one server; default 2s
	Attempts   int           // rounds over the servers; default 2
	CacheSize  int           // answers kept; default 2048
	Now        func() time.Time
	RandN      func(n int) int // [0, n), for SRV weights; default math/rand/v2
}

// Resolver locates SIP servers. It is safe for concurrent use.
type Resolver struct {
	cfg        Config
	transports map[string]bool
	cache      *cache
	hosts      *hostsFile

	confMu   sync.Mutex
	conf     *dns.ClientConfig
	confErr  error
	confRead time.Time
}

// New makes a resolver.
func New(cfg Config) *Resolver {
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = "/etc/resolv.conf"
	}
	if cfg.Hosts == "" {
		cfg.Hosts = "/etc/hosts"
	}
	if len(cfg.Transports) == 0 {
		cfg.Transports = []string{"UDP", "TCP", "TLS"}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 2
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 2048
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RandN == nil {
		cfg.RandN = rand.IntN
	}
	r := &Resolver{cfg: cfg, transports: map[string]bool{}, cache: newCache(cfg.CacheSize)}
	for _, t := range cfg.Transports {
		r.transports[strings.ToUpper(t)] = true
	}
	if cfg.Hosts != "-" {
		r.hosts = &hostsFile{path: cfg.Hosts}
	}
	return r
}

// DefaultPort is RFC 3263 §4.2's port for a transport.
func DefaultPort(transport string) uint16 {
	if strings.EqualFold(transport, "TLS") {
		return 5061
	}
	return 5060
}

// Resolve locates q's servers (RFC 3263 §4):
//
//   - an IP literal is the target itself, over q's transport (else UDP,
//     TLS for sips), at q's port or the transport's default;
//   - a name with a port: its A/AAAA records at that port;
//   - a name with a transport but no port: the SRV records of that
//     transport, else A/AAAA at its default port;
//   - a name with neither: NAPTR (SIP+D2U, SIP+D2T, SIPS+D2T with flag
//     "S", by order and preference) to SRV names; with no usable NAPTR,
//     SRV for _sips._tcp, _sip._tcp and _sip._udp; with none of those,
//     A/AAAA over UDP (TLS for sips) at the default port.
//
// Each SRV name's records are tried by priority and weight (RFC 2782),
// each target's IPv4 addresses before IPv6. Transports we do not support
// are skipped.
func (r *Resolver) Resolve(ctx context.Context, q Query) (Result, error) {
	host := strings.TrimSuffix(strings.Trim(q.Host, "[]"), ".")
	tp := strings.ToUpper(q.Transport)
	if host == "" {
		return Result{}, fmt.Errorf("sipdns: empty host")
	}
	if tp != "" && !r.allowed(q.Secure)(tp) {
		return Result{}, fmt.Errorf("%w: %s", ErrTransport, q.Transport)
	}
	plain := "UDP" // RFC 3263 §4.1: the default without NAPTR
	if q.Secure {
		plain = "TLS"
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if tp == "" {
			tp = plain
		}
		port := q.Port
		if port == 0 {
			port = DefaultPort(tp)
		}
		return Result{Targets: []Target{{Transport: tp, Addr: netip.AddrPortFrom(ip.Unmap(), port), Host: ip.String()}}}, nil
	}
	if _, ok := dns.IsDomainName(host); !ok {
		return Result{}, fmt.Errorf("sipdns: %q is not a domain name", host)
	}
	l := &lookup{r: r, ctx: ctx, ttl: maxTTL}
	if q.Port != 0 {
		if tp == "" {
			tp = plain
		}
		l.addresses(host, tp, q.Port)
		return l.result()
	}
	if tp != "" {
		if l.srv(srvName(tp, host), tp) || l.noService {
			return l.result()
		}
		l.addresses(host, tp, DefaultPort(tp))
		return l.result()
	}
	// RFC 3263 §4.1: NAPTR first.
	recs, _ := l.query(host, dns.TypeNAPTR)
	for _, n := range usableNAPTR(recs.naptr, r.allowed(q.Secure)) {
		l.srv(n.replacement, naptrServices[strings.ToUpper(n.service)])
	}
	if len(l.out) > 0 {
		return l.result()
	}
	// No (usable) NAPTR: SRV for each transport we support.
	found := false
	for _, t := range []string{"TLS", "TCP", "UDP"} {
		if r.allowed(q.Secure)(t) && l.srv(srvName(t, host), t) {
			found = true
		}
	}
	if found || l.noService {
		// "." says there is no SIP server at all: not even at the
		// domain's own address.
		return l.result()
	}
	if !r.allowed(q.Secure)(plain) {
		return Result{}, fmt.Errorf("%w: %s", ErrTransport, plain)
	}
	l.addresses(host, plain, DefaultPort(plain))
	return l.result()
}

// allowed says which transports a query may use.
func (r *Resolver) allowed(secure bool) func(string) bool {
	return func(tp string) bool {
		tp = strings.ToUpper(tp)
		return r.transports[tp] && (!secure || tp == "TLS")
	}
}

// srvName is the SRV owner name for transport tp at host (RFC 3263 §4.1).
func srvName(tp, host string) string {
	switch strings.ToUpper(tp) {
	case "TLS":
		return "_sips._tcp." + host
	case "TCP":
		return "_sip._tcp." + host
	}
	return "_sip._udp." + host
}

// lookup is one Resolve in progress.
type lookup struct {
	r   *Resolver
	ctx context.Context
	out []Target
	ttl time.Duration
	// What went wrong, for the error when nothing is found.
	failed    error // a name server failure
	noService bool
	seen      map[Target]bool
}

func (l *lookup) result() (Result, error) {
	if len(l.out) > 0 {
		return Result{Targets: l.out, TTL: l.ttl}, nil
	}
	switch {
	case l.failed != nil:
		return Result{}, l.failed
	case l.noService:
		return Result{}, ErrNoService
	}
	return Result{}, ErrNotFound
}

func (l *lookup) add(t Target) {
	if l.seen == nil {
		l.seen = map[Target]bool{}
	}
	if len(l.out) >= maxTargets || l.seen[t] {
		return
	}
	l.seen[t] = true
	l.out = append(l.out, t)
}

// query asks (cache first) and keeps the shortest TTL of what was used;
// a failure is remembered for the final error.
func (l *lookup) query(name string, qtype uint16) (answer, error) {
	a, err := l.r.query(l.ctx, name, qtype)
	switch {
	case err == nil:
		if a.ttl > 0 && (len(a.naptr)+len(a.srv)+len(a.addrs) > 0) {
			l.ttl = min(l.ttl, a.ttl)
		}
	case !errors.Is(err, errNXDomain) && l.failed == nil:
		l.failed = err
	}
	return a, err
}

// srv adds the targets of SRV name over tp; true when the name had SRV
// records (even if none of their targets had an address).
func (l *lookup) srv(name, tp string) bool {
	a, err := l.query(name, dns.TypeSRV)
	if err != nil || len(a.srv) == 0 {
		return false
	}
	if len(a.srv) == 1 && a.srv[0].target == "." {
		// RFC 2782: the service is decidedly not available at this domain.
		l.noService = true
		return false
	}
	for _, s := range orderSRV(a.srv, l.r.cfg.RandN) {
		if s.target == "." || s.port == 0 {
			continue
		}
		l.addresses(strings.TrimSuffix(s.target, "."), tp, s.port)
	}
	return true
}

// addresses adds name's addresses (hosts file, else A then AAAA) at port.
func (l *lookup) addresses(name, tp string, port uint16) {
	for _, ip := range l.ips(name) {
		l.add(Target{Transport: tp, Addr: netip.AddrPortFrom(ip, port), Host: name})
	}
}

func (l *lookup) ips(name string) []netip.Addr {
	if l.r.hosts != nil {
		if ips := l.r.hosts.lookup(name, l.r.cfg.Now()); len(ips) > 0 {
			return ips
		}
	}
	var out []netip.Addr
	if a, err := l.query(name, dns.TypeA); err == nil {
		out = append(out, a.addrs...)
	}
	if a, err := l.query(name, dns.TypeAAAA); err == nil {
		out = append(out, a.addrs...)
	}
	return out
}
