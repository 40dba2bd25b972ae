package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kaopu/kaopu/bench/internal/sysstat"
)

// run holds the settings and shared state of one relaybench run.
type run struct {
	tmp, out     string
	domain       string
	kaopuBin     string
	rtpengineBin string
	targets      []string
	calls        []int
	cpuCalls     []int
	window       time.Duration
	warmup       time.Duration
	ladderTime   time.Duration
	quietWait    time.Duration
	workers      int
	users        int
	setupConc    int
	rtpPorts     string
	srtpPorts    string
	rtpePorts    string
	maxLossPct   float64
	jitterMargin float64 // ms over the baseline's p99
	pprof        bool
	profileCalls int

	procs    *procs
	hz       float64
	res      io.Writer
	steps    *os.File
	baseP99  map[int]float64
	maxOther float64
	start    time.Time
	pgids    []int // process groups of the servers started
}

func main() {
	log.SetFlags(log.Ltime)
	log.SetPrefix("relaybench: ")
	r := &run{procs: &procs{}, baseP99: map[int]float64{}, start: time.Now()}
	var targets, calls, cpuCalls string
	var total time.Duration
	flag.StringVar(&r.tmp, "tmp", "", "scratch directory (required; the run works in TMP/relay)")
	flag.StringVar(&r.out, "out", "bench/out", "results directory (results.txt is appended to)")
	flag.StringVar(&r.domain, "domain", "bench.test", "kaopu's SIP domain and digest realm")
	flag.StringVar(&r.kaopuBin, "kaopu", os.Getenv("KAOPU_BIN"), "kaopu binary")
	flag.StringVar(&r.rtpengineBin, "rtpengine", "rtpengine", "rtpengine binary")
	flag.StringVar(&targets, "targets", "baseline,kaopu,rtpengine", "what to measure, in order (baseline first: the relays are judged against it); kaopu-srtp is kaopu relaying SRTP to SRTP")
	flag.StringVar(&calls, "calls", "50,100,200,400,600,800,1000,1200,1400,1600,1800,2000", "ladder of concurrent calls")
	flag.StringVar(&cpuCalls, "cpu-calls", "400,800", "call counts whose CPU per packet is reported as figures")
	flag.DurationVar(&r.window, "window", 10*time.Second, "measured window per step")
	flag.DurationVar(&r.warmup, "warmup", 3*time.Second, "media before the window of each step (latching, queues)")
	flag.DurationVar(&r.ladderTime, "ladder-time", 15*time.Minute, "time budget of the ladder (no step starts after it)")
	flag.DurationVar(&total, "total-time", 20*time.Minute, "time budget of the whole run")
	flag.DurationVar(&r.quietWait, "quiet-wait", 60*time.Second, "before each target, wait up to this long for the CPUs to be < 25 % busy")
	flag.IntVar(&r.workers, "workers", 2, "generator threads (epoll loops)")
	flag.IntVar(&r.users, "users", 100, "kaopu caller users (u0…); calls cycle through them")
	flag.IntVar(&r.setupConc, "setup-concurrency", 16, "calls set up at once")
	flag.StringVar(&r.rtpPorts, "rtp-ports", "16000-23999", "kaopu's rtp.ports; 4 ports a call")
	flag.StringVar(&r.rtpePorts, "rtpengine-ports", "24000-31999", "rtpengine's --port-min/--port-max; 4 ports a call")
	flag.StringVar(&r.srtpPorts, "srtp-ports", "24000-31999", "kaopu-srtp's rtp.ports (rtpengine's by default: measure one or the other in a run); 4 ports a call")
	flag.Float64Var(&r.maxLossPct, "max-loss-pct", 0.1, "a step passes below this loss, %")
	flag.Float64Var(&r.jitterMargin, "jitter-margin-ms", 2, "a relay step passes with jitter p99 at most this much over the baseline's")
	flag.BoolVar(&r.pprof, "pprof", false, "start kaopu with KAOPU_PPROF=1")
	flag.IntVar(&r.profileCalls, "profile-calls", 0, "with -pprof: save a CPU profile of kaopu over the window of this step")
	flag.Parse()
	if r.tmp == "" {
		log.Print("-tmp is required")
		os.Exit(2)
	}
	r.targets = splitList(targets)
	r.calls = splitInts(calls)
	slices.Sort(r.calls)
	r.cpuCalls = splitInts(cpuCalls)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, total)
	defer cancel()
	code := r.run(ctx)
	r.procs.stopAll()
	os.Exit(code)
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func splitInts(s string) []int {
	var out []int
	for _, f := range splitList(s) {
		if v, err := strconv.Atoi(f); err == nil && v > 0 {
			out = append(out, v)
		}
	}
	return out
}

