package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// call is one anchored call of the generator: leg a is the caller's
// phone, leg b the callee's.
type call struct {
	i    int
	a, b *genLeg
	// Where each phone sends: the relay's port for its leg.
	relayA, relayB netip.AddrPort
	// kaopu
	dlg *dialog
	// rtpengine
	callID, fromTag, toTag string
}

// target is what media goes through: nothing (the baseline), kaopu or
// rtpengine.
type target interface {
	name() string
	start(ctx context.Context) error
	process() *proc // nil for the baseline
	// setup signals one call; on success c.relayA and c.relayB are set.
	setup(ctx context.Context, c *call) error
	teardown(ctx context.Context, c *call) error
	metrics() map[string]float64
	stop()
}

// ---------------------------------------------------------------- baseline

type baseline struct{}

func (baseline) name() string                          { return "baseline" }
func (baseline) start(context.Context) error           { return nil }
func (baseline) process() *proc                        { return nil }
func (baseline) teardown(context.Context, *call) error { return nil }
func (baseline) metrics() map[string]float64           { return nil }
func (baseline) stop()                                 {}

// setup points the two phones at each other.
func (baseline) setup(_ context.Context, c *call) error {
	c.relayA, c.relayB = c.b.local, c.a.local
	return nil
}

// ------------------------------------------------------------------- kaopu

// kaopu is the real binary, serving SIP on loopback; the driver is both
// the callers (users u0…, proxy digest auth) and the callees (direct calls
// to sip:cN@127.0.0.1:PORT, answered by the driver's callee socket).
type kaopu struct {
	r *run
	// srtp: the "kaopu-srtp" target. Both phones use SRTP (SDES,
	// AES_CM_128_HMAC_SHA1_80), each with its own key: the relay decrypts
	// every packet and encrypts it again with its key for the other leg.
	srtp     bool
	ports    string // rtp.ports
	dir      string
	cfg      string
	sip      netip.AddrPort
	httpPort int
	p        *proc
	caller   *sipUA
	callee   *callee
	mu       sync.Mutex
	pending  map[string]*call // callee user -> call being set up
}

func (k *kaopu) name() string {
	if k.srtp {
		return "kaopu-srtp"
	}
	return "kaopu"
}
func (k *kaopu) process() *proc { return k.p }

func (k *kaopu) password(i int) string { return fmt.Sprintf("pw-%d-relay", i) }

func (k *kaopu) start(ctx context.Context) error {
	r := k.r
	k.dir = filepath.Join(r.tmp, k.name()+"-data")
	k.cfg = filepath.Join(r.tmp, k.name()+"-relay.yaml")
	// MD5 digests (the driver computes MD5), a port range for every leg of
	// the ladder, and no RTP or no-answer timeouts during the run. All calls
	// come from one address and 100 users: the per-source rate limit and
	// the per-user call caps are off.
	cfg := fmt.Sprintf("domain: %s\nauth:\n  algorithms: [MD5]\nrtp:\n  ports: %s\ncalls:\n  rtp_timeout: 1h\n"+
		"  max_concurrent: 0\n  max_per_minute: 0\nsecurity:\n  rate_limit: 0\n",
		r.domain, k.ports)
	if err := os.WriteFile(k.cfg, []byte(cfg), 0o644); err != nil {
		return err
	}
	csv := filepath.Join(r.tmp, k.name()+"-users.csv")
	var b []byte
	for i := range r.users {
		b = fmt.Appendf(b, "u%d,%s\n", i, k.password(i))
	}
	if err := os.WriteFile(csv, b, 0o644); err != nil {
		return err
	}
	ictx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ictx, r.kaopuBin, "user", "import", csv,
		"--data", k.dir, "--config", k.cfg, "--domain", r.domain).CombinedOutput()
	if err != nil {
		return fmt.Errorf("kaopu user import: %v: %s", err, out)
	}
	sipPort, err := freePort()
	if err != nil {
		return err
	}
	sipsPort, err := freePort()
	if err != nil {
		return err
	}
	if k.httpPort, err = freePort(); err != nil {
		return err
	}
	k.sip = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(sipPort))
	argv := []string{r.kaopuBin, "serve", "--config", k.cfg, "--data", k.dir,
		"--sip", k.sip.String(), "--sips", fmt.Sprintf("127.0.0.1:%d", sipsPort),
		"--http", fmt.Sprintf("127.0.0.1:%d", k.httpPort), "--domain", r.domain,
		"--rtp-ports", k.ports, "--log-level", "warn"}
	if r.pprof {
		os.Setenv("KAOPU_PPROF", "1")
		defer os.Unsetenv("KAOPU_PPROF")
	}
	if k.p, err = r.procs.start(k.name()+"-relay", filepath.Join(r.tmp, k.name()+"-relay.log"), r.tmp, argv...); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if !k.p.alive() {
			return fmt.Errorf("kaopu exited during start-up (code %d):\n%s", k.p.exitCode(), lastLines(k.p.log, 10))
		}
		if code, _ := httpGet(ctx, fmt.Sprintf("http://127.0.0.1:%d/healthz", k.httpPort)); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("kaopu /healthz not 200 within 30 s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	if k.caller, err = newSIPUA(); err != nil {
		return err
	}
	go k.caller.serve()
	ua, err := newSIPUA()
	if err != nil {
		return err
	}
	k.pending = map[string]*call{}
	k.callee = &callee{ua: ua, sent: map[string]*sipMsg{}, lookup: k.lookup}
	ua.onRequest = k.callee.handle
	go ua.serve()
	return nil
}

