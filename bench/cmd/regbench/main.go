package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kaopu/kaopu/bench/internal/sysstat"
)

type bench struct {
	tmp, out    string
	domain      string
	kaopuBin    string
	sippBin     string
	kamailioBin string
	kamailioCfg string
	scenario    string
	sippCSV     string
	stepSecs    int
	rateStart   int
	rateStep    int
	rateCoarse  int
	rateMax     int
	cpuRates    []int
	ladderTime  time.Duration
	memUsers    int
	loadUsers   int
	memSockets  int
	memRate     float64
	sippPort    int
	maxOther    float64
	quietWait   time.Duration
	kaopuCfg    string
	kaopuExtra  string // appended to the kaopu config (trunk.go: calls.country_code)
	servers     map[string]bool
	withTLS     bool // TLS vs UDP registrations (tls.go)
	tlsOnly     bool // only that
	tlsUsers    int
	tlsConns    int

	procs *procs
	ports *ports
	hz    float64
	res   *results
	steps *os.File
	start time.Time
}

func main() {
	log.SetFlags(log.Ltime)
	log.SetPrefix("regbench: ")
	b := &bench{procs: &procs{}, ports: &ports{}, start: time.Now()}
	var servers string
	flag.StringVar(&b.tmp, "tmp", "", "scratch directory (required; everything the run creates goes here)")
	flag.StringVar(&b.out, "out", "bench/out", "results directory")
	flag.StringVar(&b.domain, "domain", "bench.test", "SIP domain and digest realm of both servers")
	flag.StringVar(&b.kaopuBin, "kaopu", os.Getenv("KAOPU_BIN"), "kaopu binary")
	flag.StringVar(&b.sippBin, "sipp", "sipp", "sipp binary")
	flag.StringVar(&b.kamailioBin, "kamailio", "kamailio", "kamailio binary")
	flag.StringVar(&b.kamailioCfg, "kamailio-cfg", "bench/kamailio/kamailio.cfg", "Kamailio config")
	flag.StringVar(&b.scenario, "scenario", "bench/sipp/register_auth.xml", "sipp scenario")
	flag.IntVar(&b.stepSecs, "step-seconds", 10, "seconds of load per rate step")
	flag.IntVar(&b.rateStart, "rate-start", 2000, "first rate step, registrations/s")
	flag.IntVar(&b.rateStep, "rate-step", 1000, "increment between rate steps")
	flag.IntVar(&b.rateCoarse, "rate-coarse-until", 8000, "below this rate, steps grow by twice -rate-step")
	flag.IntVar(&b.rateMax, "rate-max", 30000, "highest rate step")
	cpuRates := flag.String("cpu-rates", "2000,8000", "rate steps whose CPU use is reported per registration")
	flag.DurationVar(&b.ladderTime, "ladder-time", 5*time.Minute, "time budget of the rate steps per server")
	flag.IntVar(&b.loadUsers, "users", 20000, "distinct users in the sipp injection file")
	flag.IntVar(&b.memUsers, "mem-users", 100000, "users registered for the memory figure (also loaded into both servers)")
	flag.IntVar(&b.memSockets, "mem-sockets", 256, "UDP sockets of the memory-phase load generator")
	flag.Float64Var(&b.memRate, "mem-rate", 0, "registrations/s of the memory phase (0: 60% of kaopu's max rate, 1,000-5,000)")
	flag.DurationVar(&b.quietWait, "quiet-wait", 90*time.Second, "before each server, wait up to this long for other programs to leave the CPUs idle")
	flag.StringVar(&servers, "servers", "kamailio,kaopu", "servers to measure")
	flag.BoolVar(&b.withTLS, "tls", true, "also measure kaopu's registrations over TLS (persistent connections) against UDP")
	flag.BoolVar(&b.tlsOnly, "tls-only", false, "measure only kaopu's TLS vs UDP registrations (no Kamailio, rate ladder or memory phase)")
	flag.IntVar(&b.tlsUsers, "tls-users", 20000, "users registered per transport in the TLS phase (twice as many are loaded)")
	flag.IntVar(&b.tlsConns, "tls-conns", 64, "TLS connections (and UDP sockets) of the TLS phase")
	flag.Parse()
	if b.tmp == "" {
		log.Fatal("-tmp is required")
	}
	for _, f := range strings.Split(*cpuRates, ",") {
		if v, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && v > 0 {
			b.cpuRates = append(b.cpuRates, v)
		}
	}
	b.servers = map[string]bool{}
	for _, s := range strings.Split(servers, ",") {
		b.servers[strings.TrimSpace(s)] = true
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := b.run(ctx)
	stop()
	os.Exit(code)
}

func (b *bench) run(ctx context.Context) int {
	defer b.procs.stopAll()
	for _, p := range []*string{&b.tmp, &b.out, &b.kamailioCfg, &b.scenario} {
		if a, err := filepath.Abs(*p); err == nil {
			*p = a
		}
	}
	if err := os.MkdirAll(b.out, 0o755); err != nil {
		log.Print(err)
		return 1
	}
	b.procs.pidFile = filepath.Join(b.tmp, "pids")
	b.hz = sysstat.ClockTicks()
	var err error
	// -tls-only adds its figures to those of the last full run.
	if b.res, err = newResults(filepath.Join(b.out, "results.txt"), b.tlsOnly); err != nil {
		log.Print(err)
		return 1
	}
	defer b.res.close()
	stepsFile := filepath.Join(b.out, "steps.csv")
	if b.tlsOnly {
		stepsFile = os.DevNull // no rate steps
	}
	if b.steps, err = os.Create(stepsFile); err != nil {
		log.Print(err)
		return 1
	}
	defer b.steps.Close()
	fmt.Fprintln(b.steps, "server,rate,calls,created,ok,failed,fail_pct,achieved_per_s,elapsed_s,retrans,udp_drops,reg_ms,server_cpu_pct,server_cpu_us_per_reg,sipp_cpu_pct,other_cpu_pct,server_rss_mb,goroutines,pass")
	b.res.header(b)

	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		log.Printf("load average before the run: %s (a quiet machine gives steadier figures)", strings.TrimSpace(string(la)))
	}
	if b.tlsOnly {
		b.withTLS = true
		b.servers = map[string]bool{"kaopu": true}
		b.memUsers = 2 * b.tlsUsers // the users imported
		b.loadUsers = min(b.loadUsers, b.memUsers)
	}
	all := makeUsers(max(b.memUsers, b.loadUsers, 2*b.tlsUsers))
	b.sippCSV = filepath.Join(b.tmp, "sipp-users.csv")
	if err := writeSippCSV(b.sippCSV, all[:b.loadUsers]); err != nil {
		log.Print(err)
		return 1
	}
	log.Printf("%d users (sipp uses the first %d), domain %s, %d-second steps from %d/s by %d/s (by %d/s below %d/s)",
		len(all), b.loadUsers, b.domain, b.stepSecs, b.rateStart, b.rateStep, 2*b.rateStep, b.rateCoarse)

	failed := false
	maxRate := map[string]int{}
	cpuPerReg := map[string]map[int]float64{}

	if b.tlsOnly {
		if b.kaopuBin == "" {
			log.Print("kaopu: no binary (set KAOPU_BIN or -kaopu)")
			return 1
		}
		seed, err := b.kaopuSeed(ctx, all)
		if err != nil {
			log.Printf("kaopu: %v", err)
			return 1
		}
		ok := b.tlsPhase(ctx, seed, all)
		b.res.fig("bench.other_cpu_pct_max", "n/a (closed loop: see the load average in the log)")
		log.Printf("done in %s; results in %s", time.Since(b.start).Round(time.Second), b.out)
		if !ok {
			return 1
		}
		return 0
	}

	// Kamailio, then kaopu: same users, scenario and rate steps.
	if b.servers["kamailio"] {
		k := &kamailio{b: b}
		if err := k.prepare(all); err != nil {
			log.Printf("kamailio: database: %v", err)
			failed = true
		} else if lr, ok := b.measure(ctx, k); ok {
			maxRate["kamailio"], cpuPerReg["kamailio"] = lr.best, lr.cpuUs
			failed = failed || lr.crashed
		} else {
			failed = true
		}
	}
	if ctx.Err() != nil {
		return 130
	}
	var seed string
	var kaopuMax int
	if b.servers["kaopu"] {
		if b.kaopuBin == "" {
			log.Print("kaopu: no binary (set KAOPU_BIN or -kaopu)")
			failed = true
		} else if seed, err = b.kaopuSeed(ctx, all); err != nil {
			log.Printf("kaopu: %v", err)
			failed = true
		} else {
			lr, ok := b.measure(ctx, &kaopu{b: b, tag: "rate", seed: seed})
			if ok {
				maxRate["kaopu"], cpuPerReg["kaopu"] = lr.best, lr.cpuUs
				kaopuMax = lr.best
			}
			if !ok || lr.crashed {
				failed = true
			}
			if lr.maxGoroutines >= 0 {
				b.res.fig("register.kaopu.goroutines_max_after_step", lr.maxGoroutines)
			}
		}
	}
	if ctx.Err() != nil {
		return 130
	}

	// Comparison.
	for _, name := range []string{"kaopu", "kamailio"} {
		if !b.servers[name] {
			continue
		}
		if v, ok := maxRate[name]; ok {
			b.res.fig("register."+name+".max_rate_per_s", v)
		} else {
			b.res.fig("register."+name+".max_rate_per_s", "n/a")
		}
	}
	if maxRate["kamailio"] > 0 && b.servers["kaopu"] {
		if v, ok := maxRate["kaopu"]; ok {
			b.res.fig("register.ratio_kaopu_kamailio", fmt.Sprintf("%.2f", float64(v)/float64(maxRate["kamailio"])))
		}
	}
	for _, rate := range b.cpuRates {
		for _, name := range []string{"kaopu", "kamailio"} {
			if v, ok := cpuPerReg[name][rate]; ok {
				b.res.fig(fmt.Sprintf("register.%s.cpu_us_per_registration_at_%d_per_s", name, rate), fmt.Sprintf("%.0f", v))
			}
		}
	}

	// Other programs competing for the 2 cores make every figure above lower
	// and noisier; say how much there was.
	b.res.fig("bench.other_cpu_pct_max", fmt.Sprintf("%.0f", b.maxOther))

	// kaopu's registrations over TLS against UDP (tls.go).
	if b.servers["kaopu"] && seed != "" && b.withTLS {
		if !b.tlsPhase(ctx, seed, all) {
			failed = true
		}
	}
	if ctx.Err() != nil {
		return 130
	}

	// kaopu memory with 100k bindings, then refresh all of them.
	if b.servers["kaopu"] && seed != "" {
		if !b.memoryPhase(ctx, seed, all[:b.memUsers], kaopuMax) {
			failed = true
		}
	}
	if ctx.Err() != nil {
		return 130
	}
	log.Printf("done in %s; results in %s", time.Since(b.start).Round(time.Second), b.out)
	if failed {
		return 1
	}
	return 0
}

