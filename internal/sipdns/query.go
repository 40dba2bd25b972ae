package sipdns

import (
	"bufio"
	"container/list"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// reread is how often /etc/resolv.conf and /etc/hosts are checked for
// changes.
const reread = 5 * time.Second

// query returns the answer to (name, qtype) from the cache or the name
// servers. A negative answer (NXDOMAIN) is cached too.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) (answer, error) {
	key := cacheKey{name: canonical(name), qtype: qtype}
	now := r.cfg.Now()
	if a, err, ok := r.cache.get(key, now); ok {
		return a, err
	}
	a, err := r.exchange(ctx, key.name, qtype)
	if err == nil || errors.Is(err, errNXDomain) {
		if a.ttl > 0 {
			r.cache.put(key, a, err, now.Add(a.ttl))
		}
	}
	return a, err
}

// exchange asks the name servers in turn, Attempts rounds, until one
// gives a usable answer; a truncated UDP answer is asked again over TCP.
func (r *Resolver) exchange(ctx context.Context, name string, qtype uint16) (answer, error) {
	servers, err := r.servers()
	if err != nil {
		return answer{}, err
	}
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = true
	m.SetEdns0(1232, false) // RFC 9715's safe UDP size: large NAPTR sets fit
	last := errors.New("no name server")
	for attempt := 0; attempt < r.cfg.Attempts; attempt++ {
		for _, s := range servers {
			if ctx.Err() != nil {
				return answer{}, fmt.Errorf("sipdns: %s %s: %w", dns.TypeToString[qtype], name, ctx.Err())
			}
			res, err := r.ask(ctx, "udp", s, m)
			if err == nil && res.Truncated {
				res, err = r.ask(ctx, "tcp", s, m)
			}
			if err != nil {
				last = err
				continue
			}
			a, err := parseAnswer(res, name, qtype)
			if err == nil || errors.Is(err, errNXDomain) {
				return a, err
			}
			last = fmt.Errorf("%s answered %s", s, dns.RcodeToString[res.Rcode])
		}
	}
	return answer{}, fmt.Errorf("sipdns: %s %s: %w", dns.TypeToString[qtype], name, last)
}

func (r *Resolver) ask(ctx context.Context, network, server string, m *dns.Msg) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: r.cfg.Timeout, UDPSize: 1232}
	qctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	res, _, err := c.ExchangeContext(qctx, m.Copy(), server)
	return res, err
}

// servers are the configured name servers, else resolv.conf's (read
// again when it changes).
func (r *Resolver) servers() ([]string, error) {
	if len(r.cfg.Servers) > 0 {
		return r.cfg.Servers, nil
	}
	r.confMu.Lock()
	defer r.confMu.Unlock()
	now := r.cfg.Now()
	if r.conf == nil && r.confErr == nil || now.Sub(r.confRead) > reread {
		r.confRead = now
		c, err := dns.ClientConfigFromFile(r.cfg.ResolvConf)
		if err == nil && len(c.Servers) == 0 {
			err = errors.New("no nameserver line")
		}
		if err != nil {
			r.conf, r.confErr = nil, fmt.Errorf("sipdns: %s: %w", r.cfg.ResolvConf, err)
		} else {
			r.conf, r.confErr = c, nil
		}
	}
	if r.confErr != nil {
		return nil, r.confErr
	}
	out := make([]string, 0, len(r.conf.Servers))
	for _, s := range r.conf.Servers {
		out = append(out, net.JoinHostPort(s, r.conf.Port))
	}
	return out, nil
}

// cacheKey is one question.
type cacheKey struct {
	name  string
	qtype uint16
}

type cacheEntry struct {
	key     cacheKey
	a       answer
	err     error
	expires time.Time
}

// cache keeps answers until their TTL runs out, at most size of them:
// the least recently used goes first.
type cache struct {
	mu    sync.Mutex
	size  int
	order *list.List // front: most recently used
	byKey map[cacheKey]*list.Element
}

func newCache(size int) *cache {
	return &cache{size: size, order: list.New(), byKey: map[cacheKey]*list.Element{}}
}

func (c *cache) get(k cacheKey, now time.Time) (answer, error, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[k]
	if !ok {
		return answer{}, nil, false
	}
	ent := e.Value.(*cacheEntry)
	if !now.Before(ent.expires) {
		c.order.Remove(e)
		delete(c.byKey, k)
		return answer{}, nil, false
	}
	c.order.MoveToFront(e)
	a := ent.a
	// What is left of the TTL: a caller refreshing on it must not wait
	// for the whole of it again.
	a.ttl = ent.expires.Sub(now).Truncate(time.Second)
	if a.ttl <= 0 {
		a.ttl = time.Second
	}
	return a, ent.err, true
}

func (c *cache) put(k cacheKey, a answer, err error, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[k]; ok {
		e.Value = &cacheEntry{key: k, a: a, err: err, expires: expires}
		c.order.MoveToFront(e)
		return
	}
	for c.order.Len() >= c.size {
		old := c.order.Back()
		c.order.Remove(old)
		delete(c.byKey, old.Value.(*cacheEntry).key)
	}
	c.byKey[k] = c.order.PushFront(&cacheEntry{key: k, a: a, err: err, expires: expires})
}

// hostsFile is /etc/hosts, read again when it changes.
type hostsFile struct {
	path string

	mu      sync.Mutex
	checked time.Time
	mtime   time.Time
	byName  map[string][]netip.Addr
}

// lookup returns name's addresses in the file, IPv4 first.
func (h *hostsFile) lookup(name string, now time.Time) []netip.Addr {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.byName == nil || now.Sub(h.checked) > reread {
		h.checked = now
		if st, err := os.Stat(h.path); err != nil {
			h.byName = map[string][]netip.Addr{}
		} else if h.byName == nil || !st.ModTime().Equal(h.mtime) {
			h.mtime = st.ModTime()
			h.byName = readHosts(h.path)
		}
	}
	ips := h.byName[canonical(name)]
	var v4, v6 []netip.Addr
	for _, ip := range ips {
		if ip.Is4() {
			v4 = append(v4, ip)
		} else {
			v6 = append(v6, ip)
		}
	}
	return append(v4, v6...)
}

// readHosts parses a hosts(5) file: "address name [aliases...]".
func readHosts(path string) map[string][]netip.Addr {
	out := map[string][]netip.Addr{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		ip, err := netip.ParseAddr(fields[0])
		if err != nil {
			continue
		}
		ip = ip.Unmap().WithZone("")
		for _, n := range fields[1:] {
			k := canonical(n)
			out[k] = append(out[k], ip)
		}
	}
	return out
}
