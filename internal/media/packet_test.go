package media

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/kaopu/kaopu/internal/media/mediatest"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		want packetKind
	}{
		{"empty", nil, kindOther},
		{"STUN binding request", []byte{0x00, 0x01, 0x00, 0x00}, kindSTUN},
		{"DTLS handshake", []byte{22, 0xfe, 0xfd}, kindDTLS},
		{"RTP PCMU", mediatest.RTP(0, false, 1, 2, 3, nil), kindRTP},
		{"RTP marker and dynamic PT 101", mediatest.RTP(101, true, 1, 2, 3, nil), kindRTP},
		{"RTCP SR", []byte{0x80, 200, 0, 6}, kindRTCP},
		{"RTCP RR", []byte{0x81, 201, 0, 7}, kindRTCP},
		{"one byte of RTP range", []byte{0x80}, kindRTP},
		{"text", []byte("hello"), kindOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := classify(tc.b); got != tc.want {
				t.Errorf("classify = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestParseRTP(t *testing.T) {
	basic := mediatest.RTP(8, true, 0xbeef, 0x01020304, 0xcafebabe, []byte{1, 2, 3, 4})
	withCSRC := append([]byte{0x82, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3}, make([]byte, 8+2)...)
	withExt := append([]byte{0x90, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0}, 9, 9)
	padded := append(mediatest.RTP(0, false, 1, 2, 3, []byte{7, 7}), 0, 0, 3)
	padded[0] |= 0x20
	for _, tc := range []struct {
		name string
		b    []byte
		ok   bool
		want rtpHeader
	}{
		{"basic", basic, true, rtpHeader{pt: 8, marker: true, seq: 0xbeef, ts: 0x01020304, ssrc: 0xcafebabe}},
		{"header only", mediatest.RTP(0, false, 5, 6, 7, nil), true, rtpHeader{seq: 5, ts: 6, ssrc: 7}},
		{"two CSRCs", withCSRC, true, rtpHeader{seq: 1, ts: 2, ssrc: 3}},
		{"extension", withExt, true, rtpHeader{seq: 1, ts: 2, ssrc: 3}},
		{"padding", padded, true, rtpHeader{seq: 1, ts: 2, ssrc: 3}},
		{"11 bytes", basic[:11], false, rtpHeader{}},
		{"version 1", append([]byte{0x40}, basic[1:]...), false, rtpHeader{}},
		{"version 0 (STUN)", append([]byte{0x00}, basic[1:]...), false, rtpHeader{}},
		{"CSRCs past the end", withCSRC[:19], false, rtpHeader{}},
		{"extension header past the end", withExt[:14], false, rtpHeader{}},
		{"extension body past the end", withExt[:17], false, rtpHeader{}},
		{"padding count zero", append(append([]byte{}, padded[:len(padded)-1]...), 0), false, rtpHeader{}},
		{"padding longer than packet", append(append([]byte{}, padded[:len(padded)-1]...), 200), false, rtpHeader{}},
		{"RTCP SR type (RFC 5761)", append([]byte{0x80, 200}, basic[2:]...), false, rtpHeader{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, ok := parseRTP(tc.b)
			if ok != tc.ok || h != tc.want {
				t.Errorf("parseRTP = %+v, %v; want %+v, %v", h, ok, tc.want, tc.ok)
			}
		})
	}
}

func marshalRTCP(t testing.TB, pkts ...rtcp.Packet) []byte {
	t.Helper()
	b, err := rtcp.Marshal(pkts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	testSR = &rtcp.SenderReport{
		SSRC: 0x11111111, NTPTime: 0xe0000000_80000000, RTPTime: 16000, PacketCount: 50, OctetCount: 8000,
		Reports: []rtcp.ReceptionReport{{SSRC: 0x22222222, FractionLost: 25, TotalLost: 7, LastSequenceNumber: 65600, Jitter: 42, LastSenderReport: 0x12345678, Delay: 0x10000}},
	}
	testRR = &rtcp.ReceiverReport{
		SSRC:    0x33333333,
		Reports: []rtcp.ReceptionReport{{SSRC: 0x44444444, FractionLost: 1, TotalLost: 2, LastSequenceNumber: 3, Jitter: 4, LastSenderReport: 5, Delay: 6}},
	}
	testSDES = &rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: 0x11111111, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "phone@example"}}}}}
)

