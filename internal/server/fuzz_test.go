package server

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/config"
)

// The fuzz targets below drive the whole server: the real wiring of New
// and Start (edge, sipgo transactions, registrar, call manager, SQLite
// store, media ports) on loopback, with alice registered at a phone that
// refuses every call with 486, so that INVITEs reach the SDP, the fork and
// the CDR code. Each input is one UDP datagram or one TCP stream from a
// fixed source; after it, the server must be back where it was: no
// transaction or call left, goroutines at their baseline, within a
// deadline. A panic anywhere kills the process, which the fuzzer reports.

// fuzzTimers shortens sipgo's timers for the fuzzing process: a finished
// transaction waits out Timer J, K, H or I (seconds in production) before
// it is gone, and the check after each input waits for that. Set once,
// before the first fuzz server starts, and never restored: fuzz targets run
// after every test of the package.
var fuzzTimers sync.Once

// fuzzServer is a server under fuzzing and the source fuzz input comes
// from.
type fuzzServer struct {
	s    *Server
	src  *net.UDPConn  // the fuzz source for datagrams
	base int           // goroutines at rest
	rung *atomic.Int64 // INVITEs alice's phone got
}

const fuzzSlack = 12 // goroutines the server may start lazily and keep (pools, timers)

func newFuzzServer(tb testing.TB) *fuzzServer {
	tb.Helper()
	s := startServerWith(tb, func(c *config.Config) {
		// Every source is trusted: a fuzzed request naming a scanner
		// tool, or a burst of inputs, must not ban the fuzzer; bans and
		// the rate limit are fuzzed at the edge (sipx FuzzProcess).
		c.Security.RateLimit = 0
		c.Security.Trusted = []string{"127.0.0.0/8"}
		c.Calls.NoAnswerTimeout = config.Duration(3 * time.Second)
		c.SIP.MessageTimeout = config.Duration(2 * time.Second)
	}, func(*Server) {
		fuzzTimers.Do(func() {
			sip.SetTimers(time.Millisecond, 8*time.Millisecond, 10*time.Millisecond)
			sip.Timer_D, sip.Timer_J, sip.Timer_M = 20*time.Millisecond, 20*time.Millisecond, 20*time.Millisecond
		})
	})
	rung := startBusyPhone(tb, s)
	src, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { src.Close() })
	go func() { // swallow the answers
		buf := make([]byte, 65535)
		for {
			if _, err := src.Read(buf); err != nil {
				return
			}
		}
	}()
	h := &fuzzServer{s: s, src: src, rung: rung, base: 1 << 30} // no goroutine check while warming up
	// Warm up (first transaction, first call, first CDR) before the
	// baseline is taken. The seeds must reach the handlers, a call to
	// alice's phone included, or fuzzing them tests only the edge.
	passed := s.gate.Stats.Passed.Load()
	for _, seed := range torture() {
		h.udp(tb, seed)
	}
	if n := s.gate.Stats.Passed.Load() - passed; n < 15 {
		tb.Fatalf("only %d seed messages got past the edge to the transaction layer", n)
	}
	if rung.Load() == 0 {
		tb.Fatal("no seed call reached alice's phone")
	}
	time.Sleep(200 * time.Millisecond)
	h.base = runtime.NumGoroutine()
	return h
}

// startBusyPhone registers alice at a UDP phone that answers every INVITE
// 486 and every other request 200.
func startBusyPhone(tb testing.TB, s *Server) *atomic.Int64 {
	tb.Helper()
	c, err := net.Dial("udp", s.UDPAddr.String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	p := &phone{t: tb, conn: c, rd: bufio.NewReader(c), tp: "UDP"}
	if code := p.register("sip:alice@" + c.LocalAddr().String()); code != 200 {
		tb.Fatalf("alice's REGISTER: %d", code)
	}
	var rung atomic.Int64
	go func() {
		buf := make([]byte, 65535)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			m, err := sip.ParseMessage(buf[:n])
			req, ok := m.(*sip.Request)
			if err != nil || !ok || req.IsAck() {
				continue
			}
			code, reason := 200, "OK"
			if req.IsInvite() {
				code, reason = 486, "Busy Here"
				rung.Add(1)
			}
			res := sip.NewResponseFromRequest(req, code, reason, nil)
			c.Write([]byte(res.String()))
		}
	}()
	return &rung
}

