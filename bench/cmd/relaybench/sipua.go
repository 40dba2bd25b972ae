package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// sipUA is one UDP SIP socket of the driver: the callers' (UAC) or the
// callees' (UAS). Responses go to whoever waits on their Call-ID;
// requests go to onRequest. RFC 3261 timers are simplified to what a
// loopback run needs: retransmit on T1 doubling until an answer, bounded.
type sipUA struct {
	conn      *net.UDPConn
	addr      netip.AddrPort
	onRequest func(m *sipMsg, src netip.AddrPort)

	mu      sync.Mutex
	waiters map[string]chan *sipMsg // by Call-ID
	acks    map[string][]byte       // Call-ID -> ACK of its 2xx, for retransmitted 2xx
	done    chan struct{}
}

func newSIPUA() (*sipUA, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	_ = c.SetReadBuffer(4 << 20)
	_ = c.SetWriteBuffer(4 << 20)
	ua := &sipUA{conn: c, addr: c.LocalAddr().(*net.UDPAddr).AddrPort(), waiters: map[string]chan *sipMsg{}, acks: map[string][]byte{}, done: make(chan struct{})}
	return ua, nil
}

func (ua *sipUA) serve() {
	defer close(ua.done)
	buf := make([]byte, 65535)
	for {
		n, src, err := ua.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		m, err := parseSIP(append([]byte(nil), buf[:n]...))
		if err != nil {
			continue
		}
		if m.method != "" {
			if ua.onRequest != nil {
				ua.onRequest(m, src)
			}
			continue
		}
		ua.mu.Lock()
		ch := ua.waiters[m.get("Call-ID")]
		ack := ua.acks[m.get("Call-ID")]
		ua.mu.Unlock()
		if ack != nil && isRetransmitted2xx(m) {
			// Our ACK was lost: the server resends its 2xx (RFC 3261 §13.3.1.4).
			ua.conn.WriteToUDPAddrPort(ack, src)
			continue
		}
		if ch != nil {
			select {
			case ch <- m:
			default:
			}
		}
	}
}

func (ua *sipUA) close() {
	ua.conn.Close()
	<-ua.done
}

func (ua *sipUA) send(m *sipMsg, to netip.AddrPort) error {
	_, err := ua.conn.WriteToUDPAddrPort([]byte(m.String()), to)
	return err
}

// watch registers a channel for the responses of a Call-ID.
func (ua *sipUA) watch(callID string) chan *sipMsg {
	ch := make(chan *sipMsg, 32)
	ua.mu.Lock()
	ua.waiters[callID] = ch
	ua.mu.Unlock()
	return ch
}

func (ua *sipUA) unwatch(callID string) {
	ua.mu.Lock()
	delete(ua.waiters, callID)
	ua.mu.Unlock()
}

// transact sends req to dst and waits for its final response (matching
// CSeq), retransmitting until a response arrives (RFC 3261 §17.1.1.2 /
// §17.1.2.2, T1 = 500 ms). A 2xx to an INVITE is returned as final; other
// responses are returned after their provisional ones.
func (ua *sipUA) transact(ctx context.Context, ch chan *sipMsg, req *sipMsg, dst netip.AddrPort) (*sipMsg, error) {
	wire := []byte(req.String())
	num, method := req.cseq()
	if _, err := ua.conn.WriteToUDPAddrPort(wire, dst); err != nil {
		return nil, err
	}
	t1 := 500 * time.Millisecond
	retrans := time.NewTimer(t1)
	defer retrans.Stop()
	provisional := false
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: %w", method, ctx.Err())
		case <-retrans.C:
			if !provisional || method != "INVITE" {
				ua.conn.WriteToUDPAddrPort(wire, dst)
			}
			t1 = min(2*t1, 4*time.Second)
			retrans.Reset(t1)
		case m := <-ch:
			n, meth := m.cseq()
			if n != num || meth != method {
				continue // a stray retransmission of an earlier transaction
			}
			if m.status < 200 {
				provisional = true
				continue
			}
			return m, nil
		}
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// dialog is a caller's view of an established call (RFC 3261 §12.1.2).
type dialog struct {
	callID, fromTag, toTag string
	from, to               string // header values with tags
	target                 string // remote Contact URI
	routes                 []string
	cseq                   uint32
	ack                    []byte // the ACK for the 2xx, resent on retransmitted 2xx
}

