package media

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/media/mediatest"
)

func benchConn(b *testing.B) *net.UDPConn {
	b.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	if err := c.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		b.Fatal(err)
	}
	return c
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pump sends b.N G.711 packets from src to dst in batches of 16 and reads
// them at sink, reporting wall and CPU (whole process) time per packet.
// With protect, the packets are made (and protected: the sending phone's
// SRTP) before the clock starts, so that only the relay's work is timed.
func pump(b *testing.B, src, sink *net.UDPConn, dst netip.AddrPort, protect func([]byte) []byte) {
	pkt := mediatest.RTP(0, false, 0, 0, 0x1234, g711)
	rbuf := make([]byte, 2048)
	var seq uint16
	var ready [][]byte
	if protect != nil {
		ready = make([][]byte, b.N+4)
		for i := range ready {
			p := mediatest.RTP(0, false, uint16(i+1), uint32(i+1)*160, 0x1234, g711)
			ready[i] = protect(p)
		}
	}
	send := func() {
		seq++
		out := pkt
		if ready != nil {
			out = ready[seq-1]
		} else {
			binary.BigEndian.PutUint16(pkt[2:], seq)
			binary.BigEndian.PutUint32(pkt[4:], uint32(seq)*160)
		}
		if _, err := src.WriteToUDPAddrPort(out, dst); err != nil {
			b.Fatal(err)
		}
	}
	recv := func() {
		if _, _, err := sink.ReadFromUDPAddrPort(rbuf); err != nil {
			b.Fatal(err)
		}
	}
	for range 4 { // warm up: latch, first-use growth
		send()
		recv()
	}
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	b.ResetTimer()
	const batch = 16
	for i := 0; i < b.N; i += batch {
		n := min(batch, b.N-i)
		for range n {
			send()
		}
		for range n {
			recv()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/pkt")
}

// BenchmarkRelay forwards RTP through a real loopback bridge: one op is one
// packet sent by a phone, relayed (parse, latch check, stats, send) and
// received by the other phone. allocs/op covers the relay engine too.
func BenchmarkRelay(b *testing.B) { benchRelay(b, "127.77.30.1", "", "") }

// BenchmarkRelaySRTP is BenchmarkRelay with SRTP legs: the sending phone's
// packets (protected before the clock starts) are authenticated and
// decrypted on leg A, then encrypted again with leg B's own key (SRTP to
// SRTP, re-keyed) or sent plain (SRTP to RTP). Compare cpu-ns/pkt with
// BenchmarkRelay's.
func BenchmarkRelaySRTP(b *testing.B) {
	for _, c := range []struct{ a, b Suite }{
		{AESCM128HMACSHA180, AESCM128HMACSHA180},
		{AESCM128HMACSHA180, ""},
		{AEADAES128GCM, AEADAES128GCM},
	} {
		b.Run(name(c.a)+"-"+name(c.b), func(b *testing.B) { benchRelay(b, "127.77.34.1", c.a, c.b) })
	}
}

func benchRelay(b *testing.B, poolIP string, suiteA, suiteB Suite) {
	phoneA, phoneB := benchConn(b), benchConn(b)
	pool := testPool(b, poolIP, 45000, 45003)
	var legs [2]*Leg
	var protect func([]byte) []byte
	for i, c := range []*net.UDPConn{phoneA, phoneB} {
		pp, err := pool.Allocate()
		if err != nil {
			b.Fatal(err)
		}
		cfg := LegConfig{Remote: Remote{RTP: c.LocalAddr().(*net.UDPAddr).AddrPort(), PayloadTypes: pcmuDTMF}}
		if s := []Suite{suiteA, suiteB}[i]; s != "" {
			cfg.SRTP = newKeys(b, s)
			if i == 0 {
				phone := newPhoneSRTP(b, cfg.SRTP)
				protect = func(p []byte) []byte { return phone.rtp(b, p) }
			}
		}
		legs[i], err = NewLeg(pp, cfg)
		if err != nil {
			b.Fatal(err)
		}
	}
	br, err := NewBridge(legs[0], legs[1])
	if err != nil {
		b.Fatal(err)
	}
	if err := br.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	pump(b, phoneA, phoneB, rtpAddr(legs[0]), protect)
	if s := legs[0].Stats(); s.Lost != 0 || s.PacketsIn < uint64(b.N) || s.DroppedAuth != 0 {
		b.Fatalf("lost %d, in %d, auth failures %d", s.Lost, s.PacketsIn, s.DroppedAuth)
	}
}

// BenchmarkDirect is BenchmarkRelay's baseline: the same phones with no
// relay between them. The difference is what the relay adds per packet.
func BenchmarkDirect(b *testing.B) {
	phoneA, phoneB := benchConn(b), benchConn(b)
	pump(b, phoneA, phoneB, phoneB.LocalAddr().(*net.UDPAddr).AddrPort(), nil)
}

// BenchmarkAcceptRTP is the per-packet work without sockets: parse, latch
// check, loss and jitter.
func BenchmarkAcceptRTP(b *testing.B) {
	pool := testPool(b, "127.77.31.1", 45000, 45001)
	pp, err := pool.Allocate()
	if err != nil {
		b.Fatal(err)
	}
	src := netip.MustParseAddrPort("127.0.0.1:4000")
	l, err := NewLeg(pp, LegConfig{Remote: Remote{RTP: src, PayloadTypes: pcmuDTMF}})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	l.start()
	pkt := mediatest.RTP(0, false, 0, 0, 0x1234, g711)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		binary.BigEndian.PutUint16(pkt[2:], uint16(i))
		binary.BigEndian.PutUint32(pkt[4:], uint32(i)*160)
		if _, _, _, ok := l.acceptRTP(pkt, src, l.clock.Now()); !ok {
			b.Fatal("rejected")
		}
	}
}

// BenchmarkPortPool is one Allocate and Close: two binds and two closes.
func BenchmarkPortPool(b *testing.B) {
	pool := testPool(b, "127.77.32.1", 10000, 20000)
	b.ReportAllocs()
	for b.Loop() {
		pp, err := pool.Allocate()
		if err != nil {
			b.Fatal(err)
		}
		pp.Close()
	}
}

// BenchmarkCallMemory keeps b.N bridged calls (two legs, four sockets
// each) running and reports Go heap and stack bytes per call. Run it with
// -benchtime=500x; kernel socket buffers are not counted.
func BenchmarkCallMemory(b *testing.B) {
	pool := testPool(b, "127.77.33.1", 46000, 49999) // 1,000 calls
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapInuse + ms.StackInuse
	var bridges []*Bridge
	defer func() {
		for _, br := range bridges {
			br.Close()
		}
	}()
	for range b.N {
		var legs [2]*Leg
		for i := range legs {
			pp, err := pool.Allocate()
			if errors.Is(err, ErrNoPorts) {
				b.Fatalf("more than %d calls: use -benchtime=500x", len(bridges))
			}
			if err != nil {
				b.Fatal(err)
			}
			legs[i], _ = NewLeg(pp, LegConfig{Remote: Remote{RTP: netip.MustParseAddrPort("127.0.0.1:9"), PayloadTypes: pcmuDTMF}})
		}
		br, _ := NewBridge(legs[0], legs[1])
		br.Start(context.Background())
		bridges = append(bridges, br)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse+ms.StackInuse-before)/float64(len(bridges)), "B/call")
}