// udp sends one datagram from the fuzz source and waits for the server to
// be at rest again.
func (h *fuzzServer) udp(tb testing.TB, data []byte) {
	tb.Helper()
	if len(data) > 65000 {
		data = data[:65000]
	}
	before := h.s.gate.Stats.Received.Load()
	if _, err := h.src.WriteTo(data, h.s.UDPAddr); err != nil {
		tb.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for h.s.gate.Stats.Received.Load() == before {
		if time.Now().After(deadline) {
			tb.Fatal("the datagram never reached the server")
		}
		time.Sleep(100 * time.Microsecond)
	}
	h.settle(tb, 0)
}

// tcp sends data on a new TCP connection from loopback, waits for the
// server to be at rest with the connection open, then closes it and waits
// again.
func (h *fuzzServer) tcp(tb testing.TB, data []byte) {
	tb.Helper()
	c, err := net.Dial("tcp", h.s.TCPAddr.String())
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	go func() { // swallow the answers until the server or we close
		buf := make([]byte, 65535)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}()
	c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write(data); err != nil && !isClosed(err) {
		tb.Fatal(err)
	}
	h.settle(tb, 3) // the connection's reader, our reader and its pool entry may be up
	c.Close()
	h.settle(tb, 0)
}

func isClosed(err error) bool {
	return strings.Contains(err.Error(), "reset") || strings.Contains(err.Error(), "broken pipe")
}

// settle waits until no transaction or call is left and the goroutines
// are back to the baseline (plus extra), failing after a deadline.
func (h *fuzzServer) settle(tb testing.TB, extra int) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for stable := 0; stable < 3; {
		pending, calls, g := h.s.bounds.pending.Total(), h.s.activeCalls(), runtime.NumGoroutine()
		if pending == 0 && calls == 0 && g <= h.base+fuzzSlack+extra {
			stable++
		} else {
			stable = 0
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			tb.Fatalf("server not at rest 10 s after the input: %d transactions, %d calls, %d goroutines (baseline %d)\n%s",
				pending, calls, g, h.base, buf)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func FuzzServerUDP(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	h := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		h.udp(t, data)
	})
}

func FuzzServerTCP(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	// Two messages in one stream, and one split mid-header.
	t := torture()
	f.Add(append(append([]byte{}, t[0]...), t[1]...))
	f.Add(t[2][:len(t[2])/2])
	h := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		h.tcp(t, data)
	})
}

// seeds are real messages: the sipp scenarios of the end-to-end tests
// (test/testdata/sipp) filled in as sipp would, and torture().
func seeds(tb testing.TB) [][]byte {
	out := torture()
	files, err := filepath.Glob(filepath.Join("..", "..", "test", "testdata", "sipp", "*.xml"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no sipp scenarios for seeds: %v", err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, sippMessages(b)...)
	}
	return out
}

var (
	cdataRE   = regexp.MustCompile(`(?s)<send[^>]*>\s*<!\[CDATA\[(.*?)\]\]>`)
	keywordRE = regexp.MustCompile(`\[[^\]\s]+\]`)
)

// sippMessages fills in the messages a sipp scenario sends, with the
// values sipp would use toward kaopu from 127.0.0.1:5999.
func sippMessages(scenario []byte) [][]byte {
	values := map[string]string{
		"[service]": "alice", "[caller]": "bob", "[local_ip]": "127.0.0.1", "[local_port]": "5999",
		"[remote_ip]": "127.0.0.1", "[remote_port]": "5060", "[transport]": "UDP", "[pid]": "42",
		"[call_number]": "1", "[call_id]": "1-42@127.0.0.1", "[media_ip]": "127.0.0.1", "[media_port]": "6000",
		"[media_ip_type]": "4", "[local_ip_type]": "4", "[expires]": "600", "[cseq]": "1",
		"[peer_tag_param]": ";tag=abc", "[next_url]": "sip:alice@127.0.0.1:5999",
		"[callee_domain]": "kaopu.test", "[caller_domain]": "example.org",
		"[last_Via:]":  "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKlast;rport=5999",
		"[last_From:]": "From: <sip:alice@kaopu.test>;tag=abc", "[last_To:]": "To: <sip:bob@kaopu.test>;tag=42",
		"[last_Call-ID:]": "Call-ID: 1-42@127.0.0.1", "[last_CSeq:]": "CSeq: 1 INVITE",
		"[authentication]": `Proxy-Authorization: Digest username="bob", realm="kaopu.test", nonce="AAAA", uri="sip:alice@kaopu.test", response="00000000000000000000000000000000", algorithm=MD5`,
	}
	var out [][]byte
	for _, m := range cdataRE.FindAllSubmatch(scenario, -1) {
		text := keywordRE.ReplaceAllStringFunc(string(m[1]), func(k string) string {
			switch {
			case k == "[len]":
				return k
			case strings.HasPrefix(k, "[branch"):
				return "z9hG4bK" + strings.Trim(k, "[]")
			}
			if v, ok := values[k]; ok {
				return v
			}
			return "1"
		})
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
			lines = append(lines, strings.TrimSpace(l))
		}
		head, body, _ := strings.Cut(strings.Join(lines, "\r\n"), "\r\n\r\n")
		if body != "" {
			body += "\r\n"
		}
		head = strings.ReplaceAll(head, "[len]", strconv.Itoa(len(body)))
		out = append(out, []byte(head+"\r\n\r\n"+body))
	}
	return out
}

