package harness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// FloodConfig describes abusive traffic toward a SIP server on loopback,
// sent from many source addresses (127.0.0.0/8 is all loopback on Linux,
// so each source is a distinct IP to the server's per-source limits).
type FloodConfig struct {
	Server string // host:port of the UDP and TCP SIP listener
	Domain string // SIP domain of the server
	// Sources are the addresses the flood comes from; each kind of traffic
	// below takes its share in turn.
	Sources []string
	// Rate is the UDP datagrams per second, all sources together: garbage,
	// malformed requests, oversized requests, unauthenticated REGISTERs
	// and INVITEs that are never ACKed, in equal parts.
	Rate int
	// HalfOpen is how many TCP connections to keep open at once that send
	// nothing or half a message (reopened as the server closes them).
	HalfOpen int
	// MaxDatagrams bounds the datagrams sent in all (0: Rate * duration).
	MaxDatagrams int64
}

// FloodStats count what a flood sent.
type FloodStats struct {
	Datagrams   atomic.Int64 // UDP datagrams sent
	Connections atomic.Int64 // TCP connections opened
	Refused     atomic.Int64 // TCP connects that failed or were closed unused
}

// Flood sends cfg's traffic until ctx ends and returns what it sent.
func Flood(ctx context.Context, cfg FloodConfig) (*FloodStats, error) {
	st := &FloodStats{}
	if len(cfg.Sources) == 0 {
		return st, fmt.Errorf("flood: no sources")
	}
	raddr, err := net.ResolveUDPAddr("udp4", cfg.Server)
	if err != nil {
		return st, err
	}
	var conns []*net.UDPConn
	for _, src := range cfg.Sources {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(src)})
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return st, fmt.Errorf("flood: bind %s: %w", src, err)
		}
		c.SetWriteBuffer(4 << 20)
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var wg sync.WaitGroup
	// Answers are read and thrown away, so the sockets' buffers never
	// hold the flood back.
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 65535)
			for {
				if _, _, err := c.ReadFrom(buf); err != nil {
					return
				}
			}
		}()
	}
	if cfg.HalfOpen > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); halfOpen(ctx, cfg, st) }()
	}
	if cfg.Rate > 0 {
		// One sender per 5,000 datagrams/s (a write is a system call of
		// some microseconds), each with its share of the sources.
		senders := min(len(conns), max(1, (cfg.Rate+4999)/5000))
		var sw sync.WaitGroup
		for i := range senders {
			var mine []*net.UDPConn
			for j := i; j < len(conns); j += senders {
				mine = append(mine, conns[j])
			}
			share := cfg
			share.Rate = cfg.Rate * len(mine) / len(conns)
			share.MaxDatagrams = cfg.MaxDatagrams * int64(len(mine)) / int64(len(conns))
			sw.Add(1)
			go func() { defer sw.Done(); sendDatagrams(ctx, share, mine, raddr, st, uint64(i)) }()
		}
		sw.Wait()
	} else {
		<-ctx.Done()
	}
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	return st, nil
}

// sendDatagrams paces datagrams at cfg.Rate in batches every millisecond
// or so, round-robin over the sources and the kinds of abuse.
func sendDatagrams(ctx context.Context, cfg FloodConfig, conns []*net.UDPConn, raddr *net.UDPAddr, st *FloodStats, seed uint64) {
	rng := rand.New(rand.NewPCG(1, seed))
	start := time.Now()
	var sent int64
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		due := int64(time.Since(start).Seconds() * float64(cfg.Rate))
		if cfg.MaxDatagrams > 0 {
			due = min(due, cfg.MaxDatagrams)
		}
		for ; sent < due; sent++ {
			c := conns[int(sent)%len(conns)]
			b := floodDatagram(rng, int(sent/int64(len(conns))), c.LocalAddr().String(), cfg.Domain)
			if _, err := c.WriteToUDP(b, raddr); err == nil {
				st.Datagrams.Add(1)
			}
		}
		if cfg.MaxDatagrams > 0 && sent >= cfg.MaxDatagrams {
			<-ctx.Done()
			return
		}
	}
}

// floodDatagram is the n-th datagram of a source: one of five kinds.
func floodDatagram(rng *rand.Rand, n int, local, domain string) []byte {
	token := fmt.Sprintf("%x%x", rng.Uint64(), n)
	req := func(method, ruri, from, extra string) []byte {
		return fmt.Appendf(nil, "%s %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\nMax-Forwards: 70\r\n"+
			"From: <sip:%s>;tag=%s\r\nTo: <%s>\r\nCall-ID: %s\r\nCSeq: 1 %s\r\nContact: <sip:x@%s>\r\n%sContent-Length: 0\r\n\r\n",
			method, ruri, local, token, from, token, ruri, token, method, local, extra)
	}
	switch n % 5 {
	case 0: // bytes that are not SIP at all
		b := make([]byte, 64+rng.IntN(400))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	case 1: // a request with a broken header
		b := req("OPTIONS", "sip:"+domain, "flood@"+domain, "")
		return []byte(strings.Replace(string(b), "CSeq: 1 OPTIONS", "CSeq: x OPTIONS", 1))
	case 2: // larger than any sip.max_message_size
		return req("MESSAGE", "sip:"+domain, "flood@"+domain, "X-Pad: "+strings.Repeat("p", 20000)+"\r\n")
	case 3: // a REGISTER without credentials (401)
		return req("REGISTER", "sip:"+domain, fmt.Sprintf("u%d@%s", n%1000, domain), "Expires: 600\r\n")
	default: // an INVITE without credentials (407) that is never ACKed
		return req("INVITE", "sip:1001@"+domain, fmt.Sprintf("u%d@%s", n%1000, domain), "")
	}
}

// halfOpen keeps cfg.HalfOpen TCP connections open from the sources in
// turn: odd ones send half a request, even ones nothing.
func halfOpen(ctx context.Context, cfg FloodConfig, st *FloodStats) {
	sem := make(chan struct{}, cfg.HalfOpen)
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case sem <- struct{}{}:
		}
		src := cfg.Sources[i%len(cfg.Sources)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
			c, err := d.DialContext(ctx, "tcp4", cfg.Server)
			if err != nil {
				st.Refused.Add(1)
				time.Sleep(10 * time.Millisecond)
				return
			}
			defer c.Close()
			opened := time.Now()
			st.Connections.Add(1)
			if i%2 == 1 {
				fmt.Fprintf(c, "INVITE sip:1001@%s SIP/2.0\r\nVia: SIP/2.0/TCP %s;branch=z9hG4bKhalf%d\r\nFrom: ", cfg.Domain, c.LocalAddr(), i)
			}
			// Held until the server gives up on it (or the flood ends).
			done := make(chan struct{})
			go func() {
				select {
				case <-ctx.Done():
					c.Close()
				case <-done:
				}
			}()
			buf := make([]byte, 4096)
			for {
				if _, err := c.Read(buf); err != nil {
					break
				}
			}
			close(done)
			if time.Since(opened) < 50*time.Millisecond {
				// Closed at once: over the per-source cap, or banned.
				st.Refused.Add(1)
				time.Sleep(200 * time.Millisecond)
			}
		}()
	}
}
