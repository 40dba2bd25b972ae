package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/kaopu/kaopu/bench/internal/sysstat"

	"github.com/kaopu/kaopu/internal/media/codec"
	"github.com/kaopu/kaopu/internal/ua"
)

// packetMs is the phones' packet time. A microphone fills a packet for
// packetMs before it is sent; this is RTP's, not the phone's, and is
// reported apart from the measured delay.
const packetMs = 20

type bench struct {
	tmp, out, kaopu string
	codecs          []string
	calls           int
	duration        time.Duration
	cpuFrom, cpuFor time.Duration
	quietWait       time.Duration
	pidFile         string
	hz              float64

	res  io.Writer
	csv  *os.File
	ev   *os.File      // one line per event
	stop chan struct{} // closed on SIGINT/SIGTERM
}

// callResult is one call's figures.
type callResult struct {
	codec                string
	srtp                 bool
	toCallee, toCaller   summary // caller's events heard by the callee, and back
	cpuCaller, cpuCallee float64 // % of one core over the window
	otherCPU             float64 // % of one core used by everything else
	concealed            int
	lossPct              float64
}

func main() {
	log.SetFlags(log.Ltime)
	log.SetPrefix("phonebench: ")
	b := &bench{stop: make(chan struct{})}
	var codecs string
	flag.StringVar(&b.tmp, "tmp", "", "scratch directory (required)")
	flag.StringVar(&b.out, "out", "bench/out", "results directory (results.txt is appended to)")
	flag.StringVar(&b.kaopu, "kaopu", "bin/kaopu", "the kaopu binary")
	flag.StringVar(&codecs, "codecs", "PCMU,G722", "codecs to measure, one after the other")
	flag.IntVar(&b.calls, "calls", 3, "calls per codec")
	flag.DurationVar(&b.duration, "duration", 16*time.Second, "length of each call")
	flag.DurationVar(&b.cpuFrom, "cpu-from", 3*time.Second, "start of the CPU window, after the answer")
	flag.DurationVar(&b.cpuFor, "cpu-window", 10*time.Second, "length of the CPU window")
	flag.DurationVar(&b.quietWait, "quiet-wait", 60*time.Second, "before each call, wait up to this long for the CPUs to be < 25 % busy")
	flag.Parse()
	if b.tmp == "" {
		log.Fatal("-tmp DIR is required")
	}
	b.codecs = strings.Split(codecs, ",")
	if b.cpuFrom+b.cpuFor > b.duration-2*time.Second {
		log.Fatalf("-cpu-from + -cpu-window must end 2 s before -duration")
	}
	b.pidFile = filepath.Join(b.tmp, "pids")
	b.hz = sysstat.ClockTicks()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-sig; close(b.stop) }()
	if err := b.run(); err != nil {
		log.Fatal(err)
	}
}

