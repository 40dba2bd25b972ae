package main

// The call bench: `regbench calls -tmp DIR [flags]` (bench/run.sh runs it
// after the registrar bench). Calls per second through kaopu, media
// anchored, against Kamailio as a stateful proxy without media, with the
// same sipp load and the same rate ladder. See bench/README.md.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kaopu/kaopu/bench/internal/sysstat"
)

func init() {
	if len(os.Args) > 1 && os.Args[1] == "calls" {
		os.Exit(runCalls(os.Args[2:]))
	}
}

// callBench holds the call bench's settings; the servers, processes and
// readings are the registrar bench's (b).
type callBench struct {
	b         *bench
	root      string // the -tmp given; the call bench works in root/calls
	uac       string
	regScen   string
	uas       string
	callee    string
	rates     []int
	stepSecs  int
	budget    time.Duration
	callerCSV string
	calleeCSV string
	uacPort   int
	callers   int
	trace     bool
	// The trunk bench (trunk.go) runs the same ladder twice on kaopu:
	// label names each run in logs, step files and figures; service is
	// the Request-URI user the callers dial (default: callee); uasIP and
	// uasPort place the callee's UAS (default 127.0.0.1 and a free port);
	// noRegister leaves the callee unregistered (a trunk's carrier);
	// billing reads kaopu_billing_start_seconds around every step.
	label      string
	service    string
	uasIP      string
	uasPort    int
	noRegister bool
	billing    bool
	res        io.Writer
	resFile    *os.File
	steps      *os.File
}