// sizeTag names the memory-phase user count in figure names: "100k".
func (b *bench) sizeTag() string {
	if b.memUsers%1000 == 0 {
		return fmt.Sprintf("%dk", b.memUsers/1000)
	}
	return strconv.Itoa(b.memUsers)
}

// waitQuiet waits, at most b.quietWait, until the machine's CPUs are less
// than 25 % busy over two seconds: the steps share 2 cores with whatever
// else runs (builds, tests), and that lowers and scatters every figure.
func (b *bench) waitQuiet(ctx context.Context) {
	deadline := time.Now().Add(b.quietWait)
	for first := true; ; first = false {
		busy0, total0 := sysstat.MachineCPU()
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
		busy1, total1 := sysstat.MachineCPU()
		pct := 0.0
		if total1 > total0 {
			pct = 100 * float64(busy1-busy0) / float64(total1-total0)
		}
		if pct < 25 {
			if !first {
				log.Printf("machine quiet (%.0f%% busy); going on", pct)
			}
			return
		}
		if time.Now().After(deadline) {
			log.Printf("machine still %.0f%% busy after waiting %s; measuring anyway (see other_cpu in the step lines)", pct, b.quietWait)
			return
		}
		if first {
			log.Printf("machine %.0f%% busy with other programs; waiting up to %s for it to go quiet", pct, b.quietWait)
		}
	}
}