func parseRange(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || lo < 1024 || hi > 65535 || lo >= hi {
		return 0, 0, fmt.Errorf("bad port range %q (want LOW-HIGH)", s)
	}
	return lo, hi, nil
}

type targetResult struct {
	ran     bool
	best    int // highest clean N, 0 if none
	steps   map[int]stepResult
	rss0KB  int64
	heap0   float64
	gor0    float64
	crashed bool
}

func (r *run) run(ctx context.Context) int {
	for _, p := range []*string{&r.tmp, &r.out, &r.kaopuBin} {
		if *p == "" {
			continue
		}
		if a, err := filepath.Abs(*p); err == nil {
			*p = a
		}
	}
	root := r.tmp
	r.tmp = filepath.Join(root, "relay")
	if err := os.MkdirAll(r.tmp, 0o755); err != nil {
		log.Print(err)
		return 1
	}
	if err := os.MkdirAll(filepath.Join(r.out, "logs"), 0o755); err != nil {
		log.Print(err)
		return 1
	}
	r.procs.pidFile = filepath.Join(root, "pids") // bench/run.sh's backstop
	r.hz = sysstat.ClockTicks()
	if slices.Contains(r.targets, "rtpengine") && slices.Contains(r.targets, "kaopu-srtp") && r.rtpePorts == r.srtpPorts {
		log.Print("rtpengine and kaopu-srtp need different port ranges (-srtp-ports)")
		return 2
	}
	for _, pr := range []string{r.rtpPorts, r.rtpePorts, r.srtpPorts} {
		lo, hi, err := parseRange(pr)
		if err != nil {
			log.Print(err)
			return 2
		}
		if top := r.calls[len(r.calls)-1]; 4*top > hi-lo+1 {
			log.Printf("port range %s holds %d calls (4 ports each); the ladder stops there", pr, (hi-lo+1)/4)
			r.calls = slices.DeleteFunc(r.calls, func(n int) bool { return 4*n > hi-lo+1 })
		}
	}
	rf, err := os.OpenFile(filepath.Join(r.out, "results.txt"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		log.Print(err)
		return 1
	}
	defer rf.Close()
	r.res = io.MultiWriter(os.Stdout, rf)
	fmt.Fprintf(rf, "# kaopu media relay bench, %s, %d CPUs (%s), %s; rtpengine %s\n",
		time.Now().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), cpuModel(), runtime.Version(), rtpengineVersion(r.rtpengineBin))
	if r.steps, err = os.Create(filepath.Join(r.out, "relay-steps.csv")); err != nil {
		log.Print(err)
		return 1
	}
	defer r.steps.Close()
	fmt.Fprintln(r.steps, "target,calls,try,streams,expected,received,lost,loss_pct,dead_streams,send_rate_pct,send_err,recv_err,jitter_p50_ms,jitter_p99_ms,jitter_max_ms,baseline_p99_ms,relay_cpu_pct,relay_cpu_us_per_pkt,gen_cpu_pct,other_cpu_pct,udp_drops,rss_mb,rss_kb_per_call,heap_kb_per_call,goroutines,setup_failed,pass,why")
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		log.Printf("load average before the run: %s", strings.TrimSpace(string(la)))
	}
	log.Printf("targets %v, ladder %v calls (%d packets/s each way per call), %s windows after %s warm-up",
		r.targets, r.calls, 1000/ptime, r.window, r.warmup)

	var ts []*tstate
	for _, name := range r.targets {
		var t target
		switch name {
		case "baseline":
			t = baseline{}
		case "kaopu":
			if r.kaopuBin == "" {
				log.Print("kaopu: no binary (set KAOPU_BIN or -kaopu)")
				return 2
			}
			t = &kaopu{r: r, ports: r.rtpPorts}
		case "kaopu-srtp":
			if r.kaopuBin == "" {
				log.Print("kaopu: no binary (set KAOPU_BIN or -kaopu)")
				return 2
			}
			t = &kaopu{r: r, ports: r.srtpPorts, srtp: true}
		case "rtpengine":
			t = &rtpengine{r: r}
		default:
			log.Printf("unknown target %q", name)
			return 2
		}
		ts = append(ts, &tstate{t: t, tr: &targetResult{steps: map[int]stepResult{}}})
	}
	failed := r.ladder(ctx, ts)
	results := map[string]*targetResult{}
	for _, x := range ts {
		results[x.t.name()] = x.tr
		if !x.tr.ran || x.tr.crashed {
			failed = true
		}
	}
	if ctx.Err() != nil {
		log.Printf("stopped: %v", context.Cause(ctx))
	}
	r.report(results)
	log.Printf("done in %s; results in %s", time.Since(r.start).Round(time.Second), r.out)
	if failed || ctx.Err() != nil {
		return 1
	}
	return 0
}