// torture are hand-written messages in the spirit of RFC 4475 (none is
// copied from it): every method the server handles, a guest call that
// reaches alice's phone, and broken or abusive variants.
func torture() [][]byte {
	msg := func(method, ruri, from, to, extra, body string) []byte {
		ctype := ""
		if body != "" {
			ctype = "Content-Type: application/sdp\r\n"
		}
		return fmt.Appendf(nil, "%s %s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-%s;rport\r\n"+
			"From: %s;tag=f1\r\nTo: %s\r\nCall-ID: fz-%s@127.0.0.1\r\nCSeq: 1 %s\r\nContact: <sip:bob@127.0.0.1:5999>\r\n"+
			"Max-Forwards: 70\r\n%s%sContent-Length: %d\r\n\r\n%s",
			method, ruri, strings.ToLower(method), from, to, strings.ToLower(method), method, extra, ctype, len(body), body)
	}
	sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 8 101\r\n" +
		"a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n"
	guest, alice, local := "<sip:carol@example.org>", "<sip:alice@kaopu.test>", "<sip:bob@kaopu.test>"
	out := [][]byte{
		msg("OPTIONS", "sip:kaopu.test", local, "<sip:kaopu.test>", "", ""),
		msg("REGISTER", "sip:kaopu.test", alice, alice, "Expires: 600\r\n", ""),
		msg("INVITE", "sip:alice@kaopu.test", guest, alice, "", sdp), // guest call: rings alice (486)
		msg("INVITE", "sip:alice@kaopu.test", local, alice, "", sdp), // 407
		msg("INVITE", "sip:nobody@kaopu.test", guest, "<sip:nobody@kaopu.test>", "", sdp),
		msg("INVITE", "sip:alice@kaopu.test", guest, alice, "Require: 100rel\r\n", sdp),
		msg("INVITE", "sip:alice@kaopu.test", guest, alice, "Require: foo\r\n", sdp),
		msg("INVITE", "sip:alice@kaopu.test", guest, alice, "Session-Expires: 10\r\n", sdp),
		msg("INVITE", "sip:alice@kaopu.test", guest, alice, "", ""), // late offer
		msg("INVITE", "sip:alice@kaopu.test", guest, alice, "", strings.Repeat("m=audio 1 RTP/AVP 0\r\n", 40)),
		msg("INVITE", "sip:alice@kaopu.test", guest, alice+";tag=nodialog", "", sdp),
		msg("BYE", "sip:alice@kaopu.test", guest, alice+";tag=x", "", ""),
		msg("CANCEL", "sip:alice@kaopu.test", guest, alice, "", ""),
		msg("ACK", "sip:alice@kaopu.test", guest, alice+";tag=x", "", ""),
		msg("PRACK", "sip:alice@kaopu.test", guest, alice+";tag=x", "RAck: 1 1 INVITE\r\n", ""),
		msg("UPDATE", "sip:alice@kaopu.test", guest, alice+";tag=x", "", sdp),
		msg("INFO", "sip:alice@kaopu.test", guest, alice+";tag=x", "", ""),
		msg("NOTIFY", "sip:alice@kaopu.test", guest, alice+";tag=x", "Event: refer\r\n", ""),
		msg("MESSAGE", "sip:alice@kaopu.test", guest, alice, "", ""),
		msg("SUBSCRIBE", "sip:alice@kaopu.test", guest, alice, "Event: presence\r\n", ""),
		msg("SUBSCRIBE", "sip:alice@kaopu.test", guest, alice, "Event: message-summary;id=1\r\nExpires: 0\r\n", ""),
		msg("SUBSCRIBE", "sip:alice@kaopu.test", guest, alice+";tag=x", "Event: Message-Summary\r\nExpires: 99999999999\r\nAccept: application/simple-message-summary\r\n", ""),
		msg("FOO", "sip:alice@kaopu.test", guest, alice, "", ""),
		// Escapes, odd spacing, folded lines, compact forms.
		[]byte("OPTIONS sip:%61lice@kaopu.test;lr SIP/2.0\r\nv:  SIP/2.0/UDP 127.0.0.1:5999 ;branch=z9hG4bKws\r\nf: \"a\\\"b\" <sip:a@x>;tag=1\r\n" +
			"t: <sip:alice@kaopu.test>\r\ni: ws\r\nCSeq:\r\n 1 OPTIONS\r\nl: 0\r\n\r\n"),
		// Broken: no Via, CSeq mismatch, bad scheme, huge Content-Length,
		// many Vias, a NUL, a response, garbage.
		[]byte("INVITE sip:alice@kaopu.test SIP/2.0\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:alice@kaopu.test>\r\nCall-ID: nv\r\nCSeq: 1 INVITE\r\n\r\n"),
		bytes.Replace(msg("INVITE", "sip:alice@kaopu.test", guest, alice, "", ""), []byte("CSeq: 1 INVITE"), []byte("CSeq: 1 BYE"), 1),
		msg("OPTIONS", "http://kaopu.test", guest, alice, "", ""),
		bytes.Replace(msg("MESSAGE", "sip:alice@kaopu.test", guest, alice, "", "x"), []byte("Content-Length: 1"), []byte("Content-Length: 99999999"), 1),
		msg("OPTIONS", "sip:kaopu.test", guest, alice, strings.Repeat("Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKv\r\n", 30), ""),
		[]byte("OPTIONS sip:kaopu.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1\x00:5999\r\n\r\n"),
		[]byte("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKnone\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: r\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"),
		[]byte("\r\n\r\n"),
		[]byte("\x00\x01\x02 garbage"),
	}
	return out
}