func runCalls(args []string) int {
	log.SetFlags(log.Ltime)
	log.SetPrefix("callbench: ")
	b := &bench{procs: &procs{}, ports: &ports{}, start: time.Now()}
	c := &callBench{b: b}
	fs := flag.NewFlagSet("calls", flag.ExitOnError)
	var servers, rates string
	fs.StringVar(&c.root, "tmp", "", "scratch directory (required)")
	fs.StringVar(&b.out, "out", "bench/out", "results directory (results.txt is appended to)")
	fs.StringVar(&b.domain, "domain", "bench.test", "SIP domain and digest realm")
	fs.StringVar(&b.kaopuBin, "kaopu", os.Getenv("KAOPU_BIN"), "kaopu binary")
	fs.StringVar(&b.sippBin, "sipp", "sipp", "sipp binary")
	fs.StringVar(&b.kamailioBin, "kamailio", "kamailio", "kamailio binary")
	fs.StringVar(&b.kamailioCfg, "kamailio-cfg", "bench/kamailio/kamailio-proxy.cfg", "Kamailio stateful-proxy config")
	fs.StringVar(&c.uac, "scenario", "bench/sipp/uac_call_auth.xml", "sipp caller scenario")
	fs.StringVar(&c.uas, "uas-scenario", "bench/sipp/uas_call.xml", "sipp callee scenario")
	fs.StringVar(&c.regScen, "register-scenario", "bench/sipp/register_auth.xml", "sipp scenario registering the callee")
	fs.StringVar(&c.callee, "callee", "bob", "callee user (registered from the sipp UAS's port)")
	fs.StringVar(&rates, "rates", "100,200,400,600,800,1000,1200,1400,1600,1800,2000,2400,2800,3200,3600,4000", "rate ladder, calls/s")
	fs.IntVar(&c.stepSecs, "step-seconds", 10, "seconds of new calls per step (each call holds 1 s)")
	fs.IntVar(&c.callers, "callers", 2000, "distinct caller users")
	fs.DurationVar(&c.budget, "ladder-time", 200*time.Second, "time budget of the rate steps per server")
	fs.DurationVar(&b.quietWait, "quiet-wait", 60*time.Second, "before each server, wait up to this long for the CPUs to be < 25 % busy")
	fs.BoolVar(&c.trace, "trace", false, "sipp callers write every message to messages.log (debugging; slows sipp)")
	fs.StringVar(&servers, "servers", "kamailio,kaopu", "servers to measure")
	fs.Parse(args)
	if c.root == "" {
		log.Print("-tmp is required")
		return 2
	}
	for _, f := range strings.Split(rates, ",") {
		if v, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && v > 0 {
			c.rates = append(c.rates, v)
		}
	}
	sort.Ints(c.rates)
	b.servers = map[string]bool{}
	for _, s := range strings.Split(servers, ",") {
		b.servers[strings.TrimSpace(s)] = true
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer b.procs.stopAll()
	return c.run(ctx)
}

func (c *callBench) run(ctx context.Context) int {
	b := c.b
	var err error
	for _, p := range []*string{&c.root, &b.out, &b.kamailioCfg, &c.uac, &c.uas, &c.regScen} {
		if a, err := filepath.Abs(*p); err == nil {
			*p = a
		}
	}
	all, closeFiles, err := c.setUp("calls", "call", "server,"+stepsColumns)
	if err != nil {
		log.Print(err)
		return 1
	}
	defer closeFiles()
	us := all[:len(all)-1]
	log.Printf("%d callers -> %s@%s; %d-second steps at %v calls/s, 1 s hold", len(us), c.callee, b.domain, c.stepSecs, c.rates)

	failed := false
	maxRate := map[string]int{}
	if b.servers["kamailio"] {
		k := &kamailio{b: b}
		if err := k.prepare(all); err != nil {
			log.Printf("kamailio: database: %v", err)
			failed = true
		} else if lr, ok := c.measure(ctx, k); ok {
			maxRate["kamailio"] = lr.best
			failed = failed || lr.crashed
		} else {
			failed = true
		}
	}
	if ctx.Err() != nil {
		return 130
	}
	if b.servers["kaopu"] {
		seed, _, err := importUsers(ctx, b, all)
		if err != nil {
			log.Printf("kaopu: %v", err)
			failed = true
		} else if lr, ok := c.measure(ctx, &kaopu{b: b, tag: "calls", seed: seed}); ok {
			maxRate["kaopu"] = lr.best
			failed = failed || lr.crashed
		} else {
			failed = true
		}
	}
	if ctx.Err() != nil {
		return 130
	}
	for _, name := range []string{"kaopu", "kamailio"} {
		if !b.servers[name] {
			continue
		}
		if v, ok := maxRate[name]; ok {
			c.fig("call."+name+".max_rate_per_s", v)
		} else {
			c.fig("call."+name+".max_rate_per_s", "n/a")
		}
	}
	if maxRate["kamailio"] > 0 && b.servers["kaopu"] {
		if v, ok := maxRate["kaopu"]; ok {
			c.fig("call.ratio_kaopu_kamailio", fmt.Sprintf("%.2f", float64(v)/float64(maxRate["kamailio"])))
		}
	}
	c.fig("call.other_cpu_pct_max", fmt.Sprintf("%.0f", b.maxOther))
	log.Printf("call bench done in %s", time.Since(b.start).Round(time.Second))
	if failed {
		return 1
	}
	return 0
}

func (c *callBench) fig(name string, v any) { fmt.Fprintf(c.res, "%s %v\n", name, v) }

type callLadder struct {
	best    int
	crashed bool
	top     callStep // the highest passing step
	ok      int      // calls that succeeded in all steps
	// allBilling is kaopu_billing_start_seconds after the ladder (every
	// step, failed ones too), when callBench.billing.
	allBilling hist
}

// who names a run: its label, or the server's name.
func (c *callBench) who(s server) string {
	if c.label != "" {
		return c.label
	}
	return s.name()
}

// figPrefix starts the names of a run's figures.
func (c *callBench) figPrefix(s server) string {
	if c.label != "" {
		return "calls." + c.label
	}
	return "call." + s.name()
}

// dialed is the Request-URI user the callers call.
func (c *callBench) dialed() string {
	if c.service != "" {
		return c.service
	}
	return c.callee
}

// measure starts s, registers the callee, starts the callee's sipp UAS and
// runs the ladder; everything is stopped on return.
func (c *callBench) measure(ctx context.Context, s server) (callLadder, bool) {
	b := c.b
	defer s.stop()
	b.waitQuiet(ctx)
	if err := s.start(ctx); err != nil {
		log.Printf("%s: %v", c.who(s), err)
		return callLadder{}, false
	}
	log.Printf("%s up on %s (pid %d)", c.who(s), s.target(), s.process().pid())
	q := c.uasPort
	if q == 0 {
		var err error
		if q, err = b.ports.get(); err != nil {
			log.Print(err)
			return callLadder{}, false
		}
	}
	if !c.noRegister {
		if err := c.registerCallee(ctx, s, q); err != nil {
			log.Printf("%s: registering %s from port %d: %v", c.who(s), c.callee, q, err)
			return callLadder{}, false
		}
	}
	uas, err := c.startUAS(s, q)
	if err != nil {
		log.Printf("%s: callee: %v", c.who(s), err)
		return callLadder{}, false
	}
	defer uas.stop(3 * time.Second)
	time.Sleep(500 * time.Millisecond) // the UAS binds its port
	if !uas.alive() {
		log.Printf("%s: callee sipp exited at start:\n%s", c.who(s), lastLines(uas.log.Name(), 10))
		return callLadder{}, false
	}
	var lr callLadder
	t0 := time.Now()
	failedRates := 0
	var top callStep
	for _, rate := range c.rates {
		if time.Since(t0) > c.budget {
			log.Printf("%s: ladder time budget (%s) spent; stopping before %d/s", c.who(s), c.budget, rate)
			break
		}
		pass := false
		for try := 1; try <= 2 && !pass; try++ {
			if try == 2 && time.Since(t0) > c.budget {
				break
			}
			r, alive := c.step(ctx, s, rate, try)
			if ctx.Err() != nil {
				return lr, true
			}
			if !alive {
				lr.crashed = true
				c.fig(c.figPrefix(s)+".crashed_under_load", 1)
				return lr, true
			}
			if !uas.alive() {
				log.Printf("%s: callee sipp died:\n%s", c.who(s), lastLines(uas.log.Name(), 10))
				return lr, true
			}
			lr.ok += r.ok
			pass = r.pass
			if pass {
				top = r
			}
		}
		if !pass {
			if failedRates++; failedRates == 2 {
				break
			}
			continue
		}
		failedRates = 0
		lr.best = rate
		lr.top = top
	}
	if k, ok := s.(*kaopu); ok {
		fp := c.figPrefix(s)
		if c.label == "" {
			fp = "call.kaopu"
		}
		if top.rate > 0 {
			c.fig(fp+".goroutines_max_at_top_step", top.goroutines)
			c.fig(fp+".rss_mb_max_at_top_step", fmt.Sprintf("%.0f", top.rssMB))
		}
		// Calls of the last step are over (1 s hold, 2 s drain); what is
		// left now is what does not go away.
		time.Sleep(3 * time.Second)
		m := k.metrics()
		if v, ok := m["go_goroutines"]; ok {
			c.fig(fp+".goroutines_idle_after_ladder", int(v))
		}
		if rss, _, err := vmRSS(k.p.pid()); err == nil {
			c.fig(fp+".rss_mb_idle_after_ladder", fmt.Sprintf("%.0f", float64(rss)/1024))
		}
		var names []string
		for n := range m {
			if strings.Contains(n, "call") || strings.Contains(n, "billing_cache") || strings.Contains(n, "rtp") || strings.Contains(n, "media") || strings.Contains(n, "transaction") || strings.Contains(n, "dialog") {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		for _, n := range names {
			log.Printf("kaopu metric after the ladder (%s): %s %g", c.who(s), n, m[n])
		}
		if c.billing {
			lr.allBilling = billingHist(m)
		}
	}
	return lr, true
}

func (c *callBench) registerCallee(ctx context.Context, s server, port int) error {
	b := c.b
	dir := filepath.Join(b.tmp, "sipp", c.who(s)+"-register")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	argv := []string{
		b.sippBin, s.target(),
		"-sf", c.regScen, "-inf", c.calleeCSV,
		"-key", "domain", b.domain, "-auth_uri", b.domain,
		"-t", "u1", "-i", "127.0.0.1", "-p", strconv.Itoa(port),
		"-m", "1", "-nostdin", "-timeout", "15s", "-recv_timeout", "5000",
		"-trace_screen", "-screen_file", filepath.Join(dir, "screen.log"),
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"),
	}
	p, err := b.procs.start("sipp-"+c.who(s)+"-register", filepath.Join(dir, "sipp.out"), dir, argv...)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 25*time.Second)
	defer cancel()
	if err := p.wait(wctx); err != nil {
		return fmt.Errorf("sipp register: %v; %s", err, lastLines(filepath.Join(dir, "errors.log"), 5))
	}
	return nil
}

func (c *callBench) startUAS(s server, port int) (*proc, error) {
	b := c.b
	dir := filepath.Join(b.tmp, "sipp", c.who(s)+"-uas")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ctl, err := b.ports.get()
	if err != nil {
		return nil, err
	}
	mp, err := b.ports.get()
	if err != nil {
		return nil, err
	}
	ip := c.uasIP
	if ip == "" {
		ip = "127.0.0.1"
	}
	argv := []string{
		b.sippBin, "-sf", c.uas,
		"-t", "u1", "-i", ip, "-p", strconv.Itoa(port), "-mp", strconv.Itoa(mp),
		"-buff_size", "4194304", "-ci", "127.0.0.1", "-cp", strconv.Itoa(ctl),
		"-nostdin", "-recv_timeout", "10000",
		"-trace_stat", "-stf", filepath.Join(dir, "stat.csv"), "-fd", "1",
		"-trace_screen", "-screen_file", filepath.Join(dir, "screen.log"),
	}
	return b.procs.start("sipp-"+c.who(s)+"-uas", filepath.Join(dir, "sipp.out"), dir, argv...)
}

type callStep struct {
	sippStats
	rate, calls int
	failPct     float64
	achieved    float64
	cpuPct      float64
	cpuUsCall   float64
	sippCPUPct  float64
	otherPct    float64
	rssMB       float64
	goroutines  int
	udpDrops    int64
	pass        bool
	billing     hist // kaopu_billing_start_seconds during the step (callBench.billing)
}

// step runs one sipp caller step while sampling the server's RSS and (for
// kaopu) goroutines once a second. alive is false when the server died.
func (c *callBench) step(ctx context.Context, s server, rate, try int) (callStep, bool) {
	b := c.b
	r := callStep{rate: rate, calls: rate * c.stepSecs, goroutines: -1}
	p := s.process()
	cpu0, _ := groupCPU(p.pid())
	drops0 := sysstat.UDPDrops()
	busy0, total0 := sysstat.MachineCPU()
	var bill0 hist
	k, _ := s.(*kaopu)
	if c.billing && k != nil {
		bill0 = billingHist(k.metrics())
	}
	t0 := time.Now()
	sctx, cancelSample := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-sctx.Done():
				return
			case <-time.After(time.Second):
			}
			if rss, _, err := vmRSS(p.pid()); err == nil {
				r.rssMB = max(r.rssMB, float64(rss)/1024)
			}
			if g := s.goroutines(); g > r.goroutines {
				r.goroutines = g
			}
		}
	}()
	st, sp, err := c.runSipp(ctx, fmt.Sprintf("calls-%s-%d-%d", c.who(s), rate, try), s.target(), rate)
	cancelSample()
	<-sampled
	if c.billing && k != nil {
		r.billing = billingHist(k.metrics()).minus(bill0)
	}
	wall := time.Since(t0).Seconds()
	cpu1, _ := groupCPU(p.pid())
	r.udpDrops = sysstat.UDPDrops() - drops0
	busy1, total1 := sysstat.MachineCPU()
	r.sippStats = st
	if sp != nil {
		r.sippCPUPct = 100 * sp.cpuTime().Seconds() / wall
	}
	if ctx.Err() != nil {
		return r, true
	}
	if err != nil {
		log.Printf("%s %d/s: sipp: %v", c.who(s), rate, err)
	}
	cpuSecs := float64(cpu1-cpu0) / b.hz
	r.cpuPct = 100 * cpuSecs / wall
	if total1 > total0 {
		machine := 100 * float64(runtime.NumCPU()) * float64(busy1-busy0) / float64(total1-total0)
		r.otherPct = max(0, machine-r.cpuPct-r.sippCPUPct)
	}
	if r.otherPct > b.maxOther {
		b.maxOther = r.otherPct
	}
	if r.ok > 0 {
		r.cpuUsCall = cpuSecs * 1e6 / float64(r.ok)
	}
	r.failPct = 100 * float64(r.calls-r.ok) / float64(r.calls)
	if r.createSecs > 0 {
		r.achieved = float64(r.created) / r.createSecs
	}
	r.pass = err == nil && r.failPct < 0.1 && r.achieved >= 0.95*float64(rate)
	verdict := "pass"
	if !r.pass {
		verdict = "FAIL"
	}
	billNote := ""
	if c.billing {
		billNote = fmt.Sprintf(" billing_starts=%d billing_p99=%s", r.billing.count(), fmtMs(r.billing.quantile(0.99)))
	}
	log.Printf("%-8s %5d/s try %d: %s ok=%d/%d failed=%.2f%% (timeout=%d unexpected=%d max_retrans=%d) achieved=%.0f/s retrans=%d udp_drops=%d setup=%.1fms server_cpu=%.0f%% (%.0fµs/call) sipp_cpu=%.0f%% other_cpu=%.0f%% rss_max=%.0fMB goroutines_max=%d%s",
		c.who(s), rate, try, verdict, r.ok, r.calls, r.failPct, r.timeoutRecv, r.unexpected, r.maxRetrans, r.achieved, r.retrans, r.udpDrops, r.rtdMs,
		r.cpuPct, r.cpuUsCall, r.sippCPUPct, r.otherPct, r.rssMB, r.goroutines, billNote)
	fmt.Fprintf(c.steps, "%s,%d,%d,%d,%d,%d,%.3f,%.0f,%d,%d,%d,%d,%d,%.2f,%.1f,%.1f,%.1f,%.1f,%.1f,%d,%v",
		c.who(s), rate, r.calls, r.created, r.ok, r.calls-r.ok, r.failPct, r.achieved, r.timeoutRecv, r.unexpected, r.maxRetrans, r.retrans, r.udpDrops, r.rtdMs,
		r.cpuPct, r.cpuUsCall, r.sippCPUPct, r.otherPct, r.rssMB, r.goroutines, r.pass)
	if c.billing {
		fmt.Fprintf(c.steps, ",%d,%s", r.billing.count(), fmtMs(r.billing.quantile(0.99)))
	} else if c.label != "" {
		fmt.Fprint(c.steps, ",,") // the trunk bench's billing columns
	}
	fmt.Fprintln(c.steps)
	if !p.alive() {
		log.Printf("%s DIED during the %d/s call step (exit code %d); last log lines:\n%s",
			c.who(s), rate, p.exitCode(), lastLines(p.log.Name(), 20))
		return r, false
	}
	select {
	case <-ctx.Done():
	case <-time.After(2 * time.Second):
	}
	return r, true
}