// report prints the figures.
func (r *run) report(res map[string]*targetResult) {
	fig := func(name string, v any) { fmt.Fprintf(r.res, "%s %v\n", name, v) }
	for _, name := range r.targets {
		tr := res[name]
		if tr == nil || !tr.ran {
			fig("relay."+name+".max_clean_calls", "n/a")
			continue
		}
		fig("relay."+name+".max_clean_calls", tr.best)
	}
	kp, re := res["kaopu"], res["rtpengine"]
	if kp != nil && re != nil && kp.ran && re.ran && re.best > 0 {
		fig("relay.ratio_max_calls_kaopu_rtpengine", fmt.Sprintf("%.2f", float64(kp.best)/float64(re.best)))
	}
	for _, n := range r.cpuCalls {
		v := map[string]float64{}
		for _, name := range []string{"kaopu", "kaopu-srtp", "rtpengine"} {
			tr := res[name]
			if tr == nil {
				continue
			}
			if s, ok := tr.steps[n]; ok && s.received > 0 {
				v[name] = s.cpuUsPerPkt
				fig(fmt.Sprintf("relay.%s.cpu_us_per_packet_at_%d", name, n), fmt.Sprintf("%.2f", s.cpuUsPerPkt))
			}
		}
		if v["kaopu"] > 0 && v["rtpengine"] > 0 {
			fig(fmt.Sprintf("relay.ratio_cpu_kaopu_rtpengine_at_%d", n), fmt.Sprintf("%.2f", v["kaopu"]/v["rtpengine"]))
		}
		if v["kaopu"] > 0 && v["kaopu-srtp"] > 0 {
			fig(fmt.Sprintf("relay.ratio_cpu_srtp_plain_at_%d", n), fmt.Sprintf("%.2f", v["kaopu-srtp"]/v["kaopu"]))
		}
	}
	for _, n := range r.cpuCalls {
		for _, name := range r.targets {
			if tr := res[name]; tr != nil {
				if s, ok := tr.steps[n]; ok && s.received > 0 {
					fig(fmt.Sprintf("relay.%s.jitter_p99_ms_at_%d", name, n), fmt.Sprintf("%.2f", s.jitterP99))
				}
			}
		}
	}
	// Memory per call at the highest clean step (else the highest step).
	for _, name := range []string{"kaopu", "kaopu-srtp", "rtpengine"} {
		tr := res[name]
		if tr == nil || !tr.ran || len(tr.steps) == 0 {
			continue
		}
		n := tr.best
		if n == 0 {
			for k := range tr.steps {
				n = max(n, k)
			}
		}
		s := tr.steps[n]
		fig(fmt.Sprintf("relay.%s.calls_for_memory", name), n)
		fig(fmt.Sprintf("relay.%s.rss_kb_per_call", name), fmt.Sprintf("%.1f", s.rssKBPerCall))
		if name == "kaopu" && s.heapKBPerCall > 0 {
			fig("relay.kaopu.heap_kb_per_call", fmt.Sprintf("%.1f", s.heapKBPerCall))
			fig("relay.kaopu.goroutines_per_call", fmt.Sprintf("%.2f", (float64(s.goroutines)-tr.gor0)/float64(n)))
		}
	}
	fig("relay.other_cpu_pct_max", fmt.Sprintf("%.0f", r.maxOther))
}

