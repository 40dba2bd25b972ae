package main

// The trunk bench: `regbench trunk -tmp DIR [flags]` (bench/run.sh
// --trunk-only, and part of a full run). In one run, on two fresh kaopu
// servers started from the same data directory, the call bench's ladder
// (calls.go) measures calls/s extension to extension and calls/s from the
// same registered users through a route to a trunk whose carrier is a
// sipp UAS on another loopback address, every caller on a prepaid account
// rated by a 100,000-prefix deck; and billing's Start latency
// (kaopu_billing_start_seconds) during those calls. See bench/README.md.

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func init() {
	if len(os.Args) > 1 && os.Args[1] == "trunk" {
		os.Exit(runTrunk(os.Args[2:]))
	}
}

// trunkBench holds the trunk bench's settings on top of the call bench's.
type trunkBench struct {
	c           *callBench
	dial        string // national number the callers dial
	countryCode string
	carrierIP   string
	carrierPort int
	accounts    int
	prefixes    int
	hitPrefix   string // the deck's longest prefix of the dialed number
	seed        string
}

func runTrunk(args []string) int {
	log.SetFlags(log.Ltime)
	log.SetPrefix("trunkbench: ")
	b := &bench{procs: &procs{}, ports: &ports{}, start: time.Now()}
	c := &callBench{b: b}
	t := &trunkBench{c: c}
	fs := flag.NewFlagSet("trunk", flag.ExitOnError)
	var rates string
	fs.StringVar(&c.root, "tmp", "", "scratch directory (required)")
	fs.StringVar(&b.out, "out", "bench/out", "results directory (results.txt is appended to)")
	fs.StringVar(&b.domain, "domain", "bench.test", "SIP domain and digest realm")
	fs.StringVar(&b.kaopuBin, "kaopu", os.Getenv("KAOPU_BIN"), "kaopu binary")
	fs.StringVar(&b.sippBin, "sipp", "sipp", "sipp binary")
	fs.StringVar(&c.uac, "scenario", "bench/sipp/uac_call_auth.xml", "sipp caller scenario")
	fs.StringVar(&c.uas, "uas-scenario", "bench/sipp/uas_call.xml", "sipp callee and carrier scenario")
	fs.StringVar(&c.regScen, "register-scenario", "bench/sipp/register_auth.xml", "sipp scenario registering the callee")
	fs.StringVar(&c.callee, "callee", "bob", "callee user of the extension-to-extension run")
	fs.StringVar(&rates, "rates", "200,400,600,800,900,1000,1100,1200,1300,1400,1500,1600,1800,2000,2400", "rate ladder, calls/s (both runs)")
	fs.IntVar(&c.stepSecs, "step-seconds", 10, "seconds of new calls per step (each call holds 1 s)")
	fs.IntVar(&c.callers, "callers", 2000, "distinct caller users")
	fs.IntVar(&t.accounts, "accounts", 100, "prepaid accounts the callers are spread over")
	fs.IntVar(&t.prefixes, "prefixes", 100_000, "prefixes in the rate deck")
	fs.StringVar(&t.dial, "dial", "02079460000", "national number the callers dial through the trunk")
	fs.StringVar(&t.countryCode, "country-code", "44", "calls.country_code (the dialed number's country)")
	fs.StringVar(&t.carrierIP, "carrier-ip", "127.0.0.2", "loopback address of the carrier's sipp UAS")
	fs.DurationVar(&c.budget, "ladder-time", 200*time.Second, "time budget of the rate steps per run")
	fs.DurationVar(&b.quietWait, "quiet-wait", 60*time.Second, "before each run, wait up to this long for the CPUs to be < 25 % busy")
	fs.BoolVar(&c.trace, "trace", false, "sipp callers write every message to messages.log (debugging; slows sipp)")
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer b.procs.stopAll()
	return t.run(ctx)
}

