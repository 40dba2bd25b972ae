package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kaopu/kaopu/bench/internal/sysstat"
	"github.com/kaopu/kaopu/test/harness"
)

const domain = "kaopu.test"

func main() {
	log.SetFlags(log.Ltime)
	log.SetPrefix("floodbench: ")
	var (
		tmp, out, kaopu string
		rate, sources   int
		halfOpen, legit int
		duration        time.Duration
	)
	flag.StringVar(&tmp, "tmp", "", "scratch directory (required)")
	flag.StringVar(&out, "out", "bench/out", "results directory (results.txt is appended to)")
	flag.StringVar(&kaopu, "kaopu", "bin/kaopu", "the kaopu binary")
	flag.IntVar(&rate, "rate", 20000, "flood datagrams per second")
	flag.IntVar(&sources, "sources", 64, "flood source addresses (127.0.0.10 on)")
	flag.IntVar(&halfOpen, "half-open", 500, "half-open TCP connections kept open")
	flag.IntVar(&legit, "legit", 4, "legitimate phones registering in a loop, each its own address (127.0.0.2 on)")
	flag.DurationVar(&duration, "duration", 20*time.Second, "length of the flood")
	flag.Parse()
	if tmp == "" {
		log.Fatal("-tmp DIR is required")
	}
	if legit < 1 || legit > 8 {
		log.Fatal("-legit is 1..8 (addresses 127.0.0.2-9)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, tmp, out, kaopu, rate, sources, halfOpen, legit, duration); err != nil {
		log.Fatal(err)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	p := l.Addr().(*net.TCPAddr).Port
	u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p})
	if err != nil {
		return 0, err
	}
	u.Close()
	return p, nil
}

func run(ctx context.Context, tmp, out, kaopu string, rate, nsrc, halfOpen, nlegit int, duration time.Duration) error {
	dir := filepath.Join(tmp, "flood")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data := filepath.Join(dir, "data")
	for i := range nlegit {
		u := fmt.Sprintf("legit%d", i)
		if b, err := exec.Command(kaopu, "user", "add", u, "--password", "pw-"+u, "--data", data, "--domain", domain).CombinedOutput(); err != nil {
			return fmt.Errorf("user add: %v: %s", err, b)
		}
	}
	sipPort, err := freePort()
	if err != nil {
		return err
	}
	sipsPort, _ := freePort()
	httpPort, _ := freePort()
	sip := fmt.Sprintf("127.0.0.1:%d", sipPort)
	logf, err := os.Create(filepath.Join(dir, "kaopu.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(kaopu, "serve", "--data", data, "--domain", domain, "--sip", sip,
		"--sips", fmt.Sprintf("127.0.0.1:%d", sipsPort), "--http", fmt.Sprintf("127.0.0.1:%d", httpPort))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	if f, err := os.OpenFile(filepath.Join(tmp, "pids"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
		fmt.Fprintf(f, "%d kaopu-flood\n", cmd.Process.Pid)
		f.Close()
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	metrics := fmt.Sprintf("http://127.0.0.1:%d/metrics", httpPort)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if r, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", httpPort)); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			return errors.New("kaopu did not become healthy")
		}
	}
	pid := cmd.Process.Pid
	hz := sysstat.ClockTicks()
	cpu0, _ := procTicks(pid)
	drops0 := sysstat.UDPDrops()
	start := time.Now()
	fctx, cancel := context.WithTimeout(ctx, duration)
	defer cancel()

	var srcs []string
	for i := range nsrc {
		srcs = append(srcs, fmt.Sprintf("127.0.%d.%d", i/200, 10+i%200))
	}
	var wg sync.WaitGroup
	var ok, all, retrans atomic.Int64
	var lastErr atomic.Value
	for i := range nlegit {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := fmt.Sprintf("legit%d", i)
			p, err := newPhone(fmt.Sprintf("127.0.0.%d", 2+i), sip)
			if err != nil {
				lastErr.Store(err)
				return
			}
			defer p.close()
			for fctx.Err() == nil {
				all.Add(1)
				n, err := p.register(u, "pw-"+u)
				retrans.Add(int64(n))
				if err == nil {
					ok.Add(1)
				} else {
					lastErr.Store(err)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	log.Printf("flooding %s at %d datagrams/s from %d sources, %d half-open TCP, %d legitimate phones, for %v",
		sip, rate, nsrc, halfOpen, nlegit, duration)
	st, err := harness.Flood(fctx, harness.FloodConfig{Server: sip, Domain: domain, Sources: srcs, Rate: rate,
		HalfOpen: halfOpen, MaxDatagrams: int64(float64(rate) * duration.Seconds())})
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	wg.Wait()
	cpu1, _ := procTicks(pid)
	drops := sysstat.UDPDrops() - drops0
	m := readMetrics(metrics)

	res, err := os.OpenFile(filepath.Join(out, "results.txt"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer res.Close()
	w := io.MultiWriter(os.Stdout, res)
	fig := func(name string, v any) { fmt.Fprintf(w, "%s %v\n", name, v) }
	pct := 0.0
	if all.Load() > 0 {
		pct = 100 * float64(ok.Load()) / float64(all.Load())
	}
	if e, _ := lastErr.Load().(error); e != nil {
		log.Printf("last legitimate failure: %v", e)
	}
	fig("flood.legit_register_success_pct", fmt.Sprintf("%.2f", pct))
	fig("flood.legit_registers", fmt.Sprintf("%d/%d", ok.Load(), all.Load()))
	fig("flood.legit_retransmissions", retrans.Load())
	fig("flood.rate_achieved_per_s", fmt.Sprintf("%.0f", float64(st.Datagrams.Load())/elapsed.Seconds()))
	fig("flood.half_open_connections", st.Connections.Load())
	fig("flood.udp_received_by_kaopu", m["kaopu_sip_udp_received_total"])
	fig("flood.udp_dropped_by_kernel", drops)
	fig("flood.kaopu_cpu_pct", fmt.Sprintf("%.0f", 100*float64(cpu1-cpu0)/float64(hz)/elapsed.Seconds()))
	for _, k := range []string{"kaopu_sip_rate_limited_total", "kaopu_banned_sources", "kaopu_sip_source_limited_total",
		"kaopu_sip_connections_refused_total", "kaopu_sip_connections_timed_out_total", "go_goroutines"} {
		fig("flood."+strings.TrimPrefix(k, "kaopu_"), m[k])
	}
	return nil
}

// procTicks is utime+stime of pid from /proc.
func procTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return u + k, nil
}

func readMetrics(url string) map[string]string {
	m := map[string]string{}
	r, err := http.Get(url)
	if err != nil {
		return m
	}
	defer r.Body.Close()
	sc := bufio.NewScanner(r.Body)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), " "); ok && !strings.HasPrefix(k, "#") {
			m[k] = v
		}
	}
	return m
}

// phone is a legitimate UDP phone on its own address.
type phone struct {
	c    *net.UDPConn
	cseq int
	buf  []byte
}

func newPhone(ip, server string) (*phone, error) {
	ra, err := net.ResolveUDPAddr("udp4", server)
	if err != nil {
		return nil, err
	}
	c, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)}, ra)
	if err != nil {
		return nil, err
	}
	return &phone{c: c, buf: make([]byte, 65535)}, nil
}