// kaopuSeed imports the users once; every kaopu instance starts from a copy.
func (b *bench) kaopuSeed(ctx context.Context, us []user) (string, error) {
	log.Printf("kaopu: importing %d users", len(us))
	seed, d, err := importUsers(ctx, b, us)
	if err != nil {
		return "", err
	}
	log.Printf("kaopu: imported %d users in %s", len(us), d.Round(time.Millisecond))
	b.res.fig("register.kaopu.user_import_"+b.sizeTag()+"_s", fmt.Sprintf("%.1f", d.Seconds()))
	return seed, nil
}

// measure starts s on a quiet machine, runs the rate ladder and stops s.
// ok is false when s did not start; lr.crashed says it died under load
// (lr.best is then the highest rate passed before).
func (b *bench) measure(ctx context.Context, s server) (ladderResult, bool) {
	defer s.stop()
	b.waitQuiet(ctx)
	if err := s.start(ctx); err != nil {
		log.Printf("%s: %v", s.name(), err)
		return ladderResult{maxGoroutines: -1}, false
	}
	log.Printf("%s up on %s (pid %d)", s.name(), s.target(), s.process().pid())
	lr := b.ladder(ctx, s)
	if lr.crashed {
		b.res.fig("register."+s.name()+".crashed_under_load", 1)
	}
	return lr, true
}