// waitQuiet waits, at most r.quietWait, until the CPUs are < 25 % busy.
func (r *run) waitQuiet(ctx context.Context) { r.waitQuietFor(ctx, r.quietWait) }

// waitQuietFor waits, at most limit, until other programs keep the CPUs
// less than 25 % busy (this driver and the servers it started are not
// counted: a retry waits with a target's media flowing).
func (r *run) waitQuietFor(ctx context.Context, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for first := true; ; first = false {
		b0, t0 := sysstat.MachineCPU()
		o0 := r.ownCPU()
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
		b1, t1 := sysstat.MachineCPU()
		o1 := r.ownCPU()
		pct := 0.0
		if t1 > t0 {
			pct = 100 * float64(b1-b0-(o1-o0)) / float64(t1-t0)
		}
		if pct < 25 {
			if !first {
				log.Printf("machine quiet (%.0f%% busy); going on", pct)
			}
			return
		}
		if time.Now().After(deadline) {
			log.Printf("machine still %.0f%% busy after %s; measuring anyway (see other_cpu_pct)", pct, limit)
			return
		}
		if first {
			log.Printf("machine %.0f%% busy with other programs; waiting up to %s", pct, limit)
		}
	}
}

// ownCPU is the CPU time (ticks) of this driver and of every server it
// started.
func (r *run) ownCPU() int64 {
	t := selfCPU()
	for _, pg := range r.pgids {
		t += groupCPU(pg)
	}
	return t
}

// tstate is one target during the ladder: its generator (paused while
// another target is measured) and its calls.
type tstate struct {
	t        target
	g        *gen
	calls    []*call
	tr       *targetResult
	climbing bool
}

// ladder starts every target, then steps N up, measuring the targets in
// turn at each N (baseline, kaopu, rtpengine): whatever else the machine
// is doing then touches all of them alike. Only the target being measured
// sends media; the others' calls stay up, silent. A target leaves the
// ladder at its first failing N (after its retries); the relays also stop
// where the baseline did. It returns true if something went wrong.
func (r *run) ladder(ctx context.Context, ts []*tstate) bool {
	failed := false
	r.waitQuiet(ctx)
	defer func() {
		for i := len(ts) - 1; i >= 0; i-- {
			x := ts[i]
			if x.g != nil {
				x.g.pause()
			}
			if ctx.Err() == nil && x.tr.ran {
				r.teardown(x.t, x.calls)
			}
			if x.g != nil {
				x.g.close()
			}
			x.t.stop()
		}
	}()
	for _, x := range ts {
		if err := x.t.start(ctx); err != nil {
			log.Printf("%s: %v", x.t.name(), err)
			failed = true
			continue
		}
		g, err := newGen(r.workers)
		if err != nil {
			log.Printf("generator: %v", err)
			return true
		}
		g.pause()
		x.g, x.tr.ran, x.climbing = g, true, true
		if p := x.t.process(); p != nil {
			log.Printf("%s up (pid %d)", x.t.name(), p.pid())
			r.pgids = append(r.pgids, p.pid())
		}
	}
	time.Sleep(2 * time.Second) // let start-up settle before the references
	for _, x := range ts {
		if p := x.t.process(); p != nil && x.tr.ran {
			x.tr.rss0KB = rssKB(p.pid())
			m := x.t.metrics()
			x.tr.heap0, x.tr.gor0 = m["go_memstats_heap_inuse_bytes"], m["go_goroutines"]
			log.Printf("%s idle: RSS %.1f MB", x.t.name(), float64(x.tr.rss0KB)/1024)
		}
	}
	var base *tstate
	for _, x := range ts {
		if x.t.name() == "baseline" {
			base = x
		}
	}
	t0 := time.Now()
	for _, n := range r.calls {
		for _, x := range ts {
			if !x.climbing || ctx.Err() != nil {
				continue
			}
			if base != nil && x != base && base.tr.best < n {
				log.Printf("%s: the baseline is clean up to %d calls only; stopping", x.t.name(), base.tr.best)
				x.climbing = false
				continue
			}
			if time.Since(t0) > r.ladderTime {
				log.Printf("%s: ladder time budget (%s) spent; stopping before %d calls", x.t.name(), r.ladderTime, n)
				x.climbing = false
				continue
			}
			s := r.measureStep(ctx, x, n)
			if ctx.Err() != nil {
				break
			}
			x.tr.steps[n] = s
			if p := x.t.process(); p != nil && !p.alive() {
				log.Printf("%s DIED at %d calls (exit code %d):\n%s", x.t.name(), n, p.exitCode(), lastLines(p.log, 20))
				x.tr.crashed, x.climbing = true, false
				continue
			}
			if !s.pass {
				x.climbing = false
				continue
			}
			x.tr.best = n
		}
		if ctx.Err() != nil {
			break
		}
		// The baseline climbs on only while a relay does.
		if base != nil && base.climbing && len(ts) > 1 {
			relays := false
			for _, x := range ts {
				relays = relays || (x != base && x.climbing)
			}
			if !relays {
				log.Printf("baseline: no relay left on the ladder; stopping at %d calls", n)
				base.climbing = false
			}
		}
	}
	return failed
}

