package main

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// regGen registers many users with digest auth, over many UDP sockets or
// many persistent TLS connections (one transaction at a time on each).
// User i always uses socket/connection i % len(conns), Call-ID
// "reg-NAME@bench" and the Contact <sip:NAME@127.0.0.1:PORT>
// (;transport=tls over TLS), so a second round is a true refresh of the
// same binding (same Call-ID, higher CSeq, same Contact).
type regGen struct {
	domain    string
	transport string // "UDP" or "TLS"
	users     []user
	conns     []regConn
	rate      float64 // registrations/s started, at most
	round     int     // 0 first registration, 1 refresh, …
}

// regConn is one socket or connection of the generator.
type regConn interface {
	send(b []byte) error
	// recv returns the next message that arrives before deadline.
	recv(buf []byte, deadline time.Time) ([]byte, error)
	port() int
	close() error
}

type udpConn struct {
	c      *net.UDPConn
	server *net.UDPAddr
}

func (u udpConn) send(b []byte) error {
	_, err := u.c.WriteToUDP(b, u.server)
	return err
}

func (u udpConn) recv(buf []byte, deadline time.Time) ([]byte, error) {
	u.c.SetReadDeadline(deadline)
	n, _, err := u.c.ReadFromUDP(buf)
	return buf[:n], err
}

func (u udpConn) port() int    { return u.c.LocalAddr().(*net.UDPAddr).Port }
func (u udpConn) close() error { return u.c.Close() }

// streamConn is a TLS (or TCP) connection; messages are framed by
// Content-Length (RFC 3261 §18.3).
type streamConn struct {
	c  net.Conn
	br *bufio.Reader
}

func (s *streamConn) send(b []byte) error {
	_, err := s.c.Write(b)
	return err
}

func (s *streamConn) recv(buf []byte, deadline time.Time) ([]byte, error) {
	s.c.SetReadDeadline(deadline)
	out := buf[:0]
	for {
		line, err := s.br.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		if len(out) == 0 && len(line) <= 2 {
			continue // keep-alive CRLF between messages
		}
		out = append(out, line...)
		if len(line) <= 2 {
			break // the empty line that ends the header
		}
	}
	n := 0
	for _, l := range strings.Split(string(out), "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			if k = strings.TrimSpace(k); strings.EqualFold(k, "content-length") || k == "l" {
				n, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
	}
	if n > 0 {
		body := make([]byte, n)
		if _, err := io.ReadFull(s.br, body); err != nil {
			return nil, err
		}
		out = append(out, body...)
	}
	return out, nil
}

func (s *streamConn) port() int    { return s.c.LocalAddr().(*net.TCPAddr).Port }
func (s *streamConn) close() error { return s.c.Close() }

// regResult counts one round.
type regResult struct {
	ok, failed   int
	byReason     map[string]int
	multiContact int // 200 OK listing more than one binding for the AOR
	noContact    int // 200 OK without a Contact
	retrans      int
	elapsed      time.Duration
}

func (r regResult) reasons() string {
	if len(r.byReason) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(r.byReason))
	for k := range r.byReason {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%d", k, r.byReason[k])
	}
	return b.String()
}

func newRegGen(server string, domain string, us []user, sockets int, rate float64) (*regGen, error) {
	sa, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		return nil, err
	}
	g := &regGen{domain: domain, transport: "UDP", users: us, rate: rate}
	for range sockets {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			g.close()
			return nil, err
		}
		_ = c.SetReadBuffer(1 << 20)
		g.conns = append(g.conns, udpConn{c: c, server: sa})
	}
	return g, nil
}

// newTLSRegGen opens conns TLS connections to server (TLS 1.2 or later;
// the server's certificate is not verified: the bench's is generated) and
// returns the generator and the time the handshakes took, one after the
// other.
func newTLSRegGen(ctx context.Context, server string, domain string, us []user, conns int, rate float64) (*regGen, time.Duration, error) {
	g := &regGen{domain: domain, transport: "TLS", users: us, rate: rate}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}},
		Config: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}}
	var spent time.Duration
	for range conns {
		t0 := time.Now()
		c, err := d.DialContext(ctx, "tcp", server)
		if err != nil {
			g.close()
			return nil, 0, err
		}
		spent += time.Since(t0)
		g.conns = append(g.conns, &streamConn{c: c, br: bufio.NewReaderSize(c, 16<<10)})
	}
	return g, spent, nil
}

func (g *regGen) close() {
	for _, c := range g.conns {
		c.close()
	}
}

// pacer spaces starts at most rate per second across goroutines.
type pacer struct {
	mu       sync.Mutex
	next     time.Time
	interval time.Duration
}