type ladderResult struct {
	best          int
	cpuUs         map[int]float64 // rate -> server CPU µs per registration
	crashed       bool
	maxGoroutines int
}

// ladder runs the same rate steps against a server, each rate tried at most
// twice, until two consecutive rates fail (or the server dies, or the time
// budget is spent); the figure is the highest rate that passed. A step
// passes when fewer than 0.5 % of its registrations fail and sipp achieved
// at least 95 % of the target rate.
func (b *bench) ladder(ctx context.Context, s server) ladderResult {
	lr := ladderResult{cpuUs: map[int]float64{}, maxGoroutines: -1}
	t0 := time.Now()
	failedRates := 0
	next := func(rate int) int {
		if rate < b.rateCoarse {
			return min(rate+2*b.rateStep, b.rateCoarse)
		}
		return rate + b.rateStep
	}
	for rate := b.rateStart; rate <= b.rateMax; rate = next(rate) {
		if time.Since(t0) > b.ladderTime {
			log.Printf("%s: ladder time budget (%s) spent; stopping at %d/s", s.name(), b.ladderTime, rate)
			break
		}
		pass := false
		for try := 1; try <= 2 && !pass; try++ {
			r, ok := b.step(ctx, s, rate, try)
			if ctx.Err() != nil {
				return lr
			}
			if g := r.goroutines; g > lr.maxGoroutines {
				lr.maxGoroutines = g
			}
			// CPU per registration at the reporting rates: from the passing
			// try (a retransmission storm inflates it), else the last one.
			if slices.Contains(b.cpuRates, rate) && r.ok > 0 {
				if _, seen := lr.cpuUs[rate]; !seen || r.pass {
					lr.cpuUs[rate] = r.cpuUsPerReg
				}
			}
			if !ok {
				lr.crashed = true
				return lr
			}
			pass = r.pass
		}
		if !pass {
			// Near the limit a step can tip into a retransmission storm by
			// chance; one more rate up decides whether this was the limit.
			if failedRates++; failedRates == 2 {
				break
			}
			continue
		}
		failedRates = 0
		lr.best = rate
	}
	return lr
}