// measureStep brings x to n calls and measures it. A failing window is
// measured again (after waiting for the machine to go quiet): the step
// fails after two failing windows that had the CPUs to themselves, or
// after four windows in all.
func (r *run) measureStep(ctx context.Context, x *tstate, n int) stepResult {
	r.waitQuietFor(ctx, 15*time.Second)
	x.g.resume()
	defer x.g.pause()
	added, setupFailed := r.addCalls(ctx, x.t, x.g, &x.calls, n)
	if added > 0 || setupFailed > 0 {
		log.Printf("%s: %d calls up (%d new, %d set-ups failed)", x.t.name(), len(x.calls), added, setupFailed)
	}
	select {
	case <-ctx.Done():
	case <-time.After(r.warmup):
	}
	var s stepResult
	cleanFails := 0
	for try := 1; try <= maxTries && cleanFails < 2; try++ {
		if try > 1 {
			r.waitQuietFor(ctx, 15*time.Second)
		}
		s = r.step(ctx, x.t, x.g, x.tr, n, try, setupFailed)
		if ctx.Err() != nil || s.pass || setupFailed > 0 {
			break
		}
		if s.otherCPUPct <= noisyPct {
			cleanFails++
		}
	}
	return s
}

// A window in which other programs used more than noisyPct of a core is
// "noisy": its failure does not count as one of the two that fail a step.
const (
	noisyPct = 25
	maxTries = 4
)

