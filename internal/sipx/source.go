package sipx

import (
	"net/netip"
	"sync"
)

// PerSource counts something a source IP holds (server transactions,
// calls being set up, connections) and refuses more than Max at once. A
// source in Trusted is counted but never refused. The zero Max means no
// cap. It is safe for concurrent use; the table holds only sources that
// hold something, so it cannot grow past what the sources hold.
type PerSource struct {
	Max     int
	Trusted []netip.Prefix
	// TrustedFunc, if set, trusts more sources (the trunks' addresses).
	TrustedFunc func(netip.Addr) bool

	mu sync.Mutex
	m  map[netip.Addr]int
}

// Acquire takes one slot for ip; false (and nothing taken) when ip holds
// Max already. Every true must be matched by one Release.
func (p *PerSource) Acquire(ip netip.Addr) bool {
	ip = ip.Unmap()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = make(map[netip.Addr]int)
	}
	n := p.m[ip]
	if p.Max > 0 && n >= p.Max && !p.trusted(ip) {
		return false
	}
	p.m[ip] = n + 1
	return true
}

// Release gives back a slot taken by Acquire.
func (p *PerSource) Release(ip netip.Addr) {
	ip = ip.Unmap()
	p.mu.Lock()
	defer p.mu.Unlock()
	switch n := p.m[ip]; {
	case n > 1:
		p.m[ip] = n - 1
	case n == 1:
		delete(p.m, ip)
	}
}

// Held is how many slots ip holds.
func (p *PerSource) Held(ip netip.Addr) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m[ip.Unmap()]
}

// Total is how many slots all sources hold.
func (p *PerSource) Total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, v := range p.m {
		n += v
	}
	return n
}

func (p *PerSource) trusted(ip netip.Addr) bool {
	for _, t := range p.Trusted {
		if t.Contains(ip) {
			return true
		}
	}
	return p.TrustedFunc != nil && p.TrustedFunc(ip)
}
