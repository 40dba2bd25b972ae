package auth

import (
	"net/netip"
	"sync"
	"time"
)

// BanConfig sets how authentication failures turn into bans.
type BanConfig struct {
	Failures int           // failures within Window that ban a source
	Window   time.Duration // counting window
	BanTime  time.Duration // how long a ban lasts
	Trusted  []netip.Prefix
	// TrustedFunc, if set, trusts more sources (the trunks' addresses).
	TrustedFunc func(netip.Addr) bool
}

// BanEvents are hooks called on ban changes (may be nil).
type BanEvents struct {
	// OnBan is called for every new ban (not for Restore), outside the
	// table's lock.
	OnBan func(BanInfo)
}

// BanInfo describes one ban.
type BanInfo struct {
	IP       netip.Addr
	Until    time.Time
	Reason   string
	Offences int // bans of this source so far, this one included
	Failures int // authentication failures that led to it (0 for others)
}

// Ban reasons.
const (
	ReasonAuthFailures = "authentication failures"
	ReasonScanner      = "SIP scanner"
	ReasonFlood        = "request flood"
)

type banEntry struct {
	windowStart time.Time
	failures    int
	until       time.Time
	offences    int // bans so far: each lasts twice the one before
	reason      string
}

// maxBan caps escalating bans.
const maxBan = 24 * time.Hour

// banFor is how long the n-th ban of a source lasts: the ban time, doubled
// for each ban before it (escalating), at most maxBan (or the ban time,
// when that is longer).
func (b *Bans) banFor(n int) time.Duration {
	d := b.cfg.BanTime
	for i := 1; i < n && d < maxBan; i++ {
		d *= 2
	}
	return min(d, max(maxBan, b.cfg.BanTime))
}

// Bans counts failures per source IP and bans sources that fail too often.
type Bans struct {
	cfg    BanConfig
	events BanEvents
	now    func() time.Time

	mu sync.Mutex
	m  map[netip.Addr]*banEntry
}

// NewBans makes an empty ban table.
func NewBans(cfg BanConfig, ev BanEvents, now func() time.Time) *Bans {
	return &Bans{cfg: cfg, events: ev, now: now, m: make(map[netip.Addr]*banEntry)}
}

func (b *Bans) trusted(ip netip.Addr) bool {
	for _, p := range b.cfg.Trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return b.cfg.TrustedFunc != nil && b.cfg.TrustedFunc(ip)
}

// Banned reports whether ip is banned now. It is cheap enough for every packet.
func (b *Bans) Banned(ip netip.Addr) bool {
	b.mu.Lock()
	e, ok := b.m[ip]
	banned := ok && !e.until.IsZero() && b.now().Before(e.until)
	b.mu.Unlock()
	return banned
}

// Fail records one authentication failure from ip and reports whether it is now banned.
func (b *Bans) Fail(ip netip.Addr) bool {
	ip = ip.Unmap()
	if b.trusted(ip) {
		return false
	}
	now := b.now()
	b.mu.Lock()
	e, ok := b.m[ip]
	if !ok {
		e = &banEntry{windowStart: now}
		b.m[ip] = e
	}
	if !e.until.IsZero() && now.Before(e.until) {
		b.mu.Unlock()
		return true
	}
	if now.Sub(e.windowStart) > b.cfg.Window || !e.until.IsZero() {
		e.windowStart, e.failures, e.until = now, 0, time.Time{}
	}
	e.failures++
	banned := false
	var info BanInfo
	if e.failures >= b.cfg.Failures {
		e.offences++
		e.until = now.Add(b.banFor(e.offences))
		e.reason = ReasonAuthFailures
		banned = true
		info = BanInfo{IP: ip, Until: e.until, Reason: e.reason, Offences: e.offences, Failures: e.failures}
	}
	b.mu.Unlock()
	if banned && b.events.OnBan != nil {
		b.events.OnBan(info)
	}
	return banned
}

// Count returns the number of sources banned now.
func (b *Bans) Count() int {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, e := range b.m {
		if now.Before(e.until) {
			n++
		}
	}
	return n
}

// Sweep forgets entries that are neither banned nor inside a window; a
// source that was banned is remembered for a day after its ban, so that
// its next ban is longer.
func (b *Bans) Sweep() {
	now := b.now()
	b.mu.Lock()
	for ip, e := range b.m {
		if now.After(e.until) && now.Sub(e.windowStart) > b.cfg.Window && (e.offences == 0 || now.Sub(e.until) > maxBan) {
			delete(b.m, ip)
		}
	}
	b.mu.Unlock()
}

// Ban bans ip now for the ban time, whatever its failure count (a source
// that has shown itself hostile: a SIP scanner, say), and reports whether
// it did: a trusted source is never banned.
func (b *Bans) Ban(ip netip.Addr, reason string) bool {
	ip = ip.Unmap()
	if b.trusted(ip) {
		return false
	}
	now := b.now()
	b.mu.Lock()
	e, ok := b.m[ip]
	if !ok {
		e = &banEntry{windowStart: now}
		b.m[ip] = e
	}
	already := !e.until.IsZero() && now.Before(e.until)
	var info BanInfo
	if !already {
		e.offences++
		e.until = now.Add(b.banFor(e.offences))
		e.reason = reason
		info = BanInfo{IP: ip, Until: e.until, Reason: reason, Offences: e.offences, Failures: e.failures}
	}
	b.mu.Unlock()
	if !already && b.events.OnBan != nil {
		b.events.OnBan(info)
	}
	return true
}

// Restore puts back a ban kept elsewhere (the store, written by an
// earlier run, another node or `kaopu ban add`) without calling OnBan.
// A longer ban or more offences already known here win.
func (b *Bans) Restore(bi BanInfo) {
	ip := bi.IP.Unmap()
	if b.trusted(ip) || !b.now().Before(bi.Until) && bi.Offences == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.m[ip]
	if !ok {
		e = &banEntry{windowStart: b.now()}
		b.m[ip] = e
	}
	if bi.Until.After(e.until) {
		e.until, e.reason = bi.Until, bi.Reason
	}
	e.offences = max(e.offences, bi.Offences)
}

// Lift ends the ban of ip and forgets its history (an operator's pardon);
// false when ip was not banned.
func (b *Bans) Lift(ip netip.Addr) bool {
	ip = ip.Unmap()
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.m[ip]
	if !ok {
		return false
	}
	delete(b.m, ip)
	return b.now().Before(e.until)
}

// Active lists the sources banned now.
func (b *Bans) Active() []BanInfo {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []BanInfo
	for ip, e := range b.m {
		if now.Before(e.until) {
			out = append(out, BanInfo{IP: ip, Until: e.until, Reason: e.reason, Offences: e.offences, Failures: e.failures})
		}
	}
	return out
}