// addCalls sets up calls until n are up, setupConc at a time.
func (r *run) addCalls(ctx context.Context, t target, g *gen, calls *[]*call, n int) (added, failed int) {
	var mu sync.Mutex
	sem := make(chan struct{}, r.setupConc)
	var wg sync.WaitGroup
	var firstErr error
	for i := len(*calls); i < n; i++ {
		a, err := g.newLeg()
		if err != nil {
			failed++
			firstErr = err
			break
		}
		b, err := g.newLeg()
		if err != nil {
			failed++
			firstErr = err
			break
		}
		c := &call{i: i, a: a, b: b}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			err := t.setup(sctx, c)
			cancel()
			if err == nil {
				if err = g.start(c.a, c.relayA); err == nil {
					err = g.start(c.b, c.relayB)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			added++
			*calls = append(*calls, c)
		}()
	}
	wg.Wait()
	if firstErr != nil {
		log.Printf("%s: %d call set-ups failed; first: %v", t.name(), failed, firstErr)
	}
	return added, failed
}

// teardown ends every call (BYE, ng delete), setupConc at a time.
func (r *run) teardown(t target, calls []*call) {
	if len(calls) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sem := make(chan struct{}, r.setupConc)
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	var firstErr error
	for _, c := range calls {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := t.teardown(cctx, c); err != nil {
				mu.Lock()
				failed++
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if failed > 0 {
		log.Printf("%s: %d of %d calls did not end cleanly; first: %v", t.name(), failed, len(calls), firstErr)
	} else if t.name() != "baseline" {
		log.Printf("%s: %d calls ended", t.name(), len(calls))
	}
}

type stepResult struct {
	window
	calls, try    int
	sendRatePct   float64
	jitterP50     float64
	jitterP99     float64
	jitterMax     float64
	baseP99       float64
	relayCPUPct   float64
	cpuUsPerPkt   float64
	genCPUPct     float64
	otherCPUPct   float64
	udpDrops      int64
	rssMB         float64
	rssKBPerCall  float64
	heapKBPerCall float64
	goroutines    int
	setupFailed   int
	pass          bool
	why           string
}

// step measures one window at n calls.
func (r *run) step(ctx context.Context, t target, g *gen, tr *targetResult, n, try, setupFailed int) stepResult {
	s := stepResult{calls: n, try: try, setupFailed: setupFailed, goroutines: -1}
	pid := 0
	if p := t.process(); p != nil {
		pid = p.pid()
	}
	var prof sync.WaitGroup
	if k, ok := t.(*kaopu); ok && r.pprof && n == r.profileCalls && try == 1 {
		prof.Add(1)
		go func() {
			defer prof.Done()
			path := filepath.Join(r.out, "logs", fmt.Sprintf("relay-kaopu-cpu-%d.pprof", n))
			if err := k.profile(ctx, r.window, path); err != nil {
				log.Printf("kaopu CPU profile: %v", err)
			} else {
				log.Printf("kaopu CPU profile at %d calls: %s", n, path)
			}
		}()
	}
	m0 := g.snapshot()
	g.record(true)
	cpu0, self0 := groupCPU(pid), selfCPU()
	b0, tot0 := sysstat.MachineCPU()
	d0 := sysstat.UDPDrops()
	t0 := time.Now()
	select {
	case <-ctx.Done():
	case <-time.After(r.window):
	}
	m1 := g.snapshot()
	samples := g.record(false)
	wall := time.Since(t0).Seconds()
	cpu1, self1 := groupCPU(pid), selfCPU()
	b1, tot1 := sysstat.MachineCPU()
	s.udpDrops = sysstat.UDPDrops() - d0
	prof.Wait()
	if k, ok := t.(*kaopu); ok && r.pprof && n == r.profileCalls && try == 1 {
		// After the window's readings: the forced GC must not touch them.
		defer func() {
			path := filepath.Join(r.out, "logs", fmt.Sprintf("relay-kaopu-heap-%d.pprof", n))
			if err := k.profile(ctx, 0, path); err != nil {
				log.Printf("kaopu heap profile: %v", err)
			}
		}()
	}
	s.window = diffWindow(m0, m1)
	s.jitterP50 = percentile(samples, 50)
	s.jitterP99 = percentile(samples, 99)
	s.jitterMax = percentile(samples, 100)
	want := float64(len(m1)) * 1000 / ptime * wall // every started leg sends 50/s
	if want > 0 {
		s.sendRatePct = 100 * float64(s.sent) / want
	}
	if pid != 0 {
		relay := float64(cpu1-cpu0) / r.hz
		s.relayCPUPct = 100 * relay / wall
		if s.received > 0 {
			s.cpuUsPerPkt = relay * 1e6 / float64(s.received)
		}
		rss := rssKB(pid)
		s.rssMB = float64(rss) / 1024
		s.rssKBPerCall = float64(rss-tr.rss0KB) / float64(n)
		if m := t.metrics(); m != nil {
			if h, ok := m["go_memstats_heap_inuse_bytes"]; ok {
				s.heapKBPerCall = (h - tr.heap0) / 1024 / float64(n)
			}
			if v, ok := m["go_goroutines"]; ok {
				s.goroutines = int(v)
			}
		}
	}
	s.genCPUPct = 100 * float64(self1-self0) / r.hz / wall
	if tot1 > tot0 {
		machine := 100 * float64(runtime.NumCPU()) * float64(b1-b0) / float64(tot1-tot0)
		s.otherCPUPct = max(0, machine-s.relayCPUPct-s.genCPUPct)
	}
	r.maxOther = max(r.maxOther, s.otherCPUPct)
	if t.name() == "baseline" {
		r.baseP99[n] = s.jitterP99
	} else {
		s.baseP99 = r.baseP99[n]
	}
	var why []string
	if setupFailed > 0 {
		why = append(why, fmt.Sprintf("%d set-ups failed", setupFailed))
	}
	if s.dead > 0 {
		why = append(why, fmt.Sprintf("%d streams got nothing", s.dead))
	}
	if s.lossPct() >= r.maxLossPct {
		why = append(why, fmt.Sprintf("loss %.3f%%", s.lossPct()))
	}
	if s.sendRatePct < 95 {
		why = append(why, fmt.Sprintf("generator sent %.0f%% of the packets due", s.sendRatePct))
	}
	if t.name() != "baseline" {
		if base, ok := r.baseP99[n]; !ok {
			why = append(why, "no baseline at this step")
		} else if s.jitterP99 > base+r.jitterMargin || math.IsNaN(s.jitterP99) {
			why = append(why, fmt.Sprintf("jitter p99 %.2f ms > baseline %.2f + %.0f ms", s.jitterP99, base, r.jitterMargin))
		}
	}
	if p := t.process(); p != nil && !p.alive() {
		why = append(why, "relay died")
	}
	s.pass = len(why) == 0
	s.why = strings.Join(why, "; ")
	verdict := "pass"
	if !s.pass {
		verdict = "FAIL (" + s.why + ")"
	}
	mem := ""
	if pid != 0 {
		mem = fmt.Sprintf(" relay_cpu=%.0f%% %.2fµs/pkt rss=%.0fMB (%.1f KB/call)", s.relayCPUPct, s.cpuUsPerPkt, s.rssMB, s.rssKBPerCall)
		if s.goroutines >= 0 {
			mem += fmt.Sprintf(" heap %.1f KB/call goroutines=%d", s.heapKBPerCall, s.goroutines)
		}
	}
	log.Printf("%-9s %5d calls try %d: %s received=%d lost=%d (%.3f%%) sent=%.1f%% jitter p50/p99/max=%.2f/%.2f/%.2f ms (baseline p99 %.2f)%s gen_cpu=%.0f%% other_cpu=%.0f%% udp_drops=%d",
		t.name(), n, try, verdict, s.received, s.lost, s.lossPct(), s.sendRatePct, s.jitterP50, s.jitterP99, s.jitterMax, s.baseP99,
		mem, s.genCPUPct, s.otherCPUPct, s.udpDrops)
	fmt.Fprintf(r.steps, "%s,%d,%d,%d,%d,%d,%d,%.4f,%d,%.1f,%d,%d,%.3f,%.3f,%.3f,%.3f,%.1f,%.2f,%.1f,%.1f,%d,%.1f,%.1f,%.1f,%d,%d,%v,%q\n",
		t.name(), n, try, s.streams, s.expected, s.received, s.lost, s.lossPct(), s.dead, s.sendRatePct, s.sendErr, s.recvErr,
		s.jitterP50, s.jitterP99, s.jitterMax, s.baseP99, s.relayCPUPct, s.cpuUsPerPkt, s.genCPUPct, s.otherCPUPct, s.udpDrops,
		s.rssMB, s.rssKBPerCall, s.heapKBPerCall, s.goroutines, s.setupFailed, s.pass, s.why)
	return s
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func rtpengineVersion(bin string) string {
	out, err := execOutput(bin, "--version")
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Version:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return strings.TrimSpace(out)
}