func (t *trunkBench) run(ctx context.Context) int {
	c, b := t.c, t.c.b
	var err error
	for _, p := range []*string{&c.root, &b.out, &c.uac, &c.uas, &c.regScen} {
		if a, err := filepath.Abs(*p); err == nil {
			*p = a
		}
	}
	all, closeFiles, err := c.setUp("trunk", "trunk", "run,"+stepsColumns+",billing_starts,billing_start_p99_ms")
	if err != nil {
		log.Print(err)
		return 1
	}
	defer closeFiles()
	if t.carrierPort, err = b.ports.get(); err != nil {
		log.Print(err)
		return 1
	}
	// The dialed number is national: with the country code set, the
	// route normalizes it to E.164 for rating and the trunk.
	b.kaopuExtra = fmt.Sprintf("  country_code: %q\n", t.countryCode)
	if err := t.prepare(ctx, all); err != nil {
		log.Printf("kaopu: preparing the data directory: %v", err)
		return 1
	}

	failed := false
	ext, trunk := -1, -1
	// Extension to extension: callers -> bob, registered from the UAS's port.
	c.label = "ext"
	if lr, ok := c.measure(ctx, &kaopu{b: b, tag: "ext", seed: t.seed}); ok {
		ext = lr.best
		failed = failed || lr.crashed
	} else {
		failed = true
	}
	if ctx.Err() != nil {
		return 130
	}
	// Through the trunk, rated: callers -> the national number -> route ->
	// trunk -> the carrier's UAS on carrierIP.
	c.label, c.service, c.uasIP, c.uasPort, c.noRegister, c.billing = "trunk_rated", t.dial, t.carrierIP, t.carrierPort, true, true
	k := &kaopu{b: b, tag: "trunk", seed: t.seed}
	lr, ok := c.measure(ctx, k)
	if ok {
		trunk = lr.best
		failed = failed || lr.crashed
	} else {
		failed = true
	}
	if ctx.Err() != nil {
		return 130
	}

	figRate := func(name string, v int) {
		if v >= 0 {
			c.fig(name, v)
		} else {
			c.fig(name, "n/a")
		}
	}
	figRate("calls.kaopu.ext_max_rate_per_s", ext)
	figRate("calls.kaopu.trunk_rated_max_rate_per_s", trunk)
	if ext > 0 && trunk >= 0 {
		c.fig("calls.ratio_trunk_rated_ext", fmt.Sprintf("%.2f", float64(trunk)/float64(ext)))
	} else {
		c.fig("calls.ratio_trunk_rated_ext", "n/a")
	}
	if lr.top.rate > 0 {
		h := lr.top.billing
		c.fig("billing.start_p99_ms", fmtMs(h.quantile(0.99)))
		c.fig("billing.start_p50_ms", fmtMs(h.quantile(0.50)))
		c.fig("billing.start_mean_ms", fmtMs(h.mean()))
		c.fig("billing.start_count_at_top_step", h.count())
		c.fig("billing.top_step_rate_per_s", lr.top.rate)
	} else {
		c.fig("billing.start_p99_ms", "n/a")
	}
	if h := lr.allBilling; h.count() > 0 {
		c.fig("billing.start_p99_ms_all_steps", fmtMs(h.quantile(0.99)))
		c.fig("billing.start_count_all_steps", h.count())
	}
	if ok {
		if err := t.checkRated(k.dir, lr.ok); err != nil {
			log.Printf("trunk_rated: %v", err)
			failed = true
		}
	}
	c.fig("calls.other_cpu_pct_max", fmt.Sprintf("%.0f", b.maxOther))
	log.Printf("trunk bench done in %s", time.Since(b.start).Round(time.Second))
	if failed {
		return 1
	}
	return 0
}

