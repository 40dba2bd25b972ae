package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// server is one registrar under test.
type server interface {
	name() string
	start(ctx context.Context) error
	target() string // host:port sipp and the load generator send to
	process() *proc
	goroutines() int // -1 when the server does not say
	stop()
}

// ---------------------------------------------------------------- Kamailio

type kamailio struct {
	b    *bench
	dir  string
	db   string
	port int
	p    *proc
}

func (k *kamailio) name() string    { return "kamailio" }
func (k *kamailio) target() string  { return fmt.Sprintf("127.0.0.1:%d", k.port) }
func (k *kamailio) process() *proc  { return k.p }
func (k *kamailio) goroutines() int { return -1 }

// prepare creates the SQLite subscriber database with the sqlite3 CLI.
func (k *kamailio) prepare(us []user) error {
	k.dir = filepath.Join(k.b.tmp, "kamailio")
	if err := os.MkdirAll(filepath.Join(k.dir, "run"), 0o755); err != nil {
		return err
	}
	k.db = filepath.Join(k.dir, "kamailio.db")
	sqlPath := filepath.Join(k.dir, "subscriber.sql")
	if err := writeKamailioSQL(sqlPath, us, k.b.domain); err != nil {
		return err
	}
	in, err := os.Open(sqlPath)
	if err != nil {
		return err
	}
	defer in.Close()
	cmd := exec.Command("sqlite3", "-bail", k.db)
	cmd.Stdin = in
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("sqlite3: %v: %s", err, out)
	}
	out, err := exec.Command("sqlite3", k.db, "SELECT count(*) FROM subscriber").Output()
	if err != nil {
		return err
	}
	if n, _ := strconv.Atoi(strings.TrimSpace(string(out))); n != len(us) {
		return fmt.Errorf("subscriber table has %d rows, want %d", n, len(us))
	}
	return nil
}

func (k *kamailio) start(ctx context.Context) error {
	port, err := k.b.ports.get()
	if err != nil {
		return err
	}
	k.port = port
	argv := []string{
		k.b.kamailioBin,
		"-f", k.b.kamailioCfg,
		"-l", fmt.Sprintf("udp:127.0.0.1:%d", port),
		"-A", fmt.Sprintf("DBURL=\"sqlite:///%s\"", k.db),
		"-m", "1024", "-M", "32",
		"-DD", "-E",
		"-w", k.dir,
		"-Y", filepath.Join(k.dir, "run"),
		"-P", filepath.Join(k.dir, "kamailio.pid"),
	}
	p, err := k.b.procs.start("kamailio", filepath.Join(k.b.tmp, "kamailio.log"), k.dir, argv...)
	if err != nil {
		return err
	}
	k.p = p
	return waitSIP(ctx, p, k.target(), 20*time.Second)
}

func (k *kamailio) stop() {
	if k.p != nil {
		k.p.stop(5 * time.Second)
	}
}

// ------------------------------------------------------------------- kaopu

type kaopu struct {
	b        *bench
	tag      string
	seed     string // data dir with the users imported, never served from
	dir      string
	sipPort  int
	sipsPort int
	httpPort int
	p        *proc
}

func (s *kaopu) name() string   { return "kaopu" }
func (s *kaopu) target() string { return fmt.Sprintf("127.0.0.1:%d", s.sipPort) }
func (s *kaopu) process() *proc { return s.p }

// tlsTarget is the TLS listener's address.
func (s *kaopu) tlsTarget() string { return fmt.Sprintf("127.0.0.1:%d", s.sipsPort) }

// importUsers creates the seed data directory once: `kaopu user import`.
func importUsers(ctx context.Context, b *bench, us []user) (string, time.Duration, error) {
	seed := filepath.Join(b.tmp, "kaopu-seed")
	csv := filepath.Join(b.tmp, "kaopu-users.csv")
	if err := writeKaopuCSV(csv, us); err != nil {
		return "", 0, err
	}
	// sipp 3.6 computes only MD5 digests, so the challenge offers MD5 only;
	// everything else keeps kaopu's defaults. The domain is the digest realm
	// the HA1s are computed with at import.
	b.kaopuCfg = filepath.Join(b.tmp, "kaopu-bench.yaml")
	// The load comes from one address and a few users: the per-source rate
	// limit, the per-source caps on pending transactions and calls in
	// setup (meant for one phone or one attacker, not for a load
	// generator standing for thousands of phones) and the per-user call
	// caps are off.
	cfg := fmt.Sprintf("domain: %s\nauth:\n  algorithms: [MD5]\nsip:\n  max_pending_per_source: 0\n  max_calls_setup_per_source: 0\nsecurity:\n  rate_limit: 0\ncalls:\n  max_concurrent: 0\n  max_per_minute: 0\n", b.domain) + b.kaopuExtra
	if err := os.WriteFile(b.kaopuCfg, []byte(cfg), 0o644); err != nil {
		return "", 0, err
	}
	t0 := time.Now()
	ictx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ictx, b.kaopuBin, "user", "import", csv,
		"--data", seed, "--config", b.kaopuCfg, "--domain", b.domain)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", 0, fmt.Errorf("kaopu user import: %v: %s", err, tail(string(out), 600))
	}
	return seed, time.Since(t0), nil
}