func TestRTCPParse(t *testing.T) {
	sr := marshalRTCP(t, testSR, testSDES)
	rr := marshalRTCP(t, testRR)
	bye := marshalRTCP(t, &rtcp.Goodbye{Sources: []uint32{1}})
	badVersion := append([]byte{0x40}, rr[1:]...)
	shortLen := append([]byte{}, rr...)
	binary.BigEndian.PutUint16(shortLen[2:], 100)
	padMiddle := append([]byte{}, sr...)
	padMiddle[0] |= 0x20
	for _, tc := range []struct {
		name   string
		b      []byte
		valid  bool
		report bool
		want   RTCPReport
	}{
		{"SR+SDES", sr, true, true, RTCPReport{SSRC: 0x11111111, Sender: true, NTPTime: 0xe0000000_80000000, RTPTime: 16000, PacketCount: 50, OctetCount: 8000,
			Blocks: []ReportBlock{{SSRC: 0x22222222, FractionLost: 25, TotalLost: 7, HighestSeq: 65600, Jitter: 42, LSR: 0x12345678, DLSR: 0x10000}}}},
		{"RR", rr, true, true, RTCPReport{SSRC: 0x33333333, Blocks: []ReportBlock{{SSRC: 0x44444444, FractionLost: 1, TotalLost: 2, HighestSeq: 3, Jitter: 4, LSR: 5, DLSR: 6}}}},
		{"BYE only (reduced size)", bye, true, false, RTCPReport{}},
		{"RTP", mediatest.RTP(0, false, 1, 2, 3, make([]byte, 160)), false, false, RTCPReport{}},
		{"bad version", badVersion, false, false, RTCPReport{}},
		{"length past the end", shortLen, false, false, RTCPReport{}},
		{"trailing bytes", append(append([]byte{}, rr...), 0, 0), false, false, RTCPReport{}},
		{"padding before the last packet", padMiddle, false, false, RTCPReport{}},
		{"3 bytes", rr[:3], false, false, RTCPReport{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := validRTCP(tc.b); got != tc.valid {
				t.Fatalf("validRTCP = %v, want %v", got, tc.valid)
			}
			if !tc.valid {
				return
			}
			var p rtcpParser
			var rep RTCPReport
			if got := p.parse(tc.b, &rep); got != tc.report {
				t.Fatalf("parse = %v, want %v", got, tc.report)
			}
			if tc.report && !equalReports(rep, tc.want) {
				t.Errorf("report = %+v\nwant     %+v", rep, tc.want)
			}
		})
	}
}

func equalReports(a, b RTCPReport) bool {
	if len(a.Blocks) != len(b.Blocks) {
		return false
	}
	for i := range a.Blocks {
		if a.Blocks[i] != b.Blocks[i] {
			return false
		}
	}
	a.Blocks, b.Blocks = nil, nil
	return a.SSRC == b.SSRC && a.Sender == b.Sender && a.NTPTime == b.NTPTime && a.RTPTime == b.RTPTime &&
		a.PacketCount == b.PacketCount && a.OctetCount == b.OctetCount
}

func TestRTCPParseDoesNotAllocate(t *testing.T) {
	b := marshalRTCP(t, testSR, testSDES)
	var p rtcpParser
	var rep RTCPReport
	p.parse(b, &rep) // grow the reused slices once
	if n := testing.AllocsPerRun(100, func() {
		if !validRTCP(b) || !p.parse(b, &rep) {
			t.Fatal("parse failed")
		}
	}); n != 0 {
		t.Errorf("%v allocations per RTCP packet, want 0", n)
	}
}