func (k *kaopu) lookup(user string) (*genLeg, func(netip.AddrPort), bool) {
	k.mu.Lock()
	c := k.pending[user]
	k.mu.Unlock()
	if c == nil {
		return nil, nil, false
	}
	return c.b, func(relay netip.AddrPort) { c.relayB = relay }, true
}

func (k *kaopu) setup(ctx context.Context, c *call) error {
	user := "c" + strconv.Itoa(c.i)
	k.mu.Lock()
	k.pending[user] = c
	k.mu.Unlock()
	defer func() {
		k.mu.Lock()
		delete(k.pending, user)
		k.mu.Unlock()
	}()
	u := c.i % k.r.users
	sdp := offerSDP(c.a.local, uint64(c.i)+1)
	if k.srtp {
		crypto, err := c.a.useSRTP()
		if err != nil {
			return err
		}
		sdp = srtpSDP(c.a.local, uint64(c.i)+1, "RTP/SAVP", crypto)
	}
	dlg, answer, err := k.caller.invite(ctx, inviteOpts{
		server: k.sip, domain: k.r.domain, user: "u" + strconv.Itoa(u), password: k.password(u),
		ruri: fmt.Sprintf("sip:%s@%s", user, k.callee.ua.addr), sdp: sdp,
	})
	if err != nil {
		return err
	}
	c.dlg = dlg
	if c.relayA, err = sdpMedia(answer); err != nil {
		return fmt.Errorf("kaopu's answer: %w", err)
	}
	if k.srtp && !strings.Contains(string(answer), "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:") {
		return errors.New("kaopu's answer has no SRTP key")
	}
	if !c.relayB.IsValid() {
		return errors.New("the callee got no INVITE with SDP")
	}
	if k.srtp && c.b.enc == nil {
		return errors.New("kaopu offered the callee no SRTP")
	}
	return nil
}

func (k *kaopu) teardown(ctx context.Context, c *call) error {
	if c.dlg == nil {
		return nil
	}
	return k.caller.bye(ctx, c.dlg, k.sip)
}

func (k *kaopu) metrics() map[string]float64 {
	if k.p == nil || !k.p.alive() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	code, body := httpGet(ctx, fmt.Sprintf("http://127.0.0.1:%d/metrics", k.httpPort))
	if code != http.StatusOK {
		return nil
	}
	return parseMetrics(body)
}

// profile saves a CPU profile of d (needs -pprof), or with d == 0 a heap
// profile (after a forced GC: only for diagnosis, it disturbs the run).
func (k *kaopu) profile(ctx context.Context, d time.Duration, path string) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", k.httpPort, int(d.Seconds()))
	if d == 0 {
		url = fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap?gc=1", k.httpPort)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: d + 10*time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.ReadFrom(resp.Body)
	return err
}

func (k *kaopu) stop() {
	if k.caller != nil {
		k.caller.close()
	}
	if k.callee != nil {
		k.callee.ua.close()
	}
	k.p.stop(10 * time.Second)
}

// --------------------------------------------------------------- rtpengine

// rtpengine runs in the foreground in userspace (--table=-1), its own
// ng port, port range and directory; calls are set up with ng offer and
// answer, as a SIP proxy would.
type rtpengine struct {
	r   *run
	p   *proc
	ng  *ngClient
	dir string
}

func (e *rtpengine) name() string   { return "rtpengine" }
func (e *rtpengine) process() *proc { return e.p }

