package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/account"
	"github.com/kaopu/kaopu/internal/auth"
	"github.com/kaopu/kaopu/internal/config"
)

const realm = "kaopu.test"

func startServer(t testing.TB) *Server {
	t.Helper()
	return startServerWith(t, nil, nil)
}

// startServerWith starts a server for alice with mod applied to the test
// config, calling beforeStart (if not nil) between New and Start.
func startServerWith(t testing.TB, mod func(*config.Config), beforeStart func(*Server)) *Server {
	t.Helper()
	cfg := config.Default()
	cfg.Data = t.TempDir()
	cfg.Domain = realm
	cfg.SIP.Listen = "127.0.0.1:0"
	cfg.SIP.TLSListen = "127.0.0.1:0"
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Auth.Algorithms = []string{"MD5"}
	cfg.Registrar.NATKeepalive = 0
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	s, err := New(ctx, cfg, log, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	u, err := account.NewUser("alice", "1001", realm, "secret1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.st.AddUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if beforeStart != nil {
		beforeStart(s)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// phone is a minimal SIP endpoint over one connection.
type phone struct {
	t    testing.TB
	conn net.Conn
	rd   *bufio.Reader
	tp   string
}

func (p *phone) send(msg string) {
	p.t.Helper()
	p.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := p.conn.Write([]byte(msg)); err != nil {
		p.t.Fatal(err)
	}
}

// recv reads one SIP message (headers only; these tests send no bodies).
func (p *phone) recv() sip.Message {
	p.t.Helper()
	p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if p.tp == "UDP" {
		buf := make([]byte, 65535)
		n, err := p.conn.Read(buf)
		if err != nil {
			p.t.Fatalf("recv: %v", err)
		}
		m, err := sip.ParseMessage(buf[:n])
		if err != nil {
			p.t.Fatalf("parse: %v", err)
		}
		return m
	}
	var sb strings.Builder
	for {
		line, err := p.rd.ReadString('\n')
		if err != nil {
			p.t.Fatalf("recv: %v", err)
		}
		if line == "\r\n" && sb.Len() == 0 {
			continue // keepalive
		}
		sb.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	m, err := sip.ParseMessage([]byte(sb.String()))
	if err != nil {
		p.t.Fatalf("parse: %v", err)
	}
	return m
}

var nonceRE = regexp.MustCompile(`nonce="([^"]+)"`)

// register performs REGISTER with digest auth and returns the final status.
func (p *phone) register(contact string) int {
	p.t.Helper()
	local := p.conn.LocalAddr().String()
	base := func(cseq int, extra string) string {
		return fmt.Sprintf("REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/%s %s;branch=z9hG4bK%d;rport\r\n"+
			"From: <sip:alice@%s>;tag=t1\r\nTo: <sip:alice@%s>\r\nCall-ID: reg-%s\r\nCSeq: %d REGISTER\r\n"+
			"Contact: <%s>\r\nExpires: 600\r\nMax-Forwards: 70\r\n%sContent-Length: 0\r\n\r\n",
			realm, p.tp, local, cseq, realm, realm, local, cseq, contact, extra)
	}
	p.send(base(1, ""))
	res := p.recv().(*sip.Response)
	if res.StatusCode != 401 {
		p.t.Fatalf("first REGISTER: %d, want 401", res.StatusCode)
	}
	nonce := nonceRE.FindStringSubmatch(res.GetHeader("WWW-Authenticate").Value())[1]
	uri := "sip:" + realm
	ha1 := auth.H(auth.MD5, "alice", realm, "secret1")
	resp := auth.H(auth.MD5, ha1, nonce, "00000001", "cn", "auth", auth.H(auth.MD5, "REGISTER", uri))
	p.send(base(2, fmt.Sprintf("Authorization: Digest username=\"alice\", realm=\"%s\", nonce=\"%s\", uri=\"%s\", response=\"%s\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"cn\"\r\n",
		realm, nonce, uri, resp)))
	return p.recv().(*sip.Response).StatusCode
}

func TestRequestsReachPhoneWhereItIs(t *testing.T) {
	s := startServer(t)
	dial := map[string]func() (net.Conn, error){
		"UDP": func() (net.Conn, error) { return net.Dial("udp", s.UDPAddr.String()) },
		"TCP": func() (net.Conn, error) { return net.Dial("tcp", s.TCPAddr.String()) },
		"TLS": func() (net.Conn, error) {
			return tls.Dial("tcp", s.TLSAddr.String(), &tls.Config{InsecureSkipVerify: true})
		},
	}
	for _, tp := range []string{"UDP", "TCP", "TLS"} {
		t.Run(tp, func(t *testing.T) {
			c, err := dial[tp]()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			p := &phone{t: t, conn: c, rd: bufio.NewReader(c), tp: tp}
			// The Contact names an address the phone is not at (as behind a
			// NAT); 127.0.0.2 keeps any mistake on loopback.
			contact := "sip:alice@127.0.0.2:5999;transport=" + strings.ToLower(tp)
			if code := p.register(contact); code != 200 {
				t.Fatalf("REGISTER: %d", code)
			}
			var b = s.loc.Lookup("alice")
			var bind = b[len(b)-1]
			if bind.Source != c.LocalAddr().String() || bind.Transport != tp {
				t.Fatalf("binding %+v, want source %s over %s", bind, c.LocalAddr(), tp)
			}
			done := make(chan error, 1)
			go func() {
				res, err := s.qualify(context.Background(), bind)
				if err == nil && res.StatusCode != 200 {
					err = fmt.Errorf("status %d", res.StatusCode)
				}
				done <- err
			}()
			// The OPTIONS must arrive on the phone's own socket/connection.
			req, ok := p.recv().(*sip.Request)
			if !ok || req.Method != sip.OPTIONS {
				t.Fatalf("phone got %v, want OPTIONS", req)
			}
			if tp == "UDP" && c.RemoteAddr().String() != s.UDPAddr.String() {
				t.Fatalf("OPTIONS not from the listening socket")
			}
			res := sip.NewResponseFromRequest(req, 200, "OK", nil)
			p.send(res.String())
			if err := <-done; err != nil {
				t.Fatalf("qualify: %v", err)
			}
		})
	}
}

func TestRestartKeepsBindings(t *testing.T) {
	s := startServer(t)
	c, err := net.Dial("udp", s.UDPAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	p := &phone{t: t, conn: c, tp: "UDP"}
	if code := p.register("sip:alice@127.0.0.1:5999"); code != 200 {
		t.Fatalf("REGISTER: %d", code)
	}
	c.Close()
	cfg := s.cfg
	s.Close()
	s2, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.st.Close()
	if b := s2.loc.Lookup("alice"); len(b) != 1 || b[0].Contact != "sip:alice@127.0.0.1:5999" {
		t.Fatalf("after restart: %+v", b)
	}
}

// TestSipgoLogRedactsKeys: sipgo logs an unparsable message whole; an
// SDES key in its SDP must not reach the log.
func TestSipgoLogRedactsKeys(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(levelFloor{slog.NewTextHandler(&buf, nil), slog.LevelWarn})
	const key = "PBRQJqnLb/cZx8XvMn8yVqRwY+ZEUhKY7MIevYP/"
	msg := "INVITE sip:bob@x SIP/2.0\r\nBad header\r\n\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + key + "\r\n"
	log.With("conn", "inline:"+key).Error("failed to parse "+key[:0]+"inline:"+key, "error", errors.New("x inline:"+key), "data", msg,
		slog.Group("g", "d", msg), "raw", []byte(msg))
	if out := buf.String(); strings.Contains(out, key[:12]) || !strings.Contains(out, "inline:<redacted>") {
		t.Fatalf("key in sipgo's log:\n%s", out)
	}
}
