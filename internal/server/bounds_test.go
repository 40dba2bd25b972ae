package server

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/config"
)

// udpPhone is a phone on its own loopback address (127.0.0.x is all lo).
func udpPhone(t *testing.T, s *Server, ip string) *phone {
	t.Helper()
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)}, s.UDPAddr.(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &phone{t: t, conn: c, rd: bufio.NewReader(c), tp: "UDP"}
}

// guestRequest is a request from a caller of another domain to alice
// (federation: no authentication), so it reaches the call handlers; each
// id is another caller, so that no caller's call cap applies.
func guestRequest(p *phone, method, id, body string) string {
	local := p.conn.LocalAddr().String()
	ctype := ""
	if body != "" {
		ctype = "Content-Type: application/sdp\r\n"
	}
	return fmt.Sprintf("%s sip:alice@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\n"+
		"From: <sip:%s@example.org>;tag=%s\r\nTo: <sip:alice@%s>\r\nCall-ID: %s\r\nCSeq: 1 %s\r\n"+
		"Contact: <sip:carol@%s>\r\nMax-Forwards: 70\r\n%sContent-Length: %d\r\n\r\n%s",
		method, realm, local, id, id, id, realm, id, method, local, ctype, len(body), body)
}

// ackFor acknowledges a non-2xx final answer to guestRequest's INVITE id
// (same branch, RFC 3261 §17.1.1.3).
func ackFor(p *phone, id string, res *sip.Response) string {
	inv := guestRequest(p, "INVITE", id, "")
	head, _, _ := strings.Cut(inv, "\r\nContact:")
	head = strings.Replace(head, "INVITE sip:", "ACK sip:", 1)
	head = strings.Replace(head, "CSeq: 1 INVITE", "CSeq: 1 ACK", 1)
	head = strings.Replace(head, "To: <sip:alice@"+realm+">", "To: "+res.To().Value(), 1)
	return head + "\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
}

const offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n"

// finalFor reads answers until a final one for Call-ID id (or none in d).
func (p *phone) finalFor(id string, d time.Duration) *sip.Response {
	p.t.Helper()
	deadline := time.Now().Add(d)
	buf := make([]byte, 65535)
	for time.Now().Before(deadline) {
		p.conn.SetReadDeadline(deadline)
		n, err := p.conn.Read(buf)
		if err != nil {
			return nil
		}
		m, err := sip.ParseMessage(buf[:n])
		if err != nil {
			continue
		}
		if res, ok := m.(*sip.Response); ok && res.CallID().Value() == id && res.StatusCode >= 200 {
			return res
		}
	}
	return nil
}

// ringForever answers INVITEs 180 and CANCELs 200 (and the INVITE 487).
func ringForever(c net.Conn) {
	invites := map[string]*sip.Request{}
	buf := make([]byte, 65535)
	for {
		c.SetReadDeadline(time.Time{})
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		m, err := sip.ParseMessage(buf[:n])
		req, ok := m.(*sip.Request)
		if err != nil || !ok {
			continue
		}
		switch req.Method {
		case sip.INVITE:
			invites[req.CallID().Value()] = req
			c.Write([]byte(sip.NewResponseFromRequest(req, 180, "Ringing", nil).String()))
		case sip.CANCEL:
			c.Write([]byte(sip.NewResponseFromRequest(req, 200, "OK", nil).String()))
			if inv := invites[req.CallID().Value()]; inv != nil {
				c.Write([]byte(sip.NewResponseFromRequest(inv, 487, "Request Terminated", nil).String()))
			}
		case sip.ACK:
		default:
			c.Write([]byte(sip.NewResponseFromRequest(req, 200, "OK", nil).String()))
		}
	}
}

