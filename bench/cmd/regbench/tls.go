package main

import (
	"context"
	"fmt"
	"log"
	"math"
	"time"
)

// tlsPhase measures registrations over TLS with connection reuse against
// registrations over UDP, on one kaopu and in one run: the same generator
// (newRegGen / newTLSRegGen), the same number of sockets or connections,
// each doing one REGISTER-401-REGISTER-200 exchange after the other as
// fast as answers come (a closed loop, not paced), for disjoint sets of
// users. The TLS connections are opened before the clock starts: the
// figure is what persistent connections (phones that stay connected)
// cost, the handshakes are reported apart. Each transport runs two rounds
// (first registration, then refresh), alternating UDP and TLS so that
// whatever else the machine does weighs on both alike.
func (b *bench) tlsPhase(ctx context.Context, seed string, all []user) bool {
	n := b.tlsUsers
	if 2*n > len(all) {
		n = len(all) / 2
	}
	s := &kaopu{b: b, tag: "tls", seed: seed}
	defer s.stop()
	b.waitQuiet(ctx)
	if err := s.start(ctx); err != nil {
		log.Printf("kaopu (TLS phase): %v", err)
		return false
	}
	pid := s.p.pid()
	const unpaced = 1e9 // registrations/s: the pacer never waits
	udp, err := newRegGen(s.target(), b.domain, all[:n], b.tlsConns, unpaced)
	if err != nil {
		log.Printf("TLS phase: UDP generator: %v", err)
		return false
	}
	defer udp.close()
	hctx, cancel := context.WithTimeout(ctx, time.Minute)
	tlsg, handshakes, err := newTLSRegGen(hctx, s.tlsTarget(), b.domain, all[n:2*n], b.tlsConns, unpaced)
	cancel()
	if err != nil {
		log.Printf("TLS phase: opening %d TLS connections: %v", b.tlsConns, err)
		return false
	}
	defer tlsg.close()
	log.Printf("kaopu TLS phase: pid %d; %d users per transport, %d UDP sockets and %d TLS connections (handshakes %.2f ms each, one after the other)",
		pid, n, b.tlsConns, b.tlsConns, float64(handshakes.Microseconds())/1000/float64(b.tlsConns))

	type total struct {
		ok, failed int
		elapsed    time.Duration
		cpuTicks   int64
	}
	tot := map[string]*total{"UDP": {}, "TLS": {}}
	ok := true
	limit := time.Duration(float64(n)/500+60) * time.Second // at least 500/s, or give up
	for round := range 2 {
		for _, g := range []*regGen{udp, tlsg} {
			rctx, cancel := context.WithTimeout(ctx, limit)
			cpu0, _ := groupCPU(pid)
			r := g.run(rctx)
			cpu1, _ := groupCPU(pid)
			cancel()
			if ctx.Err() != nil {
				return false
			}
			t := tot[g.transport]
			t.ok += r.ok
			t.failed += r.failed
			t.elapsed += r.elapsed
			t.cpuTicks += cpu1 - cpu0
			log.Printf("kaopu %s round %d: ok=%d failed=%d (%s) retrans=%d in %s: %.0f registrations/s, server %.0f µs CPU/reg",
				g.transport, round+1, r.ok, r.failed, r.reasons(), r.retrans, r.elapsed.Round(time.Millisecond),
				float64(r.ok)/r.elapsed.Seconds(), float64(cpu1-cpu0)/b.hz*1e6/math.Max(1, float64(r.ok)))
			if r.failed > 0 {
				ok = false
			}
			if !s.p.alive() {
				log.Printf("kaopu DIED during the TLS phase (exit code %d); last log lines:\n%s", s.p.exitCode(), lastLines(s.p.log.Name(), 20))
				return false
			}
		}
	}
	rate := map[string]float64{}
	for _, tp := range []string{"UDP", "TLS"} {
		t := tot[tp]
		rate[tp] = float64(t.ok) / t.elapsed.Seconds()
		name := map[string]string{"UDP": "udp", "TLS": "tls"}[tp]
		b.res.fig(fmt.Sprintf("register.kaopu.%s_closed_loop_per_s", name), fmt.Sprintf("%.0f", rate[tp]))
		b.res.fig(fmt.Sprintf("register.kaopu.%s_cpu_us_per_registration", name),
			fmt.Sprintf("%.0f", float64(t.cpuTicks)/b.hz*1e6/math.Max(1, float64(t.ok))))
		b.res.fig(fmt.Sprintf("register.kaopu.%s_closed_loop_failures", name), t.failed)
	}
	if rate["UDP"] > 0 {
		b.res.fig("register.kaopu.tls_udp_ratio", fmt.Sprintf("%.2f", rate["TLS"]/rate["UDP"]))
	}
	b.res.fig("register.kaopu.tls_handshake_ms", fmt.Sprintf("%.2f", float64(handshakes.Microseconds())/1000/float64(b.tlsConns)))
	return ok
}
