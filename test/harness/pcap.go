package harness

import (
	"encoding/binary"
	"math"
	"os"
	"time"
)

// DTMFPcap writes a pcap file (Ethernet, IPv4, UDP) of RTP telephone-events
// (RFC 4733, payload type pt) keying digits the way phones do: for each
// digit three 20 ms updates, then the end packet three times, all with the
// digit's start timestamp, then 100 ms of nothing. sipp's play_pcap_audio
// sends the RTP of such a file unchanged (sequence numbers, timestamps and
// SSRC as written) from its media port to the peer's, paced by the pcap
// times: files played one after another in a call must use different
// timestamp ranges (startTS), or the receiver takes their digits for
// retransmissions. It returns how long the file plays.
func DTMFPcap(path, digits string, pt uint8, startTS uint32, seq uint16) (time.Duration, error) {
	const events = "0123456789*#ABCD"
	b := make([]byte, 0, 4096)
	le32 := func(v uint32) { b = binary.LittleEndian.AppendUint32(b, v) }
	le16 := func(v uint16) { b = binary.LittleEndian.AppendUint16(b, v) }
	le32(0xa1b2c3d4) // pcap magic, microsecond times
	le16(2)
	le16(4)
	le32(0)
	le32(0)
	le32(65535)
	le32(1) // LINKTYPE_ETHERNET
	at := time.Duration(0)
	ts := startTS
	for _, d := range digits {
		code := -1
		for i, e := range events {
			if e == d {
				code = i
			}
		}
		if code < 0 {
			continue
		}
		for i := range 6 {
			end := i >= 3
			dur := uint16(160 * min(i+1, 4))
			flags := byte(10)
			if end {
				flags |= 0x80
			}
			rtp := []byte{0x80, pt, byte(seq >> 8), byte(seq), 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78, byte(code), flags, byte(dur >> 8), byte(dur)}
			if i == 0 {
				rtp[1] |= 0x80 // marker on an event's first packet (RFC 4733 §2.5.1.3)
			}
			binary.BigEndian.PutUint32(rtp[4:], ts)
			seq++
			frame := udpFrame(rtp)
			le32(uint32(at / time.Second))
			le32(uint32(at % time.Second / time.Microsecond))
			le32(uint32(len(frame)))
			le32(uint32(len(frame)))
			b = append(b, frame...)
			at += 20 * time.Millisecond
		}
		ts += 160 * 10 // the next event starts 200 ms of audio later
		at += 80 * time.Millisecond
	}
	return at, os.WriteFile(path, b, 0o644)
}

// udpFrame wraps payload in Ethernet, IPv4 (checksummed) and UDP headers,
// 127.0.0.1:4000 to 127.0.0.1:4002 (sipp replaces the addresses).
func udpFrame(payload []byte) []byte {
	f := make([]byte, 14+20+8, 14+20+8+len(payload))
	f[12], f[13] = 0x08, 0x00 // IPv4
	ip := f[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	ip[8] = 64 // TTL
	ip[9] = 17 // UDP
	copy(ip[12:], []byte{127, 0, 0, 1})
	copy(ip[16:], []byte{127, 0, 0, 1})
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	udp := f[34:42]
	binary.BigEndian.PutUint16(udp[0:], 4000)
	binary.BigEndian.PutUint16(udp[2:], 4002)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	return append(f, payload...)
}

// TonePcap writes a pcap file (as DTMFPcap's) of RTP PCMU audio (payload
// type 0, 20 ms packets) holding d of a freq Hz sine at amplitude (of
// 32767), for sipp's play_pcap_audio: a caller that talks. startTS and seq
// as for DTMFPcap. It returns how long the file plays.
func TonePcap(path string, freq float64, d time.Duration, amplitude float64, startTS uint32, seq uint16) (time.Duration, error) {
	const frame = 160 // 20 ms at 8 kHz
	b := make([]byte, 0, 24+int(d/(20*time.Millisecond))*(16+42+12+frame))
	le32 := func(v uint32) { b = binary.LittleEndian.AppendUint32(b, v) }
	le16 := func(v uint16) { b = binary.LittleEndian.AppendUint16(b, v) }
	le32(0xa1b2c3d4)
	le16(2)
	le16(4)
	le32(0)
	le32(0)
	le32(65535)
	le32(1)
	n := int(d / (20 * time.Millisecond))
	at := time.Duration(0)
	ts := startTS
	i := 0
	for p := range n {
		rtp := make([]byte, 12, 12+frame)
		rtp[0], rtp[1] = 0x80, 0
		if p == 0 {
			rtp[1] |= 0x80
		}
		binary.BigEndian.PutUint16(rtp[2:], seq)
		binary.BigEndian.PutUint32(rtp[4:], ts)
		copy(rtp[8:], []byte{0x12, 0x34, 0x56, 0x79})
		for range frame {
			s := amplitude * math.Sin(2*math.Pi*freq*float64(i)/8000)
			rtp = append(rtp, ulaw(int16(s)))
			i++
		}
		seq++
		ts += frame
		f := udpFrame(rtp)
		le32(uint32(at / time.Second))
		le32(uint32(at % time.Second / time.Microsecond))
		le32(uint32(len(f)))
		le32(uint32(len(f)))
		b = append(b, f...)
		at += 20 * time.Millisecond
	}
	return at, os.WriteFile(path, b, 0o644)
}

// ulaw encodes one sample in G.711 mu-law (ITU-T G.711: bias 132, clip
// at 32635, segment and mantissa inverted).
func ulaw(s int16) byte {
	const bias, clip = 0x84, 32635
	v := int(s)
	sign := 0
	if v < 0 {
		v, sign = -v, 0x80
	}
	v = min(v, clip) + bias
	exp := 7
	for mask := 0x4000; v&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (v >> (exp + 3)) & 0x0f
	return ^byte(sign | exp<<4 | mant)
}