func TestSourceBounds(t *testing.T) {
	s := startServerWith(t, func(c *config.Config) {
		c.SIP.MaxCallsSetupPerSource = 2
		c.SIP.MaxPendingPerSource = 6
		c.Security.RateLimit = 0
		c.Calls.NoAnswerTimeout = config.Duration(3 * time.Second)
	}, nil)
	// alice's phone rings and never answers.
	alice := udpPhone(t, s, "127.0.0.1")
	if code := alice.register("sip:alice@" + alice.conn.LocalAddr().String()); code != 200 {
		t.Fatalf("REGISTER: %d", code)
	}
	go ringForever(alice.conn)

	t.Run("calls being set up", func(t *testing.T) {
		p := udpPhone(t, s, "127.0.0.2")
		for i := range 2 {
			p.send(guestRequest(p, "INVITE", fmt.Sprintf("setup%d", i), offer))
		}
		time.Sleep(300 * time.Millisecond) // both ringing alice
		p.send(guestRequest(p, "INVITE", "setup2", offer))
		res := p.finalFor("setup2", 2*time.Second)
		if res == nil || res.StatusCode != 503 || res.Reason != "Too Many Calls From Source" {
			t.Fatalf("third call in setup from one source: %v, want 503 Too Many Calls From Source", res)
		}
		// Another source is not held back by this one.
		q := udpPhone(t, s, "127.0.0.3")
		q.send(guestRequest(q, "INVITE", "other", offer))
		if res := q.finalFor("other", 1500*time.Millisecond); res != nil && res.StatusCode == 503 {
			t.Fatal("another source was refused for the first one's calls")
		}
		// Once the calls end (no answer, ACKed), the source may call again.
		for _, id := range []string{"setup0", "setup1"} {
			res := p.finalFor(id, 5*time.Second)
			if res == nil || res.StatusCode != 480 {
				t.Fatalf("unanswered call: %v, want 480", res)
			}
			p.send(ackFor(p, id, res))
		}
		src := netip.MustParseAddr("127.0.0.2")
		for deadline := time.Now().Add(3 * time.Second); s.bounds.setup.Held(src) > 0; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Fatalf("%d calls still in setup 3 s after the caller got its final answer\n%s", s.bounds.setup.Held(src), buf)
			}
		}
		p.send(guestRequest(p, "INVITE", "setup3", offer))
		if res := p.finalFor("setup3", 1500*time.Millisecond); res != nil && res.StatusCode == 503 {
			t.Fatal("source still refused after its calls ended")
		}
	})

	t.Run("pending transactions", func(t *testing.T) {
		p := udpPhone(t, s, "127.0.0.4")
		before := s.gate.Stats.SourceLimited.Load()
		answered := 0
		// MESSAGE gets 501 and its transaction lingers (Timer J, 5 s).
		for i := range 10 {
			id := fmt.Sprintf("pend%d", i)
			p.send(guestRequest(p, "MESSAGE", id, ""))
			if res := p.finalFor(id, 300*time.Millisecond); res != nil {
				answered++
			}
		}
		if answered != 6 {
			t.Fatalf("%d of 10 requests answered, want sip.max_pending_per_source = 6", answered)
		}
		if got := s.gate.Stats.SourceLimited.Load() - before; got != 4 {
			t.Fatalf("SourceLimited grew by %d, want 4", got)
		}
	})

	t.Run("unauthenticated INVITE challenged without a transaction", func(t *testing.T) {
		p := udpPhone(t, s, "127.0.0.6")
		fast := s.gate.Stats.Fast.Load()
		inv := strings.Replace(guestRequest(p, "INVITE", "noauth", offer), "@example.org>", "@"+realm+">", 1)
		for range 2 { // a retransmission is challenged the same way
			p.send(inv)
			res := p.finalFor("noauth", 2*time.Second)
			if res == nil || res.StatusCode != 407 || res.GetHeader("Proxy-Authenticate") == nil {
				t.Fatalf("INVITE without credentials: %v, want 407 with a challenge", res)
			}
		}
		if got := s.gate.Stats.Fast.Load() - fast; got != 2 {
			t.Fatalf("%d INVITEs answered at the edge, want 2", got)
		}
		if n := s.bounds.pending.Held(netip.MustParseAddr("127.0.0.6")); n != 0 {
			t.Fatalf("%d transactions held for a challenged INVITE", n)
		}
	})

	t.Run("SDP over the bounds", func(t *testing.T) {
		p := udpPhone(t, s, "127.0.0.5")
		body := offer + strings.Repeat("m=video 0 RTP/AVP 96\r\n", 20)
		p.send(guestRequest(p, "INVITE", "bigsdp", body))
		res := p.finalFor("bigsdp", 2*time.Second)
		if res == nil || res.StatusCode != 400 || res.Reason != "SDP Too Large" {
			t.Fatalf("INVITE with 21 media sections: %v, want 400 SDP Too Large", res)
		}
	})
}