// inviteOpts are one call's caller-side parameters.
type inviteOpts struct {
	server   netip.AddrPort // kaopu's SIP address
	domain   string
	user     string
	password string
	ruri     string // Request-URI
	sdp      []byte
}

// invite runs INVITE → 407 → ACK → INVITE with Proxy-Authorization → 200
// → ACK and returns the dialog and the answer's body.
func (ua *sipUA) invite(ctx context.Context, o inviteOpts) (*dialog, []byte, error) {
	d := &dialog{callID: randHex(8) + "@relaybench", fromTag: randHex(4)}
	d.from = fmt.Sprintf("<sip:%s@%s>;tag=%s", o.user, o.domain, d.fromTag)
	d.to = "<" + o.ruri + ">"
	ch := ua.watch(d.callID)
	defer ua.unwatch(d.callID)
	build := func(cseq uint32, authz string) *sipMsg {
		m := &sipMsg{method: "INVITE", uri: o.ruri, body: o.sdp}
		m.add("Via", fmt.Sprintf("SIP/2.0/UDP %s;rport;branch=z9hG4bK%s", ua.addr, randHex(6)))
		m.add("Max-Forwards", "70")
		m.add("From", d.from)
		m.add("To", d.to)
		m.add("Call-ID", d.callID)
		m.add("CSeq", fmt.Sprintf("%d INVITE", cseq))
		m.add("Contact", fmt.Sprintf("<sip:%s@%s>", o.user, ua.addr))
		if authz != "" {
			m.add("Proxy-Authorization", authz)
		}
		m.add("Content-Type", "application/sdp")
		return m
	}
	req := build(1, "")
	res, err := ua.transact(ctx, ch, req, o.server)
	if err != nil {
		return nil, nil, err
	}
	if res.status == 407 {
		// RFC 3261 §17.1.1.3: ACK a non-2xx final response in the same
		// transaction (same branch).
		ua.send(ackFor(req, res), o.server)
		ch2, ok := pickMD5(res.values("Proxy-Authenticate"))
		if !ok {
			return nil, nil, errors.New("407 without an MD5 challenge")
		}
		authz, err := digestAnswer(ch2, o.user, o.password, "INVITE", o.ruri, randHex(8))
		if err != nil {
			return nil, nil, err
		}
		req = build(2, authz)
		if res, err = ua.transact(ctx, ch, req, o.server); err != nil {
			return nil, nil, err
		}
	}
	if res.status != 200 {
		if res.status >= 300 {
			ua.send(ackFor(req, res), o.server)
		}
		return nil, nil, fmt.Errorf("INVITE: %d %s", res.status, res.reason)
	}
	d.cseq, _ = res.cseq()
	d.to = res.get("To")
	d.toTag = tagOf(d.to)
	d.target = uriOf(res.get("Contact"))
	if d.target == "" {
		d.target = o.ruri
	}
	rr := res.all("Record-Route")
	for i := len(rr) - 1; i >= 0; i-- {
		d.routes = append(d.routes, rr[i])
	}
	ack := d.request("ACK", ua.addr)
	d.ack = []byte(ack.String())
	ua.mu.Lock()
	ua.acks[d.callID] = d.ack
	ua.mu.Unlock()
	ua.conn.WriteToUDPAddrPort(d.ack, o.server)
	return d, res.body, nil
}

// request builds an in-dialog request.
func (d *dialog) request(method string, local netip.AddrPort) *sipMsg {
	m := &sipMsg{method: method, uri: d.target}
	m.add("Via", fmt.Sprintf("SIP/2.0/UDP %s;rport;branch=z9hG4bK%s", local, randHex(6)))
	m.add("Max-Forwards", "70")
	for _, r := range d.routes {
		m.add("Route", r)
	}
	m.add("From", d.from)
	m.add("To", d.to)
	m.add("Call-ID", d.callID)
	m.add("CSeq", fmt.Sprintf("%d %s", d.cseq, method))
	return m
}