func (p *pacer) wait(ctx context.Context) error {
	p.mu.Lock()
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	at := p.next
	p.next = p.next.Add(p.interval)
	p.mu.Unlock()
	if d := time.Until(at); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// run registers every user once (one round); bounded by ctx.
func (g *regGen) run(ctx context.Context) regResult {
	t0 := time.Now()
	pc := &pacer{interval: time.Duration(float64(time.Second) / g.rate)}
	var mu sync.Mutex
	res := regResult{byReason: map[string]int{}}
	var retrans atomic.Int64
	var wg sync.WaitGroup
	for w, c := range g.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 65535)
			for i := w; i < len(g.users); i += len(g.conns) {
				reason := "aborted"
				var contacts int
				if pc.wait(ctx) == nil {
					var rt int
					contacts, rt, reason = g.register(ctx, c, buf, g.users[i])
					retrans.Add(int64(rt))
				}
				mu.Lock()
				if reason == "" {
					res.ok++
					switch {
					case contacts == 0:
						res.noContact++
					case contacts > 1:
						res.multiContact++
					}
				} else {
					res.failed++
					res.byReason[reason]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.retrans = int(retrans.Load())
	res.elapsed = time.Since(t0)
	g.round++
	return res
}

// register does REGISTER -> 401 -> REGISTER with Authorization -> 200.
// It returns the number of Contact bindings in the 200 for this user, the
// number of retransmissions, and "" or the reason of the failure.
func (g *regGen) register(ctx context.Context, c regConn, buf []byte, u user) (int, int, string) {
	port := c.port()
	contactParams := ""
	if g.transport != "UDP" {
		contactParams = ";transport=" + strings.ToLower(g.transport)
	}
	callID := "reg-" + u.name + "@bench"
	cseq := 1 + 2*g.round
	fromTag := fmt.Sprintf("t%d%s", g.round, u.name)
	build := func(cseq int, auth string) []byte {
		var b strings.Builder
		fmt.Fprintf(&b, "REGISTER sip:%s SIP/2.0\r\n", g.domain)
		fmt.Fprintf(&b, "Via: SIP/2.0/%s 127.0.0.1:%d;rport;branch=z9hG4bK-%s-%d-%s\r\n", g.transport, port, u.name, cseq, randHex(4))
		b.WriteString("Max-Forwards: 70\r\n")
		fmt.Fprintf(&b, "From: <sip:%s@%s>;tag=%s\r\n", u.name, g.domain, fromTag)
		fmt.Fprintf(&b, "To: <sip:%s@%s>\r\n", u.name, g.domain)
		fmt.Fprintf(&b, "Call-ID: %s\r\n", callID)
		fmt.Fprintf(&b, "CSeq: %d REGISTER\r\n", cseq)
		fmt.Fprintf(&b, "Contact: <sip:%s@127.0.0.1:%d%s>\r\n", u.name, port, contactParams)
		if auth != "" {
			fmt.Fprintf(&b, "Authorization: %s\r\n", auth)
		}
		b.WriteString("Expires: 3600\r\nUser-Agent: kaopu-bench-regbench\r\nContent-Length: 0\r\n\r\n")
		return []byte(b.String())
	}
	resp, rt, err := g.transact(ctx, c, buf, build(cseq, ""), callID, cseq)
	if err != nil {
		return 0, rt, err.Error()
	}
	if resp.code != 401 {
		return 0, rt, fmt.Sprintf("first_%d", resp.code)
	}
	auth, err := digestAuthorization(resp.challenges, u, "REGISTER", "sip:"+g.domain, randHex(8))
	if err != nil {
		return 0, rt, "bad_challenge"
	}
	resp, rt2, err := g.transact(ctx, c, buf, build(cseq+1, auth), callID, cseq+1)
	rt += rt2
	if err != nil {
		return 0, rt, err.Error()
	}
	if resp.code != 200 {
		return 0, rt, fmt.Sprintf("auth_%d", resp.code)
	}
	return resp.contactsFor(u.name), rt, ""
}

type sipResp struct {
	code       int
	callID     string
	cseq       int
	challenges []string
	contacts   []string
}

// contactsFor counts the bindings in the 200 whose URI names user.
func (r sipResp) contactsFor(user string) int {
	n := 0
	for _, h := range r.contacts {
		for _, part := range splitQuoted(h, ',') {
			if strings.Contains(part, "sip:"+user+"@") {
				n++
			}
		}
	}
	return n
}

var errTimeout = errors.New("timeout")

// transact sends req and waits for its final response. Over UDP it
// retransmits on the RFC 3261 §17.1.2.2 schedule (500 ms doubling to 4 s),
// giving up after about 11.5 s; over TLS it sends once and waits as long.
func (g *regGen) transact(ctx context.Context, c regConn, buf []byte, req []byte, callID string, cseq int) (sipResp, int, error) {
	waits := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}
	if g.transport != "UDP" {
		waits = []time.Duration{11500 * time.Millisecond}
	}
	for attempt, w := range waits {
		if ctx.Err() != nil {
			return sipResp{}, attempt, ctx.Err()
		}
		if err := c.send(req); err != nil {
			return sipResp{}, attempt, fmt.Errorf("send")
		}
		deadline := time.Now().Add(w)
		for {
			msg, err := c.recv(buf, deadline)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				return sipResp{}, attempt, fmt.Errorf("recv")
			}
			r, ok := parseResponse(msg)
			if !ok || r.callID != callID || r.cseq != cseq || r.code < 200 {
				continue // stale retransmission, provisional, or not ours
			}
			return r, attempt, nil
		}
	}
	return sipResp{}, len(waits) - 1, errTimeout
}