// runSipp runs one bounded sipp caller step: rate calls/s for stepSecs.
func (c *callBench) runSipp(ctx context.Context, tag, target string, rate int) (sippStats, *proc, error) {
	b := c.b
	var st sippStats
	calls := rate * c.stepSecs
	ctl, err := b.ports.get()
	if err != nil {
		return st, nil, err
	}
	mp, err := b.ports.get()
	if err != nil {
		return st, nil, err
	}
	dir := filepath.Join(b.tmp, "sipp", tag)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return st, nil, err
	}
	statFile := filepath.Join(dir, "stat.csv")
	argv := []string{
		b.sippBin, target,
		"-sf", c.uac, "-inf", c.callerCSV,
		"-s", c.dialed(), "-key", "domain", b.domain,
		"-auth_uri", c.dialed() + "@" + b.domain, // digest uri = the Request-URI
		"-t", "u1", "-i", "127.0.0.1", "-p", strconv.Itoa(c.uacPort), "-mp", strconv.Itoa(mp),
		"-r", strconv.Itoa(rate), "-rp", "1000",
		"-m", strconv.Itoa(calls),
		"-l", strconv.Itoa(max(rate*5, 100)),
		"-buff_size", "4194304",
		"-ci", "127.0.0.1", "-cp", strconv.Itoa(ctl),
		"-nostdin",
		"-recv_timeout", "5000",
		// A proxy may relay the callee's 180 and 200 in either order (two
		// Kamailio workers, several kaopu readers); RFC 3261 has the UAC
		// ignore a 1xx after the 2xx. Without this sipp aborts the call.
		// A real failure still fails the call: its awaited answer times out.
		"-default_behaviors", "all,-abortunexp",
		"-timeout", fmt.Sprintf("%ds", c.stepSecs+25),
		"-trace_stat", "-stf", statFile, "-fd", "1",
		"-trace_screen", "-screen_file", filepath.Join(dir, "screen.log"),
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"),
	}
	if c.trace {
		argv = append(argv, "-trace_msg", "-message_file", filepath.Join(dir, "messages.log"))
	}
	p, err := b.procs.start("sipp-"+tag, filepath.Join(dir, "sipp.out"), dir, argv...)
	if err != nil {
		return st, nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, time.Duration(c.stepSecs+40)*time.Second)
	defer cancel()
	werr := p.wait(wctx)
	if errors.Is(werr, context.Canceled) || errors.Is(werr, context.DeadlineExceeded) {
		return st, p, fmt.Errorf("sipp did not stop: %w", werr)
	}
	st, err = parseSippStat(statFile)
	return st, p, err
}