// bye ends the dialog.
func (ua *sipUA) bye(ctx context.Context, d *dialog, server netip.AddrPort) error {
	ch := ua.watch(d.callID)
	defer ua.unwatch(d.callID)
	ua.mu.Lock()
	delete(ua.acks, d.callID)
	ua.mu.Unlock()
	d.cseq++
	res, err := ua.transact(ctx, ch, d.request("BYE", ua.addr), server)
	if err != nil {
		return err
	}
	if res.status != 200 {
		return fmt.Errorf("BYE: %d %s", res.status, res.reason)
	}
	return nil
}

// ackFor is the ACK of a non-2xx final response (RFC 3261 §17.1.1.3).
func ackFor(req, res *sipMsg) *sipMsg {
	m := &sipMsg{method: "ACK", uri: req.uri}
	m.add("Via", req.get("Via"))
	m.add("Max-Forwards", "70")
	m.add("From", req.get("From"))
	m.add("To", res.get("To"))
	m.add("Call-ID", req.get("Call-ID"))
	n, _ := req.cseq()
	m.add("CSeq", fmt.Sprintf("%d ACK", n))
	return m
}

// callee answers kaopu's INVITEs to sip:cN@127.0.0.1:PORT: 200 with an SDP
// pointing at the callee leg's socket, given by lookup(N's user). It
// answers BYE with 200 and resends its 200 on a retransmitted INVITE.
type callee struct {
	ua     *sipUA
	lookup func(user string) (leg *genLeg, got func(relay netip.AddrPort), ok bool)

	mu   sync.Mutex
	sent map[string]*sipMsg // Call-ID -> our 200
}

func (c *callee) handle(m *sipMsg, src netip.AddrPort) {
	callID := m.get("Call-ID")
	switch m.method {
	case "INVITE":
		c.mu.Lock()
		prev := c.sent[callID]
		c.mu.Unlock()
		if prev != nil {
			c.ua.send(prev, src)
			return
		}
		user := userOf(m.uri)
		leg, got, ok := c.lookup(user)
		relay, err := sdpMedia(m.body)
		if !ok || err != nil {
			c.ua.send(response(m, 488, "Not Acceptable Here", randHex(4)), src)
			return
		}
		body := offerSDP(leg.local, uint64(time.Now().UnixNano()))
		if strings.Contains(string(m.body), "a=crypto:1 AES_CM_128_HMAC_SHA1_80 ") {
			// The server offered SRTP: accept its tag 1 with our own key.
			crypto, err := leg.useSRTP()
			if err != nil {
				c.ua.send(response(m, 500, "Server Internal Error", randHex(4)), src)
				return
			}
			body = srtpSDP(leg.local, uint64(time.Now().UnixNano()), "RTP/AVP", crypto)
		}
		got(relay)
		r := response(m, 200, "OK", randHex(4))
		r.add("Contact", fmt.Sprintf("<sip:%s@%s>", user, c.ua.addr))
		r.add("Content-Type", "application/sdp")
		r.body = body
		c.mu.Lock()
		c.sent[callID] = r
		c.mu.Unlock()
		c.ua.send(r, src)
	case "ACK":
	case "BYE", "CANCEL", "OPTIONS", "INFO", "UPDATE", "NOTIFY":
		c.ua.send(response(m, 200, "OK", ""), src)
		if m.method == "BYE" {
			c.mu.Lock()
			delete(c.sent, callID)
			c.mu.Unlock()
		}
	default:
		c.ua.send(response(m, 405, "Method Not Allowed", ""), src)
	}
}

// isRetransmitted2xx: a 2xx to an INVITE.
func isRetransmitted2xx(m *sipMsg) bool {
	_, meth := m.cseq()
	return m.status >= 200 && m.status < 300 && strings.EqualFold(meth, "INVITE")
}