// parseResponse extracts what the generator needs from a SIP response.
func parseResponse(b []byte) (sipResp, bool) {
	var r sipResp
	s := string(b)
	if !strings.HasPrefix(s, "SIP/2.0 ") || len(s) < 12 {
		return r, false
	}
	code, err := strconv.Atoi(s[8:11])
	if err != nil {
		return r, false
	}
	r.code = code
	head, _, _ := strings.Cut(s, "\r\n\r\n")
	for _, line := range strings.Split(head, "\r\n")[1:] {
		name, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "call-id", "i":
			r.callID = val
		case "cseq":
			f := strings.Fields(val)
			if len(f) > 0 {
				r.cseq, _ = strconv.Atoi(f[0])
			}
		case "www-authenticate":
			r.challenges = append(r.challenges, val)
		case "contact", "m":
			r.contacts = append(r.contacts, val)
		}
	}
	return r, true
}

// digestAuthorization answers a challenge (RFC 2617, RFC 8760): MD5 when
// offered, else SHA-256; qop=auth with nc=00000001 when offered.
func digestAuthorization(challenges []string, u user, method, uri, cnonce string) (string, error) {
	var chosen map[string]string
	var alg string
	for _, want := range []string{"MD5", "SHA-256"} {
		for _, c := range challenges {
			scheme, rest, _ := strings.Cut(strings.TrimSpace(c), " ")
			if !strings.EqualFold(scheme, "Digest") {
				continue
			}
			p := parseParams(rest)
			a := p["algorithm"]
			if a == "" {
				a = "MD5"
			}
			if strings.EqualFold(a, want) {
				chosen, alg = p, want
				break
			}
		}
		if chosen != nil {
			break
		}
	}
	if chosen == nil || chosen["nonce"] == "" {
		return "", errors.New("no usable digest challenge")
	}
	var h func() hash.Hash = md5.New
	if alg == "SHA-256" {
		h = sha256.New
	}
	hx := func(s string) string {
		d := h()
		d.Write([]byte(s))
		return hex.EncodeToString(d.Sum(nil))
	}
	realm, nonce := chosen["realm"], chosen["nonce"]
	ha1 := hx(u.name + ":" + realm + ":" + u.password)
	ha2 := hx(method + ":" + uri)
	var b strings.Builder
	fmt.Fprintf(&b, `Digest username="%s", realm="%s", nonce="%s", uri="%s", algorithm=%s`, u.name, realm, nonce, uri, alg)
	qopAuth := false
	for _, q := range strings.Split(chosen["qop"], ",") {
		if strings.TrimSpace(q) == "auth" {
			qopAuth = true
		}
	}
	if qopAuth {
		const nc = "00000001"
		fmt.Fprintf(&b, `, response="%s", qop=auth, nc=%s, cnonce="%s"`,
			hx(ha1+":"+nonce+":"+nc+":"+cnonce+":auth:"+ha2), nc, cnonce)
	} else {
		fmt.Fprintf(&b, `, response="%s"`, hx(ha1+":"+nonce+":"+ha2))
	}
	if op, ok := chosen["opaque"]; ok {
		fmt.Fprintf(&b, `, opaque="%s"`, op)
	}
	return b.String(), nil
}

// parseParams parses `a="x, y", b=z` into a map with lower-case keys.
func parseParams(s string) map[string]string {
	m := map[string]string{}
	for _, part := range splitQuoted(s, ',') {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		m[strings.ToLower(strings.TrimSpace(k))] = v
	}
	return m
}

// splitQuoted splits s on sep outside double quotes and angle brackets.
func splitQuoted(s string, sep byte) []string {
	var out []string
	inQ, inA, start := false, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			inQ = !inQ
		case c == '<' && !inQ:
			inA = true
		case c == '>' && !inQ:
			inA = false
		case c == sep && !inQ && !inA:
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