func (e *rtpengine) start(ctx context.Context) error {
	r := e.r
	e.dir = filepath.Join(r.tmp, "rtpengine")
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		return err
	}
	ngPort, err := freePort()
	if err != nil {
		return err
	}
	lo, hi, err := parseRange(r.rtpePorts)
	if err != nil {
		return err
	}
	argv := []string{r.rtpengineBin, "--config-file=none", "--foreground", "--log-stderr",
		"--table=-1", "--interface=127.0.0.1", fmt.Sprintf("--listen-ng=127.0.0.1:%d", ngPort),
		fmt.Sprintf("--port-min=%d", lo), fmt.Sprintf("--port-max=%d", hi),
		"--timeout=3600", "--silent-timeout=3600", "--log-level=4",
		"--pidfile=" + filepath.Join(e.dir, "rtpengine.pid")}
	if e.p, err = r.procs.start("rtpengine", filepath.Join(r.tmp, "rtpengine.log"), e.dir, argv...); err != nil {
		return err
	}
	if e.ng, err = newNGClient(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(ngPort))); err != nil {
		return err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if !e.p.alive() {
			return fmt.Errorf("rtpengine exited during start-up (code %d):\n%s", e.p.exitCode(), lastLines(e.p.log, 10))
		}
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		d, err := e.ng.do(pctx, map[string]any{"command": "ping"})
		cancel()
		if err == nil && d["result"] == "pong" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rtpengine: no pong on the ng port within 20 s (%v)", err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

func (e *rtpengine) setup(ctx context.Context, c *call) error {
	c.callID, c.fromTag, c.toTag = randHex(8)+"@relaybench", randHex(4), randHex(4)
	replace := []any{"origin", "session-connection"}
	off, err := e.ng.command(ctx, map[string]any{"command": "offer", "call-id": c.callID, "from-tag": c.fromTag,
		"sdp": string(offerSDP(c.a.local, uint64(c.i)+1)), "replace": replace, "ICE": "remove"})
	if err != nil {
		return fmt.Errorf("offer: %w", err)
	}
	if c.relayB, err = sdpMedia([]byte(fmt.Sprint(off["sdp"]))); err != nil {
		return fmt.Errorf("offer reply: %w", err)
	}
	ans, err := e.ng.command(ctx, map[string]any{"command": "answer", "call-id": c.callID, "from-tag": c.fromTag,
		"to-tag": c.toTag, "sdp": string(offerSDP(c.b.local, uint64(c.i)+1)), "replace": replace, "ICE": "remove"})
	if err != nil {
		return fmt.Errorf("answer: %w", err)
	}
	if c.relayA, err = sdpMedia([]byte(fmt.Sprint(ans["sdp"]))); err != nil {
		return fmt.Errorf("answer reply: %w", err)
	}
	return nil
}

func (e *rtpengine) teardown(ctx context.Context, c *call) error {
	if c.callID == "" {
		return nil
	}
	_, err := e.ng.command(ctx, map[string]any{"command": "delete", "call-id": c.callID, "from-tag": c.fromTag})
	return err
}

func (e *rtpengine) metrics() map[string]float64 { return nil }

func (e *rtpengine) stop() {
	if e.ng != nil {
		e.ng.close()
	}
	e.p.stop(10 * time.Second)
}

// ngClient sends ng commands over UDP and matches replies by cookie.
type ngClient struct {
	conn *net.UDPConn
	to   netip.AddrPort
	mu   sync.Mutex
	wait map[string]chan map[string]any
	done chan struct{}
}

func newNGClient(to netip.AddrPort) (*ngClient, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	n := &ngClient{conn: c, to: to, wait: map[string]chan map[string]any{}, done: make(chan struct{})}
	go n.read()
	return n, nil
}

func (n *ngClient) read() {
	defer close(n.done)
	buf := make([]byte, 65535)
	for {
		m, err := n.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		cookie, d, err := parseNGReply(buf[:m])
		if err != nil {
			continue
		}
		n.mu.Lock()
		ch := n.wait[cookie]
		delete(n.wait, cookie)
		n.mu.Unlock()
		if ch != nil {
			ch <- d
		}
	}
}

// do sends one command (resending every second; the same cookie lets
// rtpengine answer a duplicate from its cache) and returns the reply.
func (n *ngClient) do(ctx context.Context, d map[string]any) (map[string]any, error) {
	cookie := randHex(6)
	msg, err := ngMessage(cookie, d)
	if err != nil {
		return nil, err
	}
	ch := make(chan map[string]any, 1)
	n.mu.Lock()
	n.wait[cookie] = ch
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.wait, cookie)
		n.mu.Unlock()
	}()
	for {
		if _, err := n.conn.WriteToUDPAddrPort(msg, n.to); err != nil {
			return nil, err
		}
		select {
		case r := <-ch:
			return r, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// command is do, and an error unless result is "ok".
func (n *ngClient) command(ctx context.Context, d map[string]any) (map[string]any, error) {
	r, err := n.do(ctx, d)
	if err != nil {
		return nil, err
	}
	if r["result"] != "ok" {
		return nil, fmt.Errorf("rtpengine: result %v: %v", r["result"], r["error-reason"])
	}
	return r, nil
}

func (n *ngClient) close() {
	n.conn.Close()
	<-n.done
}