type stepResult struct {
	sippStats
	rate, calls  int
	failPct      float64
	achieved     float64
	cpuPct       float64
	cpuUsPerReg  float64
	sippCPUPct   float64
	rssMB        float64
	goroutines   int
	pass         bool
	sippExitCode int
	udpDrops     int64
	otherPct     float64
}

// step runs one sipp step and measures the server's CPU over it. ok is
// false when the server is no longer running.
func (b *bench) step(ctx context.Context, s server, rate, try int) (stepResult, bool) {
	r := stepResult{rate: rate, calls: rate * b.stepSecs, goroutines: -1}
	p := s.process()
	cpu0, _ := groupCPU(p.pid())
	drops0 := sysstat.UDPDrops()
	busy0, total0 := sysstat.MachineCPU()
	t0 := time.Now()
	st, sp, err := b.runSipp(ctx, fmt.Sprintf("%s-%d-%d", s.name(), rate, try), s.target(), rate, b.stepSecs)
	wall := time.Since(t0).Seconds()
	cpu1, _ := groupCPU(p.pid())
	r.udpDrops = sysstat.UDPDrops() - drops0
	busy1, total1 := sysstat.MachineCPU()
	r.sippStats = st
	if sp != nil {
		r.sippExitCode = sp.exitCode()
		r.sippCPUPct = 100 * sp.cpuTime().Seconds() / wall
	}
	if ctx.Err() != nil {
		return r, true
	}
	if err != nil {
		log.Printf("%s %d/s: sipp: %v", s.name(), rate, err)
	}
	cpuSecs := float64(cpu1-cpu0) / b.hz
	r.cpuPct = 100 * cpuSecs / wall
	if total1 > total0 {
		// Busy CPU of the whole machine in "% of one core", minus the server
		// and sipp: other programs and kernel work not charged to either.
		machine := 100 * float64(runtime.NumCPU()) * float64(busy1-busy0) / float64(total1-total0)
		r.otherPct = max(0, machine-r.cpuPct-r.sippCPUPct)
	}
	if r.otherPct > b.maxOther {
		b.maxOther = r.otherPct
	}
	if r.ok > 0 {
		r.cpuUsPerReg = cpuSecs * 1e6 / float64(r.ok)
	}
	if rss, _, err := vmRSS(p.pid()); err == nil {
		r.rssMB = float64(rss) / 1024
	}
	r.goroutines = s.goroutines()
	r.failPct = 100 * float64(r.calls-r.ok) / float64(r.calls)
	if r.createSecs > 0 {
		r.achieved = float64(r.created) / r.createSecs
	}
	r.pass = err == nil && r.failPct < 0.5 && r.achieved >= 0.95*float64(rate)
	alive := p.alive()
	verdict := "pass"
	if !r.pass {
		verdict = "FAIL"
	}
	gor := ""
	if r.goroutines >= 0 {
		gor = fmt.Sprintf(" goroutines=%d", r.goroutines)
	}
	log.Printf("%-8s %6d/s try %d: %s ok=%d/%d failed=%.2f%% achieved=%.0f/s retrans=%d udp_drops=%d reg=%.1fms server_cpu=%.0f%% (%.0fµs/reg) sipp_cpu=%.0f%% other_cpu=%.0f%% rss=%.0fMB%s sipp_rc=%d",
		s.name(), rate, try, verdict, r.ok, r.calls, r.failPct, r.achieved, r.retrans, r.udpDrops, r.rtdMs, r.cpuPct, r.cpuUsPerReg, r.sippCPUPct, r.otherPct, r.rssMB, gor, r.sippExitCode)
	fmt.Fprintf(b.steps, "%s,%d,%d,%d,%d,%d,%.3f,%.0f,%.1f,%d,%d,%.2f,%.1f,%.1f,%.1f,%.1f,%.1f,%d,%v\n",
		s.name(), rate, r.calls, r.created, r.ok, r.calls-r.ok, r.failPct, r.achieved, r.elapsed, r.retrans, r.udpDrops, r.rtdMs,
		r.cpuPct, r.cpuUsPerReg, r.sippCPUPct, r.otherPct, r.rssMB, r.goroutines, r.pass)
	if !alive {
		log.Printf("%s DIED during the %d/s step (exit code %d); last log lines:\n%s",
			s.name(), rate, p.exitCode(), lastLines(p.log.Name(), 20))
		return r, false
	}
	// Let retransmissions and server-side transaction timers of this step
	// drain a little before the next one.
	select {
	case <-ctx.Done():
	case <-time.After(2 * time.Second):
	}
	return r, true
}

