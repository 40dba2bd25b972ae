package media

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Each test binds its own 127.77.x.1 address, so its port range collides
// with nothing else on the machine.
func testPool(t testing.TB, ip string, low, high int) *PortPool {
	t.Helper()
	p, err := NewPortPool(PortPoolConfig{IP: netip.MustParseAddr(ip), Low: low, High: high})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewPortPoolRejectsBadRanges(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ip        string
		low, high int
	}{
		{"high below low", "127.77.1.1", 20000, 10000},
		{"no room for RTCP", "127.77.1.1", 20000, 20000},
		{"odd low leaves one port", "127.77.1.1", 20001, 20002},
		{"above 65535", "127.77.1.1", 65534, 65536},
		{"not a local address", "192.0.2.1", 10000, 20000},
		{"no address", "", 10000, 20000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ip, _ := netip.ParseAddr(tc.ip)
			_, err := NewPortPool(PortPoolConfig{IP: ip, Low: tc.low, High: tc.high})
			if !errors.Is(err, ErrPortRange) {
				t.Fatalf("err = %v, want ErrPortRange", err)
			}
		})
	}
}

func TestPortPoolPairs(t *testing.T) {
	for _, tc := range []struct {
		name      string
		low, high int
		want      []uint16 // RTP ports in allocation order
	}{
		{"even range", 40000, 40009, []uint16{40000, 40002, 40004, 40006, 40008}},
		{"odd low rounds up", 40001, 40006, []uint16{40002, 40004}},
		{"odd high drops the last lone port", 40000, 40004, []uint16{40000, 40002}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPool(t, "127.77.2.1", tc.low, tc.high)
			if p.Size() != len(tc.want) {
				t.Fatalf("Size = %d, want %d", p.Size(), len(tc.want))
			}
			var got []*PortPair
			for _, port := range tc.want {
				pp, err := p.Allocate()
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, pp)
				if pp.RTP().Port() != port || pp.RTCP().Port() != port+1 {
					t.Errorf("pair %v/%v, want RTP %d and RTCP %d", pp.RTP(), pp.RTCP(), port, port+1)
				}
				if pp.RTP().Addr() != netip.MustParseAddr("127.77.2.1") {
					t.Errorf("bound to %v", pp.RTP())
				}
			}
			for _, pp := range got {
				if err := pp.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestPortPoolExhaustionAndRelease(t *testing.T) {
	p := testPool(t, "127.77.3.1", 40000, 40005) // 3 pairs
	var pairs []*PortPair
	for range 3 {
		pp, err := p.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		pairs = append(pairs, pp)
	}
	if _, err := p.Allocate(); !errors.Is(err, ErrNoPorts) {
		t.Fatalf("4th Allocate: err = %v, want ErrNoPorts", err)
	}
	// Freeing one pair makes exactly one allocation succeed, and it gets
	// that pair.
	freed := pairs[1].RTP()
	if err := pairs[1].Close(); err != nil {
		t.Fatal(err)
	}
	pp, err := p.Allocate()
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	if pp.RTP() != freed {
		t.Errorf("got %v, want the freed %v", pp.RTP(), freed)
	}
	if _, err := p.Allocate(); !errors.Is(err, ErrNoPorts) {
		t.Fatalf("err = %v, want ErrNoPorts", err)
	}
	// A second release of the old pair frees nothing: pp (another call's
	// pair now) stays bound and the pool stays empty.
	if err := pairs[1].Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("double Close: err = %v, want ErrClosed", err)
	}
	if p.Free() != 0 {
		t.Errorf("Free = %d after a double release, want 0", p.Free())
	}
	if _, err := p.Allocate(); !errors.Is(err, ErrNoPorts) {
		t.Fatalf("double release freed a pair: err = %v", err)
	}
	if _, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(pp.RTP())); err == nil {
		t.Error("the new owner's RTP port was unbound by the old owner's Close")
	}
	for _, q := range []*PortPair{pairs[0], pairs[2], pp} {
		q.Close()
	}
	if p.Free() != 3 {
		t.Errorf("Free = %d, want 3", p.Free())
	}
}

func TestPortPoolSkipsPortsTheOSRefuses(t *testing.T) {
	for _, tc := range []struct {
		name     string
		occupied uint16 // bound by "another program"
		want     uint16 // first RTP port handed out
	}{
		{"RTP port taken", 40000, 40002},
		{"RTCP port taken", 40001, 40002},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ip := netip.MustParseAddr("127.77.4.1")
			other, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, tc.occupied)))
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			p := testPool(t, "127.77.4.1", 40000, 40005)
			pp, err := p.Allocate()
			if err != nil {
				t.Fatal(err)
			}
			defer pp.Close()
			if pp.RTP().Port() != tc.want {
				t.Fatalf("got %v, want port %d", pp.RTP(), tc.want)
			}
			// The refused pair is retried later: once the other program
			// lets go, it can be had.
			other.Close()
			pp2, err := p.Allocate()
			if err != nil {
				t.Fatal(err)
			}
			defer pp2.Close()
			pp3, err := p.Allocate()
			if err != nil {
				t.Fatal(err)
			}
			defer pp3.Close()
			if pp2.RTP().Port() != 40004 || pp3.RTP().Port() != 40000 {
				t.Errorf("got %v then %v, want 40004 then the formerly refused 40000", pp2.RTP(), pp3.RTP())
			}
		})
	}
}

func TestPortPoolListenErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		wantTries int
	}{
		// Busy ports: every pair is tried once, then ErrNoPorts.
		{"all busy", syscall.EADDRINUSE, 4},
		// Out of file descriptors: no use trying the others.
		{"out of descriptors", syscall.EMFILE, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tries := 0
			listen := func(laddr netip.AddrPort) (*net.UDPConn, error) {
				if laddr.Port() == 0 { // NewPortPool's probe
					return net.ListenUDP("udp4", net.UDPAddrFromAddrPort(laddr))
				}
				tries++
				return nil, &net.OpError{Op: "listen", Net: "udp", Err: fmt.Errorf("bind: %w", tc.err)}
			}
			p, err := NewPortPool(PortPoolConfig{IP: netip.MustParseAddr("127.0.0.1"), Low: 30000, High: 30007, Listen: listen})
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.Allocate()
			if !errors.Is(err, ErrNoPorts) || !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want ErrNoPorts wrapping %v", err, tc.err)
			}
			if tries != tc.wantTries {
				t.Errorf("%d bind attempts, want %d", tries, tc.wantTries)
			}
			if p.Free() != 4 {
				t.Errorf("Free = %d, want 4: refused pairs stay in the pool", p.Free())
			}
		})
	}
}

func TestPortPoolConcurrent(t *testing.T) {
	p := testPool(t, "127.77.5.1", 41000, 41039) // 20 pairs
	var mu sync.Mutex
	live := map[netip.AddrPort]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				pp, err := p.Allocate()
				if errors.Is(err, ErrNoPorts) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if live[pp.RTP()] {
					t.Errorf("%v handed out twice", pp.RTP())
				}
				live[pp.RTP()] = true
				mu.Unlock()
				mu.Lock()
				delete(live, pp.RTP())
				mu.Unlock()
				pp.Close()
			}
		}()
	}
	wg.Wait()
	if p.Free() != p.Size() {
		t.Errorf("Free = %d, want %d", p.Free(), p.Size())
	}
}

// TestPortPairConn: an application reads and writes the pair's RTP port
// through Conn, closing the conn leaves the port bound to the pair, and
// only PortPair.Close frees it.
func TestPortPairConn(t *testing.T) {
	p := testPool(t, "127.77.9.1", 40100, 40101)
	pp, err := p.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	c, err := pp.Conn()
	if err != nil {
		t.Fatal(err)
	}
	if got := c.LocalAddr().(*net.UDPAddr).AddrPort(); got != pp.RTP() {
		t.Fatalf("conn bound to %v, pair's RTP is %v", got, pp.RTP())
	}
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.77.9.1")})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if _, err := peer.WriteToUDPAddrPort([]byte("ping"), pp.RTP()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	if _, err := c.WriteToUDPAddrPort([]byte("pong"), from); err != nil {
		t.Fatal(err)
	}
	peer.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, _, err := peer.ReadFromUDPAddrPort(buf); err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("peer read %q, %v", buf[:n], err)
	}
	c.Close()
	// Still the pair's: binding the port fails until the pair is closed.
	if l, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(pp.RTP())); err == nil {
		l.Close()
		t.Fatal("port free after the conn closed, pair still held")
	}
	if err := pp.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := pp.Conn(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Conn after Close: %v", err)
	}
	l, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(pp.RTP()))
	if err != nil {
		t.Fatalf("port not freed by Close: %v", err)
	}
	l.Close()
}