// FuzzParseRTP checks the RTP header parser against pion/rtp: whatever it
// accepts, pion parses to the same fields, and it accepts every version-2,
// non-RTCP packet that pion does.
func FuzzParseRTP(f *testing.F) {
	f.Add(mediatest.RTP(0, false, 1, 160, 0x1234, make([]byte, 160)))
	f.Add(mediatest.RTP(101, true, 65535, 0xffffffff, 1, []byte{1, 0x8a, 0, 160}))
	f.Add([]byte{0x92, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0})
	f.Add([]byte{0xa0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 9, 0, 2})
	f.Add([]byte{0x80, 200, 0, 6})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ok := parseRTP(b)
		var p rtp.Packet
		perr := p.Unmarshal(b)
		if ok {
			if classify(b) != kindRTP {
				t.Fatalf("parsed RTP that classify calls %d", classify(b))
			}
			if perr != nil {
				if b[0]&0x10 == 0 { // pion also validates extension contents
					t.Fatalf("we accept, pion rejects: %v", perr)
				}
				return
			}
			if p.PayloadType != h.pt || p.Marker != h.marker || p.SequenceNumber != h.seq || p.Timestamp != h.ts || p.SSRC != h.ssrc {
				t.Fatalf("fields differ: ours %+v, pion %+v", h, p.Header)
			}
		} else if perr == nil && p.Version == 2 && classify(b) == kindRTP {
			t.Fatalf("pion accepts a v2 RTP packet we reject: %x", b)
		}
	})
}

// FuzzRTCP checks the RTCP validator and report parser: no panics, a valid
// compound packet is one pion/rtcp can walk, and the report agrees with
// pion's.
func FuzzRTCP(f *testing.F) {
	f.Add(marshalRTCP(f, testSR, testSDES))
	f.Add(marshalRTCP(f, testRR))
	f.Add(marshalRTCP(f, &rtcp.Goodbye{Sources: []uint32{1}}))
	f.Add(marshalRTCP(f, &rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: 2}))
	f.Add([]byte{0x81, 201, 0, 1, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p rtcpParser
		var rep RTCPReport
		if !validRTCP(b) {
			return
		}
		got := p.parse(b, &rep)
		pkts, err := rtcp.Unmarshal(b)
		if err != nil {
			return // pion is stricter about some bodies (SDES, feedback)
		}
		for _, pkt := range pkts {
			var blocks []rtcp.ReceptionReport
			var ssrc uint32
			switch pk := pkt.(type) {
			case *rtcp.SenderReport:
				blocks, ssrc = pk.Reports, pk.SSRC
			case *rtcp.ReceiverReport:
				blocks, ssrc = pk.Reports, pk.SSRC
			default:
				continue
			}
			if !got || rep.SSRC != ssrc || len(rep.Blocks) != len(blocks) {
				t.Fatalf("parse = %v %+v, pion %+v", got, rep, pkt)
			}
			return
		}
	})
}

// FuzzAcceptRTP feeds arbitrary datagrams from three sources to a leg's
// latching logic: nothing that fails to parse as negotiated RTP may latch
// or be counted as media.
func FuzzAcceptRTP(f *testing.F) {
	f.Add(mediatest.RTP(0, false, 1, 160, 0x1234, make([]byte, 160)), uint8(0))
	f.Add(mediatest.RTP(101, true, 2, 320, 0x1234, []byte{1, 0x8a, 0, 160}), uint8(1))
	f.Add(mediatest.RTP(99, false, 3, 480, 0x1234, nil), uint8(2))
	f.Add([]byte{0x80, 200, 0, 6, 1, 2, 3, 4}, uint8(1))
	clock := mediatest.NewClock()
	pool := testPool(f, "127.77.9.1", 42000, 42001)
	sdp := netip.MustParseAddrPort("127.0.0.2:4000")
	sources := []netip.AddrPort{sdp, netip.MustParseAddrPort("127.0.0.2:4002"), netip.MustParseAddrPort("10.0.0.1:5000")}
	f.Fuzz(func(t *testing.T, b []byte, who uint8) {
		pp, err := pool.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		l, err := NewLeg(pp, LegConfig{Remote: Remote{RTP: sdp, PayloadTypes: pcmuDTMF}, Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		l.start()
		_, _, _, ok := l.acceptRTP(b, sources[int(who)%len(sources)], clock.Now())
		h, valid := parseRTP(b)
		_, negotiated := l.state.Load().pt.lookup(h.pt)
		s := l.Stats()
		if ok != (valid && negotiated) {
			t.Fatalf("accepted = %v for valid=%v negotiated=%v", ok, valid, negotiated)
		}
		if !ok && (s.Latched.IsValid() || s.PacketsIn != 0) {
			t.Fatalf("a rejected packet latched or counted: %+v", s)
		}
		if ok && s.Latched != sources[int(who)%len(sources)] {
			t.Fatalf("latched %v", s.Latched)
		}
	})
}
