//go:build linux

package media

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/media/mediatest"
)

func (e *engine) running() (refs, workers int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.refs, len(e.workers)
}

// The relay engine's workers run only while a bridge of the pool is up.
func TestEngineRunsOnlyWhileBridgesAre(t *testing.T) {
	pool, err := NewPortPool(PortPoolConfig{IP: netip.MustParseAddr("127.77.40.1"), Low: 43000, High: 43009, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	newBridge := func() (*Bridge, *mediatest.Endpoint, *mediatest.Endpoint) {
		epA := mediatest.NewEndpoint(t, "127.0.0.1:0")
		epB := mediatest.NewEndpoint(t, "127.0.0.1:0")
		var legs [2]*Leg
		for i, ep := range []*mediatest.Endpoint{epA, epB} {
			pp, err := pool.Allocate()
			if err != nil {
				t.Fatal(err)
			}
			if legs[i], err = NewLeg(pp, LegConfig{Remote: remote(ep)}); err != nil {
				t.Fatal(err)
			}
		}
		br, err := NewBridge(legs[0], legs[1])
		if err != nil {
			t.Fatal(err)
		}
		if err := br.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return br, epA, epB
	}
	if r, w := pool.eng.running(); r != 0 || w != 0 {
		t.Fatalf("before any bridge: %d refs, %d workers", r, w)
	}
	br1, epA, epB := newBridge()
	br2, epC, epD := newBridge()
	if r, w := pool.eng.running(); r != 2 || w != 2 {
		t.Fatalf("two bridges: %d refs, %d workers; want 2, 2", r, w)
	}
	// Both bridges relay, whichever worker serves them.
	for _, c := range []struct {
		from, to *mediatest.Endpoint
		br       *Bridge
	}{{epA, epB, br1}, {epC, epD, br2}} {
		b := mediatest.RTP(0, false, 1, 0, 9, g711)
		c.from.Send(rtpAddr(c.br.a), b)
		expectRTP(t, c.to, b, rtpAddr(c.br.b))
	}
	br1.Close()
	if r, w := pool.eng.running(); r != 1 || w != 2 {
		t.Fatalf("one bridge left: %d refs, %d workers", r, w)
	}
	b := mediatest.RTP(0, false, 2, 160, 9, g711)
	epC.Send(rtpAddr(br2.a), b)
	expectRTP(t, epD, b, rtpAddr(br2.b))
	br2.Close()
	if r, w := pool.eng.running(); r != 0 || w != 0 {
		t.Fatalf("after the last bridge: %d refs, %d workers", r, w)
	}
	// And they come back for the next call.
	br3, epE, epF := newBridge()
	defer br3.Close()
	b = mediatest.RTP(0, false, 3, 320, 9, g711)
	epE.Send(rtpAddr(br3.a), b)
	expectRTP(t, epF, b, rtpAddr(br3.b))
}

// Calls end, and their pairs are handed out again, while media floods
// them: nothing of an old call reaches a new one, nothing crashes (run
// with -race), and every pair comes back.
func TestBridgeChurnUnderLoad(t *testing.T) {
	pool, err := NewPortPool(PortPoolConfig{IP: netip.MustParseAddr("127.77.41.1"), Low: 43000, High: 43007, Workers: 2}) // 4 pairs
	if err != nil {
		t.Fatal(err)
	}
	sender := mediatest.NewEndpoint(t, "127.0.0.1:0") // floods whatever ports were in use
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pkt := mediatest.RTP(0, false, 1, 0, 0xdead, g711)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for port := 43000; port < 43008; port++ {
				sender.Send(netip.AddrPortFrom(netip.MustParseAddr("127.77.41.1"), uint16(port)), pkt)
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	for round := range 30 {
		epA := mediatest.NewEndpoint(t, "127.0.0.1:0")
		epB := mediatest.NewEndpoint(t, "127.0.0.1:0")
		var legs [2]*Leg
		for i, ep := range []*mediatest.Endpoint{epA, epB} {
			pp, err := pool.Allocate()
			if err != nil {
				t.Fatal(err)
			}
			if legs[i], err = NewLeg(pp, LegConfig{Remote: remote(ep), IgnoreSDPIP: true, LatchWindow: time.Nanosecond}); err != nil {
				t.Fatal(err)
			}
		}
		br, err := NewBridge(legs[0], legs[1])
		if err != nil {
			t.Fatal(err)
		}
		if err := br.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // the window closes: the flood is a stranger
		b := mediatest.RTP(0, false, uint16(round), 0, 0xaaaa, g711)
		epA.Send(rtpAddr(legs[0]), b)
		expectRTP(t, epB, b, rtpAddr(legs[1]))
		if round%2 == 0 {
			legs[0].Close() // a leg closed under its bridge first
		}
		if err := br.Close(); err != nil {
			t.Fatal(err)
		}
		if n := epB.Drain(); n != 0 {
			t.Fatalf("round %d: %d stray packets reached the callee", round, n)
		}
	}
	if pool.Free() != pool.Size() {
		t.Errorf("Free = %d, want %d", pool.Free(), pool.Size())
	}
	if r, w := pool.eng.running(); r != 0 || w != 0 {
		t.Errorf("after the last call: %d refs, %d workers", r, w)
	}
}