func (b *bench) run() error {
	dir := filepath.Join(b.tmp, "phone")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(b.out, 0o755); err != nil {
		return err
	}
	rf, err := os.OpenFile(filepath.Join(b.out, "results.txt"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer rf.Close()
	host, _ := os.Hostname()
	fmt.Fprintf(rf, "# kaopu phone bench, %s, host %s, %d CPUs, %d calls of %v per codec, direct by IP on 127.0.0.1\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), host, runtime.NumCPU(), b.calls, b.duration)
	b.res = io.MultiWriter(os.Stdout, rf)
	if b.csv, err = os.Create(filepath.Join(b.out, "phone-calls.csv")); err != nil {
		return err
	}
	defer b.csv.Close()
	if b.ev, err = os.Create(filepath.Join(b.out, "phone-events.csv")); err != nil {
		return err
	}
	defer b.ev.Close()
	fmt.Fprintln(b.ev, "codec,call,direction,sent_ms,found,delay_ms,corr")
	fmt.Fprintln(b.csv, "codec,call,srtp,direction,events,missed,delay_mean_ms,delay_min_ms,delay_max_ms,cpu_caller_pct,cpu_callee_pct,other_cpu_pct,concealed,loss_pct")

	otherMax := 0.0
	missed := 0
	for _, name := range b.codecs {
		info, ok := codec.Lookup(name)
		if !ok {
			return fmt.Errorf("unknown codec %q", name)
		}
		var rs []callResult
		for i := 1; i <= b.calls; i++ {
			if b.stopped() {
				return errors.New("interrupted")
			}
			b.waitQuiet()
			r, err := b.call(dir, info, i)
			if err != nil {
				return fmt.Errorf("%s call %d: %w", name, i, err)
			}
			rs = append(rs, r)
			otherMax = max(otherMax, r.otherCPU)
		}
		var ss []summary
		var caller, callee []float64
		for _, r := range rs {
			ss = append(ss, r.toCallee, r.toCaller)
			caller = append(caller, r.cpuCaller)
			callee = append(callee, r.cpuCallee)
			missed += r.toCallee.Missed + r.toCaller.Missed
		}
		m := merge(ss...)
		key := strings.ToLower(name)
		if m.N == 0 {
			return fmt.Errorf("%s: no event was found in any recording", name)
		}
		b.fig("phone.mouth_to_ear_ms_"+key, fmt.Sprintf("%.1f", m.Mean))
		b.fig("phone.mouth_to_ear_ms_"+key+"_max", fmt.Sprintf("%.1f", m.Max))
		b.fig("phone.mouth_to_ear_ms_"+key+"_min", fmt.Sprintf("%.1f", m.Min))
		b.fig("phone.cpu_pct_"+key+"_caller", fmt.Sprintf("%.2f", mean(caller)))
		b.fig("phone.cpu_pct_"+key+"_caller_max", fmt.Sprintf("%.2f", maxOf(caller)))
		b.fig("phone.cpu_pct_"+key+"_callee", fmt.Sprintf("%.2f", mean(callee)))
		b.fig("phone.cpu_pct_"+key+"_callee_max", fmt.Sprintf("%.2f", maxOf(callee)))
	}
	b.fig("phone.packetisation_ms_not_included", packetMs)
	b.fig("phone.events_missed", missed)
	b.fig("phone.other_cpu_pct_max", fmt.Sprintf("%.0f", otherMax))
	return nil
}

func (b *bench) fig(name string, v any) { fmt.Fprintf(b.res, "%s %v\n", name, v) }

func (b *bench) stopped() bool {
	select {
	case <-b.stop:
		return true
	default:
		return false
	}
}

// call runs one call between two fresh phones: the callee answers on a
// free port, the caller calls it by IP for b.duration; both send their
// event file and record the other side.
func (b *bench) call(dir string, info codec.Info, n int) (callResult, error) {
	r := callResult{codec: info.Name}
	rate := info.SampleRate
	totalMs := int(b.duration.Milliseconds())
	offsets := eventOffsets(totalMs)
	tag := fmt.Sprintf("%s-%d", strings.ToLower(info.Name), n)
	sentCaller := filepath.Join(dir, tag+"-caller-play.wav")
	sentCallee := filepath.Join(dir, tag+"-callee-play.wav")
	heardCaller := filepath.Join(dir, tag+"-caller-heard.wav")
	heardCallee := filepath.Join(dir, tag+"-callee-heard.wav")
	// The files are at the codec's rate: no resampling on either side.
	if err := writeWAV(sentCaller, rate, eventSignal(rate, totalMs, offsets, 12000)); err != nil {
		return r, err
	}
	if err := writeWAV(sentCallee, rate, eventSignal(rate, totalMs, offsets, 12000)); err != nil {
		return r, err
	}
	port, err := freeUDPPort()
	if err != nil {
		return r, err
	}
	callee, err := startProc("callee", filepath.Join(dir, tag+"-callee.log"), b.pidFile, b.kaopu, "phone", "answer",
		"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--codecs", info.Name,
		"--play", sentCallee, "--record", heardCallee, "--ring-timeout", "30s")
	if err != nil {
		return r, err
	}
	defer callee.stop()
	if _, err := callee.waitLine("listening on", 10*time.Second); err != nil {
		return r, err
	}
	caller, err := startProc("caller", filepath.Join(dir, tag+"-caller.log"), b.pidFile, b.kaopu, "phone", "call",
		fmt.Sprintf("sip:bob@127.0.0.1:%d", port), "--listen", "127.0.0.1:0", "--codecs", info.Name,
		"--play", sentCaller, "--record", heardCaller, "--duration", b.duration.String())
	if err != nil {
		return r, err
	}
	defer caller.stop()
	answered, err := caller.waitLine("answered:", 15*time.Second)
	if err != nil {
		return r, err
	}

	// CPU over a steady window of the call.
	time.Sleep(time.Until(answered.Add(b.cpuFrom)))
	c0, err1 := cpuTicks(caller.pid())
	e0, err2 := cpuTicks(callee.pid())
	busy0, total0, err3 := machineTicks()
	t0 := time.Now()
	time.Sleep(b.cpuFor)
	c1, err4 := cpuTicks(caller.pid())
	e1, err5 := cpuTicks(callee.pid())
	busy1, total1, err6 := machineTicks()
	wall := time.Since(t0).Seconds()
	if err := errors.Join(err1, err2, err3, err4, err5, err6); err != nil {
		return r, fmt.Errorf("reading CPU times: %w", err)
	}
	r.cpuCaller = 100 * float64(c1-c0) / b.hz / wall
	r.cpuCallee = 100 * float64(e1-e0) / b.hz / wall
	// /proc/stat counts all CPUs: busy jiffies over the window, as % of
	// one core, minus the two phones.
	ncpu := float64(runtime.NumCPU())
	if total1 > total0 {
		machine := 100 * ncpu * float64(busy1-busy0) / float64(total1-total0)
		r.otherCPU = max(0, machine-r.cpuCaller-r.cpuCallee)
	}

	if err := caller.wait(b.duration + 15*time.Second); err != nil {
		return r, err
	}
	if err := callee.wait(10 * time.Second); err != nil {
		return r, err
	}
	co, err := parsePhoneOut(caller.stdout())
	if err != nil {
		return r, fmt.Errorf("caller: %w", err)
	}
	eo, err := parsePhoneOut(callee.stdout())
	if err != nil {
		return r, fmt.Errorf("callee: %w", err)
	}
	if co.Codec != info.Name || eo.Codec != info.Name {
		return r, fmt.Errorf("codec %s/%s, want %s", co.Codec, eo.Codec, info.Name)
	}
	r.srtp = co.SRTP
	r.concealed = co.Concealed + eo.Concealed
	r.lossPct = max(co.LossPct, eo.LossPct)
	// Each recording against the other side's file: the sender's media
	// start minus the receiver's is the offset between their time lines.
	toCallee, err := b.land(heardCallee, offsets, co.MediaStart.Sub(eo.MediaStart))
	if err != nil {
		return r, err
	}
	toCaller, err := b.land(heardCaller, offsets, eo.MediaStart.Sub(co.MediaStart))
	if err != nil {
		return r, err
	}
	r.toCallee, r.toCaller = summarize(toCallee), summarize(toCaller)
	for _, d := range []struct {
		name string
		ls   []landing
	}{{"caller->callee", toCallee}, {"callee->caller", toCaller}} {
		for _, l := range d.ls {
			fmt.Fprintf(b.ev, "%s,%d,%s,%d,%v,%.2f,%.3f\n", info.Name, n, d.name, l.SentMs, l.Found, l.DelayMs, l.Corr)
		}
	}
	for _, d := range []struct {
		name string
		s    summary
	}{{"caller->callee", r.toCallee}, {"callee->caller", r.toCaller}} {
		fmt.Fprintf(b.csv, "%s,%d,%v,%s,%d,%d,%.2f,%.2f,%.2f,%.2f,%.2f,%.1f,%d,%.1f\n", info.Name, n, r.srtp, d.name,
			d.s.N, d.s.Missed, d.s.Mean, d.s.Min, d.s.Max, r.cpuCaller, r.cpuCallee, r.otherCPU, r.concealed, r.lossPct)
	}
	log.Printf("%s call %d (srtp %v): caller->callee %.1f ms (%.1f-%.1f, %d events, %d missed), callee->caller %.1f ms (%.1f-%.1f, %d, %d missed); CPU caller %.2f%% callee %.2f%% of a core, other %.0f%%; concealed %d",
		info.Name, n, r.srtp, r.toCallee.Mean, r.toCallee.Min, r.toCallee.Max, r.toCallee.N, r.toCallee.Missed,
		r.toCaller.Mean, r.toCaller.Min, r.toCaller.Max, r.toCaller.N, r.toCaller.Missed,
		r.cpuCaller, r.cpuCallee, r.otherCPU, r.concealed)
	return r, nil
}

// land finds the sent events in the recording at path; origin is the
// sender's media start minus the receiver's.
func (b *bench) land(path string, offsets []int, origin time.Duration) ([]landing, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	pcm, rate, err := ua.ReadWAV(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return findEvents(pcm, rate, offsets, float64(origin.Microseconds())/1000, 10, 300, 0.6), nil
}

// waitQuiet waits, at most b.quietWait, until the CPUs are < 25 % busy
// over two seconds.
func (b *bench) waitQuiet() {
	deadline := time.Now().Add(b.quietWait)
	for first := true; ; first = false {
		busy0, total0, _ := machineTicks()
		time.Sleep(2 * time.Second)
		busy1, total1, _ := machineTicks()
		pct := 0.0
		if total1 > total0 {
			pct = 100 * float64(busy1-busy0) / float64(total1-total0)
		}
		if pct < 25 || b.stopped() {
			return
		}
		if time.Now().After(deadline) {
			log.Printf("machine still %.0f%% busy after %v; measuring anyway (see other_cpu)", pct, b.quietWait)
			return
		}
		if first {
			log.Printf("machine %.0f%% busy; waiting up to %v for it to go quiet", pct, b.quietWait)
		}
	}
}

// freeUDPPort is a loopback UDP port the kernel says is free.
func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func maxOf(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}