// prepare makes the seed data directory both runs start from: the users
// (`kaopu user import`), the carrier's trunk and a route for national
// numbers, the rate deck, the prepaid accounts and every caller attached
// to one of them. Everything goes through kaopu's CLI except the
// attachment of 2,000 users (one SQL UPDATE; the CLI attaches one user
// per run), which is then checked through the CLI.
func (t *trunkBench) prepare(ctx context.Context, all []user) error {
	c, b := t.c, t.c.b
	t0 := time.Now()
	seed, _, err := importUsers(ctx, b, all)
	if err != nil {
		return err
	}
	t.seed = seed
	cli := func(args ...string) (string, error) {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		argv := append(args, "--data", seed, "--config", b.kaopuCfg)
		out, err := exec.CommandContext(cctx, b.kaopuBin, argv...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("kaopu %s: %v: %s", strings.Join(args, " "), err, tail(string(out), 600))
		}
		return string(out), nil
	}
	carrier := fmt.Sprintf("%s:%d", t.carrierIP, t.carrierPort)
	if _, err := cli("trunk", "add", "carrier", "--address", carrier, "--qualify", "0"); err != nil {
		return err
	}
	if _, err := cli("route", "add", "national", "--pattern", "_0[1-9]X.", "--trunks", "carrier"); err != nil {
		return err
	}
	e164 := t.countryCode + strings.TrimPrefix(t.dial, "0")
	deck := filepath.Join(b.tmp, "deck.csv")
	hit, err := writeDeck(deck, t.prefixes, e164)
	if err != nil {
		return err
	}
	t.hitPrefix = hit
	ti := time.Now()
	if _, err := cli("rate", "import", "retail", deck, "--currency", "EUR"); err != nil {
		return err
	}
	log.Printf("rate deck: %d prefixes imported in %s", t.prefixes, time.Since(ti).Round(time.Millisecond))
	out, err := cli("rate", "lookup", "retail", "+"+e164)
	if err != nil {
		return err
	}
	if !strings.Contains(out, "prefix "+hit+" ") {
		return fmt.Errorf("rate lookup +%s does not match prefix %s:\n%s", e164, hit, out)
	}
	log.Printf("the calls hit: %s", strings.TrimSpace(out))
	for i := range t.accounts {
		if _, err := cli("account", "add", acctName(i), "--prepaid", "--plan", "retail", "--currency", "EUR", "--balance", "1000000"); err != nil {
			return err
		}
	}
	// Caller i pays from account i mod accounts (the callers are
	// u100000… in order).
	var sql strings.Builder
	sql.WriteString("BEGIN;\n")
	for i := range c.callers {
		fmt.Fprintf(&sql, "UPDATE users SET account = '%s' WHERE name = 'u%d';\n", acctName(i%t.accounts), 100000+i)
	}
	sql.WriteString("COMMIT;\nSELECT count(*) FROM users WHERE account IS NOT NULL;\n")
	cmd := exec.CommandContext(ctx, "sqlite3", "-bail", filepath.Join(seed, "kaopu.db"))
	cmd.Stdin = strings.NewReader(sql.String())
	res, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("sqlite3: attaching the callers: %v: %s", err, tail(string(res), 400))
	}
	if n, _ := strconv.Atoi(strings.TrimSpace(string(res))); n != c.callers {
		return fmt.Errorf("%s callers attached to accounts, want %d", strings.TrimSpace(string(res)), c.callers)
	}
	show, err := cli("account", "show", acctName(0))
	if err != nil {
		return err
	}
	if !strings.Contains(show, "u100000") || !strings.Contains(show, "prepaid") {
		return fmt.Errorf("account %s does not show caller u100000 as prepaid:\n%s", acctName(0), show)
	}
	log.Printf("seed ready in %s: %d callers on %d prepaid accounts, trunk to %s, route _0[1-9]X., deck of %d prefixes",
		time.Since(t0).Round(time.Millisecond), c.callers, t.accounts, carrier, t.prefixes)
	return nil
}

func acctName(i int) string { return fmt.Sprintf("acct%03d", i) }

// writeDeck writes a rate deck of n distinct prefixes (`kaopu rate
// import` CSV): country codes, then random prefixes of 2 to 7 more
// digits under them, and the UK rows the calls hit. It returns the
// deck's longest prefix of number (E.164 digits): no random prefix is
// longer than it on number's path.
func writeDeck(path string, n int, number string) (string, error) {
	const hit = 8 // the calls hit number's first 8 digits (442079 46)
	if len(number) < hit+1 {
		return "", fmt.Errorf("number %s too short", number)
	}
	hitPrefix := number[:hit]
	ccs := []string{"1", "7", "20", "30", "31", "33", "34", "39", "41", "43", "44", "46", "48", "49", "55", "61", "81", "86", "91", "234", "351", "380", "971"}
	rng := rand.New(rand.NewPCG(6, 100_000))
	seen := map[string]bool{}
	err := writeLines(path, func(w *bufio.Writer) error {
		w.WriteString("prefix,destination,rate,connect,initial,increment\n")
		add := func(p, dest, rate, connect string, initial, inc int) {
			seen[p] = true
			fmt.Fprintf(w, "%s,%s,%s,%s,%d,%d\n", p, dest, rate, connect, initial, inc)
		}
		for _, cc := range ccs {
			add(cc, "CC "+cc, "0.0500", "0", 60, 60)
		}
		add(number[:4], "UK London", "0.0150", "0", 1, 1)
		add(hitPrefix, "UK London bench", "0.0123", "0", 1, 1)
		for len(seen) < n {
			p := ccs[rng.IntN(len(ccs))] + strconv.Itoa(10_000_000 + rng.IntN(90_000_000))[:2+rng.IntN(6)]
			if seen[p] || (strings.HasPrefix(number, p) && len(p) > len(hitPrefix)) {
				continue
			}
			add(p, "D "+p, fmt.Sprintf("0.%04d", 10+rng.IntN(5000)), []string{"0", "0.01"}[rng.IntN(2)], 30, 6)
		}
		return nil
	})
	return hitPrefix, err
}

