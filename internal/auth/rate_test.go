package auth

import (
	"net/netip"
	"testing"
	"time"
)

func TestRate(t *testing.T) {
	ck := &clock{time.Unix(1_700_000_000, 0)}
	var banned []netip.Addr
	r := NewRate(RateConfig{PerSecond: 10, Burst: 20, BanAfter: 50,
		Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		func(ip netip.Addr) bool { banned = append(banned, ip); return true }, ck.now)
	ip := netip.MustParseAddr("198.51.100.1")
	allowed := 0
	for range 100 {
		if r.Allow(ip) {
			allowed++
		}
	}
	if allowed != 20 {
		t.Fatalf("a burst of 100 at once: %d allowed, want the bucket's 20", allowed)
	}
	ck.t = ck.t.Add(time.Second)
	allowed = 0
	for range 100 {
		if r.Allow(ip) {
			allowed++
		}
	}
	if allowed != 10 {
		t.Fatalf("a second later: %d allowed, want 10 (the rate)", allowed)
	}
	// 80 + 90 refused within the minute: banned once, at the 50th.
	if len(banned) != 1 || banned[0] != ip {
		t.Fatalf("bans %v, want %v once", banned, ip)
	}
	// Another source has its own bucket; a trusted one is never limited.
	if !r.Allow(netip.MustParseAddr("198.51.100.2")) {
		t.Fatal("a second source was limited by the first one's flood")
	}
	for range 1000 {
		if !r.Allow(netip.MustParseAddr("10.1.2.3")) {
			t.Fatal("a trusted source was limited")
		}
	}
	// Idle sources are forgotten.
	ck.t = ck.t.Add(2 * time.Minute)
	r.Sweep()
	if n := len(r.m); n != 0 {
		t.Fatalf("%d sources kept after sweep, want 0", n)
	}
	// Off: everything allowed.
	var off *Rate
	if !off.Allow(ip) || !NewRate(RateConfig{}, nil, ck.now).Allow(ip) {
		t.Fatal("a disabled limiter refused")
	}
}

func TestRateTableBounded(t *testing.T) {
	ck := &clock{time.Unix(1_700_000_000, 0)}
	r := NewRate(RateConfig{PerSecond: 1, Burst: 1, MaxSources: 100}, nil, ck.now)
	for i := range 1000 {
		r.Allow(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}))
	}
	if n := len(r.m); n != 100 {
		t.Fatalf("%d sources tracked, want the bound of 100", n)
	}
}

func TestBansEscalate(t *testing.T) {
	ck := &clock{time.Unix(1_700_000_000, 0)}
	b := NewBans(BanConfig{Failures: 1, Window: time.Minute, BanTime: 10 * time.Minute}, BanEvents{}, ck.now)
	ip := netip.MustParseAddr("198.51.100.7")
	for i, want := range []time.Duration{10 * time.Minute, 20 * time.Minute, 40 * time.Minute} {
		b.Ban(ip, ReasonFlood)
		ck.t = ck.t.Add(want - time.Second)
		if !b.Banned(ip) {
			t.Fatalf("ban %d lifted before %v", i+1, want)
		}
		ck.t = ck.t.Add(2 * time.Second)
		if b.Banned(ip) {
			t.Fatalf("ban %d still on after %v", i+1, want)
		}
		b.Sweep() // remembered: the next ban is longer
	}
	if d := b.banFor(20); d != maxBan {
		t.Fatalf("the 20th ban lasts %v, want the cap %v", d, maxBan)
	}
}

func TestRateTrustedFunc(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	carrier := netip.MustParseAddr("192.0.2.10")
	r := NewRate(RateConfig{PerSecond: 1, Burst: 1, TrustedFunc: func(ip netip.Addr) bool { return ip == carrier }},
		func(netip.Addr) bool { return true }, func() time.Time { return now })
	for range 100 {
		if !r.Allow(carrier) {
			t.Fatal("a trunk's address was rate-limited")
		}
	}
	other := netip.MustParseAddr("192.0.2.11")
	r.Allow(other)
	if r.Allow(other) {
		t.Fatal("another source was not limited")
	}
}
