package auth

import (
	"net/netip"
	"sync"
	"time"
)

// RateConfig limits how many requests one source IP may send.
type RateConfig struct {
	PerSecond float64 // sustained rate; 0 turns the limiter off
	Burst     float64 // bucket size; at least PerSecond
	// BanAfter bans a source once this many of its requests have been
	// refused within the bucket's refill of a minute (a flood, not a
	// burst); 0 never bans.
	BanAfter int
	Trusted  []netip.Prefix
	// TrustedFunc, if set, trusts more sources (the trunks' addresses).
	TrustedFunc func(netip.Addr) bool
	// MaxSources bounds the table (spoofed floods name many sources);
	// when it is full, new sources are let through unlimited until the
	// next Sweep rather than growing memory.
	MaxSources int
}

type bucket struct {
	tokens  float64
	last    time.Time
	refused int       // since windowStart
	window  time.Time // start of the refusal count
}

// Rate is a token bucket per source IP. It is safe for concurrent use.
type Rate struct {
	cfg RateConfig
	now func() time.Time
	ban func(netip.Addr) bool // nil: no bans

	mu sync.Mutex
	m  map[netip.Addr]*bucket
}

// NewRate makes a limiter; ban (may be nil) bans a flooding source.
func NewRate(cfg RateConfig, ban func(netip.Addr) bool, now func() time.Time) *Rate {
	cfg.Burst = max(cfg.Burst, cfg.PerSecond)
	if cfg.MaxSources <= 0 {
		cfg.MaxSources = 100_000
	}
	return &Rate{cfg: cfg, now: now, ban: ban, m: make(map[netip.Addr]*bucket)}
}

// rateWindow is how long refusals add up toward a ban.
const rateWindow = time.Minute

// Allow takes one request from ip and reports whether it may be served.
func (r *Rate) Allow(ip netip.Addr) bool {
	if r == nil || r.cfg.PerSecond <= 0 {
		return true
	}
	for _, p := range r.cfg.Trusted {
		if p.Contains(ip) {
			return true
		}
	}
	if r.cfg.TrustedFunc != nil && r.cfg.TrustedFunc(ip) {
		return true
	}
	now := r.now()
	r.mu.Lock()
	b, ok := r.m[ip]
	if !ok {
		if len(r.m) >= r.cfg.MaxSources {
			r.mu.Unlock()
			return true
		}
		b = &bucket{tokens: r.cfg.Burst, last: now, window: now}
		r.m[ip] = b
	}
	b.tokens = min(r.cfg.Burst, b.tokens+now.Sub(b.last).Seconds()*r.cfg.PerSecond)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		r.mu.Unlock()
		return true
	}
	if now.Sub(b.window) > rateWindow {
		b.window, b.refused = now, 0
	}
	b.refused++
	ban := r.cfg.BanAfter > 0 && b.refused == r.cfg.BanAfter
	r.mu.Unlock()
	if ban && r.ban != nil {
		r.ban(ip)
	}
	return false
}

// Sweep forgets sources whose bucket is full again and that have nothing
// refused to count.
func (r *Rate) Sweep() {
	if r == nil {
		return
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for ip, b := range r.m {
		full := b.tokens+now.Sub(b.last).Seconds()*r.cfg.PerSecond >= r.cfg.Burst
		if full && now.Sub(b.window) > rateWindow {
			delete(r.m, ip)
		}
	}
}