// memoryPhase registers every user once with a fresh kaopu, reads its RSS,
// then refreshes every binding and counts failures.
func (b *bench) memoryPhase(ctx context.Context, seed string, us []user, kaopuMax int) bool {
	s := &kaopu{b: b, tag: "mem", seed: seed}
	defer s.stop()
	if err := s.start(ctx); err != nil {
		log.Printf("kaopu (memory phase): %v", err)
		return false
	}
	pid := s.p.pid()
	time.Sleep(2 * time.Second) // let start-up settle before the baseline
	mem0, _ := readMem(pid)
	rss0 := mem0.rss
	log.Printf("kaopu at start with %d users and no bindings: %s", len(us), mem0)
	b.res.fig("register.kaopu.rss_mb_start_"+b.sizeTag()+"_users", fmt.Sprintf("%.0f", float64(rss0)/1024))
	// A safe rate: well under the measured maximum, never above 5,000/s.
	rate := 3000.0
	switch {
	case b.memRate > 0:
		rate = b.memRate
	case kaopuMax > 0:
		rate = math.Max(1000, math.Min(5000, 0.6*float64(kaopuMax)))
	}
	log.Printf("kaopu memory phase: pid %d, RSS at start %.0f MB; registering %d users at up to %.0f/s from %d sockets",
		pid, float64(rss0)/1024, len(us), rate, b.memSockets)
	g, err := newRegGen(s.target(), b.domain, us, b.memSockets, rate)
	if err != nil {
		log.Printf("load generator: %v", err)
		return false
	}
	defer g.close()
	ok := true
	limit := time.Duration(float64(len(us))/rate*1.5+60) * time.Second
	for round, name := range []string{"register", "reregister"} {
		rctx, cancel := context.WithTimeout(ctx, limit)
		cpu0, _ := groupCPU(pid)
		r := g.run(rctx)
		cpu1, _ := groupCPU(pid)
		cancel()
		if ctx.Err() != nil {
			return false
		}
		log.Printf("kaopu %s %d users: ok=%d failed=%d (%s) retrans=%d in %s (%.0f/s), server %.0f µs CPU/reg, 200 without our Contact=%d, 200 with >1 binding=%d",
			name, len(us), r.ok, r.failed, r.reasons(), r.retrans, r.elapsed.Round(time.Millisecond),
			float64(len(us))/r.elapsed.Seconds(), float64(cpu1-cpu0)/b.hz*1e6/math.Max(1, float64(r.ok)), r.noContact, r.multiContact)
		if !s.p.alive() {
			log.Printf("kaopu DIED during the memory phase (exit code %d); last log lines:\n%s", s.p.exitCode(), lastLines(s.p.log.Name(), 20))
			b.res.fig("register.kaopu.rss_mb_"+b.sizeTag()+"_bindings", "n/a")
			return false
		}
		// Give the runtime a moment, then read the resident set.
		time.Sleep(3 * time.Second)
		mem, err := readMem(pid)
		if err != nil {
			log.Printf("kaopu RSS: %v", err)
			ok = false
		}
		rss, hwm := mem.rss, mem.hwm
		log.Printf("kaopu after %s: %s; data dir: %s", name, mem, dirSizes(s.dir))
		mets := s.metrics()
		g := -1
		if v, ok := mets["go_goroutines"]; ok {
			g = int(v)
		}
		if round == 0 {
			for _, k := range []string{"go_memstats_heap_inuse_bytes", "go_memstats_heap_alloc_bytes"} {
				if v, ok := mets[k]; ok {
					b.res.fig("register.kaopu."+strings.TrimPrefix(strings.TrimSuffix(k, "_bytes"), "go_memstats_")+"_mb_"+b.sizeTag()+"_bindings", fmt.Sprintf("%.0f", v/(1<<20)))
				}
			}
			if v, ok := mets["kaopu_bindings"]; ok {
				b.res.fig("register.kaopu.bindings_reported", int(v))
			}
			b.res.fig("register.kaopu.register_"+b.sizeTag()+"_failures", r.failed)
			b.res.fig("register.kaopu.rss_mb_"+b.sizeTag()+"_bindings", fmt.Sprintf("%.0f", float64(rss)/1024))
			b.res.fig("register.kaopu.rss_peak_mb_"+b.sizeTag()+"_bindings", fmt.Sprintf("%.0f", float64(hwm)/1024))
			if g >= 0 {
				b.res.fig("register.kaopu.goroutines_"+b.sizeTag()+"_bindings", g)
			}
		} else {
			b.res.fig("register.kaopu.reregister_"+b.sizeTag()+"_failures", r.failed)
			b.res.fig("register.kaopu.reregister_"+b.sizeTag()+"_duplicate_bindings", r.multiContact)
			b.res.fig("register.kaopu.rss_mb_after_reregister", fmt.Sprintf("%.0f", float64(rss)/1024))
			if g >= 0 {
				b.res.fig("register.kaopu.goroutines_after_reregister", g)
			}
		}
		if r.failed > 0 {
			ok = false
		}
	}
	return ok
}