func (p *phone) close() { p.c.Close() }

func token() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// register does REGISTER, 401, REGISTER with credentials, 200; it returns
// the retransmissions it needed.
func (p *phone) register(user, pw string) (int, error) {
	callID := token()
	req := func(authz string) []byte {
		p.cseq++
		local := p.c.LocalAddr().String()
		return fmt.Appendf(nil, "REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\nMax-Forwards: 70\r\n"+
			"From: <sip:%s@%s>;tag=%s\r\nTo: <sip:%s@%s>\r\nCall-ID: %s\r\nCSeq: %d REGISTER\r\nContact: <sip:%s@%s>\r\nExpires: 600\r\n%sContent-Length: 0\r\n\r\n",
			domain, local, token(), user, domain, token(), user, domain, callID, p.cseq, user, local, authz)
	}
	res, n, err := p.do(req(""))
	if err != nil {
		return n, fmt.Errorf("first REGISTER: %w", err)
	}
	if !strings.HasPrefix(res, "SIP/2.0 401") {
		return n, fmt.Errorf("first REGISTER: %.40q", res)
	}
	var ch harness.Challenge
	for _, line := range strings.Split(res, "\r\n") {
		if v, ok := strings.CutPrefix(line, "WWW-Authenticate:"); ok {
			ch, err = harness.ParseChallenge(v)
		}
	}
	if err != nil || ch.Params["nonce"] == "" {
		return n, fmt.Errorf("no challenge: %v", err)
	}
	cred, err := harness.Credentials(ch, user, pw, "REGISTER", "sip:"+domain, token())
	if err != nil {
		return n, err
	}
	res, n2, err := p.do(req("Authorization: " + cred + "\r\n"))
	n += n2
	if err != nil {
		return n, fmt.Errorf("second REGISTER: %w", err)
	}
	if !strings.HasPrefix(res, "SIP/2.0 200") {
		return n, fmt.Errorf("second REGISTER: %.40q", res)
	}
	return n, nil
}

// do sends a request and retransmits it (RFC 3261 §17.1.2.2 Timer E: 500
// ms doubling up to T2 = 4 s) until a final answer with its CSeq comes, or
// 8 s (well inside Timer F, 32 s) have passed.
func (p *phone) do(b []byte) (string, int, error) {
	want := fmt.Sprintf("CSeq: %d REGISTER", p.cseq)
	deadline := time.Now().Add(8 * time.Second)
	interval, retrans := 500*time.Millisecond, 0
	for {
		if _, err := p.c.Write(b); err != nil {
			return "", retrans, err
		}
		next := time.Now().Add(interval)
		for {
			until := next
			if deadline.Before(until) {
				until = deadline
			}
			p.c.SetReadDeadline(until)
			n, err := p.c.Read(p.buf)
			if err != nil {
				break
			}
			s := string(p.buf[:n])
			if strings.Contains(s, want) && !strings.HasPrefix(s, "SIP/2.0 1") {
				return s, retrans, nil
			}
		}
		if !time.Now().Before(deadline) {
			return "", retrans, errors.New("no answer in 8 s")
		}
		retrans++
		interval = min(2*interval, 4*time.Second)
	}
}
