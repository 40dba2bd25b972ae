package test

// End-to-end test of issue 5 item 5: a flood of malformed, unauthenticated
// and half-open traffic from many loopback sources leaves legitimate users
// served and the server's goroutines and memory bounded.

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kaopu/kaopu/test/harness"
)

// rssKB is a process's resident set size from /proc.
func rssKB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

func TestFloodLegitimateUsersServed(t *testing.T) {
	const floodFor = 12 * time.Second
	srv := harness.StartServer(t, harness.ServerOptions{Config: sippConfig +
		"sip:\n  message_timeout: 2s\n"})
	harness.AddUser(t, srv.DataDir, "alice", "alice-secret-1", "1001")
	harness.AddUser(t, srv.DataDir, "bob", "bob-secret-2", "1002")

	// Legitimate users, from 127.0.0.1: alice over UDP, bob over TCP,
	// registering one after another for the whole flood.
	legit := func(tp, user, pw string) (ok, all *atomic.Int64, run func(ctx context.Context)) {
		ok, all = new(atomic.Int64), new(atomic.Int64)
		c := harness.Dial(t, tp, srv.SIPAddr())
		c.Domain = srv.Domain
		return ok, all, func(ctx context.Context) {
			for ctx.Err() == nil {
				all.Add(1)
				res, err := c.DoAuth(c.NewRegister(user, c.ContactURI(user), 600), user, pw, nil, 2*time.Second)
				if err == nil && res.Final != nil && res.Final.StatusCode() == 200 {
					ok.Add(1)
				} else {
					t.Logf("%s REGISTER failed during the flood: %v", tp, err)
					if tp == "tcp" { // a stream may be out of step after a timeout
						c = harness.Dial(t, tp, srv.SIPAddr())
						c.Domain = srv.Domain
					}
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	// Warm up, then the baseline.
	for _, tp := range []string{"udp", "tcp"} {
		c := harness.Dial(t, tp, srv.SIPAddr())
		c.Domain = srv.Domain
		if res, err := c.DoAuth(c.NewRegister("alice", c.ContactURI("alice"), 600), "alice", "alice-secret-1", nil, sipTimeout); err != nil || res.Final.StatusCode() != 200 {
			t.Fatalf("REGISTER before the flood over %s: %v", tp, err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	baseG := srv.Metric(t, "go_goroutines")
	baseRSS := rssKB(t, srv.PID())

	ctx, cancel := context.WithTimeout(context.Background(), floodFor)
	defer cancel()
	var wg sync.WaitGroup
	udpOK, udpAll, runUDP := legit("udp", "alice", "alice-secret-1")
	tcpOK, tcpAll, runTCP := legit("tcp", "bob", "bob-secret-2")
	wg.Add(2)
	go func() { defer wg.Done(); runUDP(ctx) }()
	go func() { defer wg.Done(); runTCP(ctx) }()

	// sipp: unauthenticated INVITEs (never ACKed) and REGISTERs from
	// 127.0.0.20 at 300 calls/s, 2 requests each: over the per-source
	// rate limit, so it is limited and then banned.
	wg.Add(1)
	var sipp *harness.SippResult
	go func() {
		defer wg.Done()
		sipp = harness.Sipp(t, srv.SIPAddr(), "-sf", harness.Scenario(t, "flood_unauth.xml"), "-s", "1001",
			"-i", "127.0.0.20", "-r", "300", "-m", "3000", "-l", "3000", "-timeout", "15s")
	}()

	// The Go generator: garbage, broken, oversized and unauthenticated
	// datagrams and half-open TCP connections from 8 more sources.
	var sources []string
	for i := 10; i < 18; i++ {
		sources = append(sources, fmt.Sprintf("127.0.0.%d", i))
	}
	var flood *harness.FloodStats
	var floodErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		flood, floodErr = harness.Flood(ctx, harness.FloodConfig{Server: srv.SIPAddr(), Domain: srv.Domain,
			Sources: sources, Rate: 2000, HalfOpen: 800, MaxDatagrams: 2000 * int64(floodFor/time.Second)})
	}()

	peakG, peakRSS := baseG, baseRSS
	for ctx.Err() == nil {
		g := srv.Metric(t, "go_goroutines")
		peakG = max(peakG, g)
		peakRSS = max(peakRSS, rssKB(t, srv.PID()))
		time.Sleep(250 * time.Millisecond)
	}
	wg.Wait()
	if floodErr != nil {
		t.Fatal(floodErr)
	}
	t.Logf("flood: %d datagrams (%.0f/s), %d TCP connections (%d refused or closed at once); sipp exit %d",
		flood.Datagrams.Load(), float64(flood.Datagrams.Load())/floodFor.Seconds(), flood.Connections.Load(), flood.Refused.Load(), sipp.ExitCode)
	t.Logf("legitimate REGISTERs: UDP %d/%d, TCP %d/%d", udpOK.Load(), udpAll.Load(), tcpOK.Load(), tcpAll.Load())
	t.Logf("goroutines: %.0f before, %.0f at the peak; RSS: %d kB before, %d kB at the peak", baseG, peakG, baseRSS, peakRSS)

	for _, l := range []struct {
		tp      string
		ok, all int64
	}{{"UDP", udpOK.Load(), udpAll.Load()}, {"TCP", tcpOK.Load(), tcpAll.Load()}} {
		if l.all < 100 {
			t.Errorf("only %d legitimate REGISTERs over %s were tried during the flood", l.all, l.tp)
		}
		if float64(l.ok) < 0.99*float64(l.all) {
			t.Errorf("legitimate REGISTERs over %s: %d of %d succeeded, want >= 99%%", l.tp, l.ok, l.all)
		}
	}
	if flood.Datagrams.Load() < 2000*int64(floodFor/time.Second)*8/10 {
		t.Errorf("the generator sent only %d datagrams", flood.Datagrams.Load())
	}
	// The defences did their part.
	for _, m := range []string{"kaopu_sip_rate_limited_total", "kaopu_sip_malformed_total", "kaopu_sip_oversize_total",
		"kaopu_sip_connections_refused_total", "kaopu_sip_connections_timed_out_total", "kaopu_auth_challenges_total"} {
		if v := srv.Metric(t, m); v == 0 {
			t.Errorf("%s is 0 after the flood", m)
		}
	}
	if v := srv.Metric(t, "kaopu_banned_sources"); v < 1 {
		t.Error("the sipp source flooding at 600 requests/s was not banned")
	}
	// Bounded during the flood by the per-source caps, not by what was
	// sent: each source holds at most sip.max_pending_per_source (256)
	// transactions, each an unACKed INVITE's goroutine for a few seconds,
	// and sip.max_connections_per_source (64) connections, each a reader.
	sources9 := float64(len(sources) + 1)
	if limit := baseG + sources9*(256+64) + 200; peakG > limit {
		t.Errorf("goroutines peaked at %.0f (baseline %.0f), over the %.0f the per-source caps allow", peakG, baseG, limit)
	}
	if peakRSS > baseRSS+200*1024 {
		t.Errorf("RSS peaked at %d kB (baseline %d kB)", peakRSS, baseRSS)
	}
	// After the flood: half-open connections closed (sip.message_timeout
	// 2s) and goroutines back near the baseline. INVITEs never ACKed keep
	// their transactions for Timer H (32 s), not goroutines.
	deadline := time.Now().Add(20 * time.Second)
	for {
		g, conns := srv.Metric(t, "go_goroutines"), srv.Metric(t, "kaopu_sip_connections")
		if g <= baseG+50 && conns <= 2 { // the two legitimate clients' connections may stay
			t.Logf("after the flood: %.0f goroutines, %.0f connections, RSS %d kB", g, conns, rssKB(t, srv.PID()))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("20 s after the flood: %.0f goroutines (baseline %.0f), %.0f TCP/TLS connections open", g, baseG, conns)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if rss := rssKB(t, srv.PID()); rss > baseRSS+200*1024 {
		t.Errorf("RSS after the flood %d kB (baseline %d kB)", rss, baseRSS)
	}
}