func lastLines(path string, n int) string {
	bs, err := os.ReadFile(path)
	if err != nil {
		return "(no log)"
	}
	lines := strings.Split(strings.TrimRight(string(bs), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

// results prints figures on stdout and keeps them in bench/out/results.txt.
type results struct {
	f *os.File
	w io.Writer
}

func newResults(path string, appendTo bool) (*results, error) {
	flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if appendTo {
		flags = os.O_CREATE | os.O_WRONLY | os.O_APPEND
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return nil, err
	}
	return &results{f: f, w: io.MultiWriter(os.Stdout, f)}, nil
}

func (r *results) header(b *bench) {
	host, _ := os.Hostname()
	model := cpuModel()
	fmt.Fprintf(r.f, "# kaopu registrar bench, %s, host %s, %d CPUs (%s), %s\n",
		time.Now().Format("2006-01-02 15:04 MST"), host, runtime.NumCPU(), model, versions(b))
}

func (r *results) fig(name string, v any) {
	fmt.Fprintf(r.w, "%s %v\n", name, v)
}

func (r *results) close() { r.f.Close() }

func cpuModel() string {
	bs, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(bs), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func versions(b *bench) string {
	first := func(name string, args ...string) string {
		out, _ := exec.Command(name, args...).CombinedOutput()
		for _, l := range strings.Split(string(out), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				return l
			}
		}
		return name + " ?"
	}
	return strings.Join([]string{
		first(b.sippBin, "-v"),
		first(b.kamailioBin, "-v"),
		runtime.Version(),
	}, "; ")
}