// stepsColumns are the columns of a steps CSV after the first (the server
// or run measured).
const stepsColumns = "rate,calls,created,ok,failed,fail_pct,achieved_per_s,timeout_recv,unexpected,max_retrans,retrans,udp_drops,setup_ms,server_cpu_pct,server_cpu_us_per_call,sipp_cpu_pct,other_cpu_pct,server_rss_mb_max,goroutines_max,pass"

// setUp prepares a call run named name ("calls", "trunk"): its
// directories, results.txt (appended, headed by what ran where) and
// NAME-steps.csv with header, the sipp user files of the callers and of
// the extension callee, and the callers' sipp port. It returns every user,
// the callee last, and what closes the files.
func (c *callBench) setUp(name, what, header string) (all []user, closeFiles func(), err error) {
	b := c.b
	b.tmp = filepath.Join(c.root, name)
	for _, d := range []string{b.tmp, b.out} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, nil, err
		}
	}
	// run.sh's backstop reads ROOT/pids.
	b.procs.pidFile = filepath.Join(c.root, "pids")
	b.hz = sysstat.ClockTicks()
	if c.resFile, err = os.OpenFile(filepath.Join(b.out, "results.txt"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err != nil {
		return nil, nil, err
	}
	c.res = io.MultiWriter(os.Stdout, c.resFile)
	fmt.Fprintf(c.resFile, "# kaopu %s bench, %s, %d CPUs (%s), %s\n",
		what, time.Now().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), cpuModel(), versions(b))
	if c.steps, err = os.Create(filepath.Join(b.out, name+"-steps.csv")); err != nil {
		c.resFile.Close()
		return nil, nil, err
	}
	closeFiles = func() { c.steps.Close(); c.resFile.Close() }
	fmt.Fprintln(c.steps, header)
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		log.Printf("load average before the %s bench: %s", what, strings.TrimSpace(string(la)))
	}
	us := makeUsers(c.callers)
	calleeUser := user{name: c.callee, password: "callee-" + c.callee + "-pw"}
	c.callerCSV = filepath.Join(b.tmp, "callers.csv")
	c.calleeCSV = filepath.Join(b.tmp, "callee.csv")
	if err = writeSippCSV(c.callerCSV, us); err == nil {
		err = writeSippCSV(c.calleeCSV, []user{calleeUser})
	}
	if err == nil {
		c.uacPort, err = b.ports.get()
	}
	if err != nil {
		closeFiles()
		return nil, nil, err
	}
	return append(us, calleeUser), closeFiles, nil
}
