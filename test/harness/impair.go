package harness

import (
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// Impairment is what an ImpairingSTUN relay does to each datagram it
// forwards: drop it with probability Loss, else deliver it after Delay ±
// Jitter (uniformly), which reorders packets as a real jittery path does.
type Impairment struct {
	Loss   float64
	Delay  time.Duration
	Jitter time.Duration
}

// ImpairingSTUN is a STUN server (RFC 5389 Binding) on loopback that acts
// as a full-cone NAT with a bad network behind it: to each Binding request
// it answers with the address of a new relay port, which forwards what
// arrives there to the requester's socket, and what the requester sends
// back through it to whoever last sent to it, impairing both directions.
// A phone that announces its STUN address in SDP so gets all of its media
// through the impairment. This stands in for tc netem where the kernel has
// no queueing disciplines (netem is unknown to this machine's kernel).
type ImpairingSTUN struct {
	Addr string // host:port of the STUN server

	t    testing.TB
	imp  Impairment
	conn *net.UDPConn

	mu     sync.Mutex
	rng    *rand.Rand
	relays []*net.UDPConn
	stats  ImpairStats
}

// ImpairStats count what the relays did.
type ImpairStats struct {
	Forwarded, Dropped int
}

// StartImpairingSTUN starts the server; it and its relays close when the
// test ends. seed makes the losses repeatable.
func StartImpairingSTUN(t testing.TB, imp Impairment, seed uint64) *ImpairingSTUN {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &ImpairingSTUN{Addr: c.LocalAddr().String(), t: t, imp: imp, conn: c, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	done := make(chan struct{})
	go s.serve(done)
	t.Cleanup(func() {
		c.Close()
		<-done
		s.mu.Lock()
		for _, r := range s.relays {
			r.Close()
		}
		s.mu.Unlock()
	})
	return s
}

// Stats are the counts so far.
func (s *ImpairingSTUN) Stats() ImpairStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

func (s *ImpairingSTUN) serve(done chan struct{}) {
	defer close(done)
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		var req stun.Message
		req.Raw = append([]byte(nil), buf[:n]...)
		if req.Decode() != nil || req.Type != stun.BindingRequest {
			continue
		}
		relay, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			continue
		}
		s.mu.Lock()
		s.relays = append(s.relays, relay)
		s.mu.Unlock()
		go s.relay(relay, from)
		ra := relay.LocalAddr().(*net.UDPAddr)
		res, err := stun.Build(stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess,
			&stun.XORMappedAddress{IP: ra.IP, Port: ra.Port}, stun.Fingerprint)
		if err == nil {
			s.conn.WriteToUDP(res.Raw, from)
		}
	}
}

// relay forwards between the requester (inside) and the last outside
// sender, impaired both ways.
func (s *ImpairingSTUN) relay(c *net.UDPConn, inside *net.UDPAddr) {
	var outside *net.UDPAddr
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFromUDP(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.t.Logf("impairing relay: %v", err)
			}
			return
		}
		var to *net.UDPAddr
		if from.IP.Equal(inside.IP) && from.Port == inside.Port {
			to = outside
		} else {
			outside, to = from, inside
		}
		if to == nil {
			continue
		}
		s.mu.Lock()
		drop := s.rng.Float64() < s.imp.Loss
		delay := s.imp.Delay
		if s.imp.Jitter > 0 {
			delay += time.Duration(s.rng.Int64N(int64(2*s.imp.Jitter))) - s.imp.Jitter
		}
		if drop {
			s.stats.Dropped++
		} else {
			s.stats.Forwarded++
		}
		s.mu.Unlock()
		if drop {
			continue
		}
		pkt := append([]byte(nil), buf[:n]...)
		time.AfterFunc(max(delay, 0), func() { c.WriteToUDP(pkt, to) })
	}
}