// checkRated reads the trunk run's call records (the server has stopped):
// every call of the run went through the trunk, and each of the ok calls
// sipp completed must have been rated (its record carries the account).
// Calls that failed may have been left up when the server stopped, and
// their records unrated.
func (t *trunkBench) checkRated(dir string, ok int) error {
	out, err := exec.Command("sqlite3", filepath.Join(dir, "kaopu.db"),
		"SELECT count(*), sum(account <> ''), sum(cost > 0), sum(billed > 0) FROM cdrs; SELECT count(*) FROM ledger WHERE amount < 0;").Output()
	if err != nil {
		return fmt.Errorf("reading the call records: %v", err)
	}
	f := strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(out)), "|", " "))
	if len(f) != 5 {
		return fmt.Errorf("call records: unexpected %q", out)
	}
	n, _ := strconv.Atoi(f[0])
	rated, _ := strconv.Atoi(f[1])
	costed, _ := strconv.Atoi(f[2])
	debits, _ := strconv.Atoi(f[4])
	c := t.c
	c.fig("calls.trunk_rated.cdrs", n)
	c.fig("calls.trunk_rated.cdrs_rated", rated)
	c.fig("calls.trunk_rated.cdrs_with_cost", costed)
	c.fig("calls.trunk_rated.ledger_debits", debits)
	if n == 0 || rated < ok {
		return fmt.Errorf("%d of %d call records carry an account, fewer than the %d calls that succeeded: calls were not rated", rated, n, ok)
	}
	return nil
}

// ---------------------------------------------- kaopu_billing_start_seconds

// hist is a Prometheus histogram read from /metrics: cumulative buckets
// sorted by bound (the last is +Inf) and the sum of observations.
type hist struct {
	buckets []histBucket
	sum     float64 // seconds
}

// histBucket is one cumulative bucket.
type histBucket struct {
	le    float64 // upper bound, seconds (+Inf for the last)
	count float64 // observations ≤ le
}

const billingHistName = "kaopu_billing_start_seconds"

// billingHist picks kaopu_billing_start_seconds out of /metrics samples
// (kaopu.metrics); empty when absent.
func billingHist(m map[string]float64) hist {
	var h hist
	for k, v := range m {
		rest, ok := strings.CutPrefix(k, billingHistName+`_bucket{le="`)
		if !ok {
			continue
		}
		le, err := strconv.ParseFloat(strings.TrimSuffix(rest, `"}`), 64) // "+Inf" parses too
		if err != nil {
			continue
		}
		h.buckets = append(h.buckets, histBucket{le, v})
	}
	sort.Slice(h.buckets, func(i, j int) bool { return h.buckets[i].le < h.buckets[j].le })
	h.sum = m[billingHistName+"_sum"]
	return h
}

// minus is what happened between before and h (bucket by bucket); h
// itself when before is empty or has other buckets.
func (h hist) minus(before hist) hist {
	if len(before.buckets) != len(h.buckets) {
		return h
	}
	out := hist{buckets: make([]histBucket, len(h.buckets)), sum: h.sum - before.sum}
	for i, x := range h.buckets {
		if before.buckets[i].le != x.le {
			return h
		}
		out.buckets[i] = histBucket{x.le, x.count - before.buckets[i].count}
	}
	return out
}

// count is how many observations h holds.
func (h hist) count() int {
	if len(h.buckets) == 0 {
		return 0
	}
	return int(h.buckets[len(h.buckets)-1].count)
}

// mean is the mean observation in seconds; NaN when empty.
func (h hist) mean() float64 {
	if n := h.count(); n > 0 {
		return h.sum / float64(n)
	}
	return math.NaN()
}

// quantile is the q-quantile in seconds, interpolated linearly within its
// bucket as Prometheus's histogram_quantile does; +Inf when it falls in
// the +Inf bucket, NaN when h is empty.
func (h hist) quantile(q float64) float64 {
	n := h.count()
	if n <= 0 {
		return math.NaN()
	}
	rank := q * float64(n)
	lo, below := 0.0, 0.0
	for _, x := range h.buckets {
		if x.count >= rank && x.count > below {
			if math.IsInf(x.le, 1) {
				return math.Inf(1)
			}
			return lo + (x.le-lo)*(rank-below)/(x.count-below)
		}
		lo, below = x.le, x.count
	}
	return math.NaN()
}

// fmtMs prints seconds as milliseconds, 3 decimals.
func fmtMs(s float64) string {
	switch {
	case math.IsNaN(s):
		return "n/a"
	case math.IsInf(s, 1):
		return "inf"
	}
	return fmt.Sprintf("%.3f", s*1000)
}