func (s *kaopu) start(ctx context.Context) error {
	s.dir = filepath.Join(s.b.tmp, "kaopu-"+s.tag)
	if err := exec.Command("cp", "-a", s.seed, s.dir).Run(); err != nil {
		return fmt.Errorf("copy seed data dir: %w", err)
	}
	var err error
	if s.sipPort, err = s.b.ports.get(); err != nil {
		return err
	}
	if s.sipsPort, err = s.b.ports.get(); err != nil {
		return err
	}
	if s.httpPort, err = s.b.ports.get(); err != nil {
		return err
	}
	argv := []string{
		s.b.kaopuBin, "serve",
		"--config", s.b.kaopuCfg,
		"--data", s.dir,
		"--sip", s.target(),
		"--sips", s.tlsTarget(),
		"--http", fmt.Sprintf("127.0.0.1:%d", s.httpPort),
		"--domain", s.b.domain,
		"--log-level", "warn",
	}
	p, err := s.b.procs.start("kaopu-"+s.tag, filepath.Join(s.b.tmp, "kaopu-"+s.tag+".log"), s.dir, argv...)
	if err != nil {
		return err
	}
	s.p = p
	deadline := time.Now().Add(30 * time.Second)
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", s.httpPort)
	for {
		if !p.alive() {
			return fmt.Errorf("kaopu exited during start-up (code %d)", p.exitCode())
		}
		if code, _ := httpGet(ctx, url); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("kaopu /healthz not 200 within 30s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return waitSIP(ctx, p, s.target(), 10*time.Second)
}

// goroutines reads go_goroutines from GET /metrics, -1 when absent.
func (s *kaopu) goroutines() int {
	v, ok := s.metrics()["go_goroutines"]
	if !ok {
		return -1
	}
	return int(v)
}

// metrics reads the unlabelled samples of GET /metrics (Prometheus text).
func (s *kaopu) metrics() map[string]float64 {
	m := map[string]float64{}
	if s.p == nil || !s.p.alive() {
		return m
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	code, body := httpGet(ctx, fmt.Sprintf("http://127.0.0.1:%d/metrics", s.httpPort))
	if code != http.StatusOK {
		return m
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && !strings.HasPrefix(f[0], "#") {
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				m[f[0]] = v
			}
		}
	}
	return m
}

func (s *kaopu) stop() {
	if s.p != nil {
		s.p.stop(10 * time.Second)
	}
}

// ----------------------------------------------------------------- helpers

func httpGet(ctx context.Context, url string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, ""
	}
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	return resp.StatusCode, string(b)
}

// waitSIP sends OPTIONS over UDP until the server answers anything.
func waitSIP(ctx context.Context, p *proc, addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer conn.Close()
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return err
	}
	lport := conn.LocalAddr().(*net.UDPAddr).Port
	buf := make([]byte, 65535)
	for i := 0; ; i++ {
		if !p.alive() {
			return fmt.Errorf("%s exited during start-up (code %d)", p.name, p.exitCode())
		}
		msg := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\n"+
			"Via: SIP/2.0/UDP 127.0.0.1:%d;rport;branch=z9hG4bK-ping-%d\r\n"+
			"Max-Forwards: 70\r\nFrom: <sip:ping@127.0.0.1>;tag=ping%d\r\nTo: <sip:%s>\r\n"+
			"Call-ID: ping-%d-%d@127.0.0.1\r\nCSeq: %d OPTIONS\r\nContent-Length: 0\r\n\r\n",
			addr, lport, i, i, addr, lport, i, i+1)
		if _, err := conn.WriteTo([]byte(msg), raddr); err != nil {
			return err
		}
		conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if n, _, err := conn.ReadFrom(buf); err == nil && strings.HasPrefix(string(buf[:n]), "SIP/2.0 ") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no SIP answer on %s within %s", p.name, addr, limit)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
