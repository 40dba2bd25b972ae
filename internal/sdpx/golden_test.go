package sdpx

import (
	"bytes"
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/rewritten/*.sdp from the current output")

// server is the address the tests rewrite toward: the server's public IP.
var server = netip.MustParseAddr("203.0.113.5")

// load reads a golden SDP and gives it CRLF line ends, as peers send it.
func load(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return crlf(b)
}

func crlf(b []byte) []byte {
	return bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
}

func numbers(pts []PT) []uint8 {
	n := make([]uint8, len(pts))
	for i, p := range pts {
		n[i] = p.Number
	}
	return n
}

// TestGolden parses what real peers send, negotiates, rewrites toward the
// other leg, compares with testdata/rewritten, and parses the result again.
func TestGolden(t *testing.T) {
	tests := []struct {
		file       string
		addr       string
		port       int
		proto      string
		pts        []uint8
		dir        Direction // as written
		effective  Direction // after RFC 2543 hold
		media      int
		rtcp       string // Remote's RTCP address
		ice        bool
		crypto     int
		negotiated []uint8
		negErr     error
	}{
		{file: "baresip_offer.sdp", addr: "127.0.0.1", port: 13484, proto: "RTP/AVP",
			pts: []uint8{96, 9, 0, 8, 101}, media: 1, rtcp: "127.0.0.1:13485",
			negotiated: []uint8{96, 9, 0, 8, 101}},
		{file: "baresip_answer.sdp", addr: "127.0.0.1", port: 10874, proto: "RTP/AVP",
			pts: []uint8{96, 101}, media: 1, rtcp: "127.0.0.1:10875",
			negotiated: []uint8{96, 101}},
		{file: "baresip_srtp_besteffort.sdp", addr: "192.168.10.20", port: 11560, proto: "RTP/AVP",
			pts: []uint8{0, 8, 101}, media: 1, rtcp: "192.168.10.20:11561", crypto: 2,
			negotiated: []uint8{0, 8, 101}},
		{file: "baresip_ipv6.sdp", addr: "2001:db8:10::20", port: 12288, proto: "RTP/AVP",
			pts: []uint8{0, 8, 101}, media: 1, rtcp: "[2001:db8:10::20]:12289",
			negotiated: []uint8{0, 8, 101}},
		{file: "sipp_uac.sdp", addr: "127.0.0.1", port: 6000, proto: "RTP/AVP",
			pts: []uint8{0}, media: 1, rtcp: "127.0.0.1:6001", negotiated: []uint8{0}},
		{file: "sipp_uas.sdp", addr: "127.0.0.1", port: 6000, proto: "RTP/AVP",
			pts: []uint8{0}, media: 1, rtcp: "127.0.0.1:6001", negotiated: []uint8{0}},
		{file: "sipp_uac_pcap.sdp", addr: "127.0.0.1", port: 6000, proto: "RTP/AVP",
			pts: []uint8{8, 101}, media: 1, rtcp: "127.0.0.1:6001", negotiated: []uint8{8, 101}},
		// speex and G.729 are dropped, and so is telephone-event/16000,
		// which goes with no kept codec; /48000 goes with opus.
		{file: "linphone_offer.sdp", addr: "192.168.1.20", port: 7078, proto: "RTP/AVP",
			pts: []uint8{96, 97, 98, 0, 8, 18, 101, 99, 100}, media: 2, rtcp: "192.168.1.20:7079", ice: true,
			negotiated: []uint8{96, 0, 8, 101, 100}},
		{file: "chrome_offer.sdp", addr: "0.0.0.0", port: 9, proto: "UDP/TLS/RTP/SAVPF",
			pts: []uint8{111, 63, 9, 0, 8, 13, 110, 126}, media: 1, rtcp: "0.0.0.0:9", ice: true,
			negErr: ErrUnsupported},
		{file: "asterisk_offer.sdp", addr: "192.0.2.10", port: 14538, proto: "RTP/AVP",
			pts: []uint8{0, 8, 3, 9, 101}, media: 1, rtcp: "192.0.2.10:14539",
			negotiated: []uint8{0, 8, 9, 101}},
		{file: "asterisk_hold.sdp", addr: "192.0.2.10", port: 14538, proto: "RTP/AVP",
			pts: []uint8{0, 8, 3, 9, 101}, dir: SendOnly, effective: SendOnly, media: 1, rtcp: "192.0.2.10:14539",
			negotiated: []uint8{0, 8, 9, 101}},
		{file: "asterisk_chansip_answer.sdp", addr: "198.51.100.4", port: 17846, proto: "RTP/AVP",
			pts: []uint8{8, 101}, dir: RecvOnly, effective: RecvOnly, media: 1, rtcp: "198.51.100.4:17847",
			negotiated: []uint8{8, 101}},
		{file: "asterisk_srtp.sdp", addr: "192.0.2.10", port: 16204, proto: "RTP/SAVP",
			pts: []uint8{0, 8, 101}, media: 1, rtcp: "192.0.2.10:16205", crypto: 1,
			negotiated: []uint8{0, 8, 101}},
		{file: "oldhold_c0.sdp", addr: "0.0.0.0", port: 51372, proto: "RTP/AVP",
			pts: []uint8{0, 101}, effective: SendOnly, media: 1, rtcp: "0.0.0.0:51373",
			negotiated: []uint8{0, 101}},
		{file: "cisco_g729.sdp", addr: "192.0.2.77", port: 19612, proto: "RTP/AVP",
			pts: []uint8{18, 3, 101}, media: 1, rtcp: "192.0.2.77:19613",
			negErr: ErrNoCommonCodec},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".sdp"), func(t *testing.T) {
			body := load(t, tt.file)
			s, err := Parse(body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			// LF-only line ends (sipp scenario files, some phones) read the same.
			lf, err := Parse(bytes.ReplaceAll(body, []byte("\r\n"), []byte("\n")))
			if err != nil || !reflect.DeepEqual(s, lf) {
				t.Errorf("LF-only body parsed differently: %v\n%+v\n%+v", err, s, lf)
			}

			st := &s.Audio
			if st.Addr != netip.MustParseAddr(tt.addr) || st.Port != tt.port || st.Proto != tt.proto {
				t.Errorf("audio = %v port %d %s, want %s port %d %s", st.Addr, st.Port, st.Proto, tt.addr, tt.port, tt.proto)
			}
			if got := numbers(st.PTs); !reflect.DeepEqual(got, tt.pts) {
				t.Errorf("PTs = %v, want %v", got, tt.pts)
			}
			if st.Direction != tt.dir || st.Effective() != tt.effective {
				t.Errorf("direction %v effective %v, want %v %v", st.Direction, st.Effective(), tt.dir, tt.effective)
			}
			if len(s.Media) != tt.media || st.ICE != tt.ice || len(st.Crypto) != tt.crypto {
				t.Errorf("media %d ice %v crypto %d, want %d %v %d", len(s.Media), st.ICE, len(st.Crypto), tt.media, tt.ice, tt.crypto)
			}
			rtp, rtcp, pts := s.Remote()
			if rtp != netip.AddrPortFrom(st.Addr, uint16(st.Port)) || rtcp.String() != tt.rtcp || !reflect.DeepEqual(pts, st.PTs) {
				t.Errorf("Remote = %v %v %v, want RTCP %s", rtp, rtcp, pts, tt.rtcp)
			}

			codecs, err := Negotiate(s, nil)
			if tt.negErr != nil {
				if !errors.Is(err, tt.negErr) {
					t.Fatalf("Negotiate = %v, want %v", err, tt.negErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Negotiate: %v", err)
			}
			if got := numbers(codecs); !reflect.DeepEqual(got, tt.negotiated) {
				t.Errorf("negotiated %v, want %v", got, tt.negotiated)
			}

			origin := &Origin{SessionID: 4242, Version: 7}
			out, err := Rewrite(s, server, 20000, RewriteOptions{Origin: origin, Codecs: codecs})
			if err != nil {
				t.Fatalf("Rewrite: %v", err)
			}
			compareGolden(t, filepath.Join("testdata", "rewritten", tt.file), out)

			back, err := Parse(out)
			if err != nil {
				t.Fatalf("rewritten SDP does not parse: %v\n%s", err, out)
			}
			checkRewritten(t, s, back, codecs, server, 20000)
			if back.SessionID != 4242 || back.Version != 7 {
				t.Errorf("o= %d %d, want 4242 7", back.SessionID, back.Version)
			}

			// The same SDP again on the same leg keeps the version and the
			// bytes (RFC 3264 §8).
			again, err := Rewrite(back, server, 20000, RewriteOptions{Origin: origin})
			if err != nil || !bytes.Equal(again, out) || origin.Version != 7 {
				t.Errorf("rewrite of the rewrite differs (version %d, %v):\n%s\nwant\n%s", origin.Version, err, again, out)
			}
		})
	}
}

// checkRewritten checks what another leg sees after Rewrite(src, addr, port).
func checkRewritten(t testing.TB, src, back *Session, codecs []PT, addr netip.Addr, port int) {
	t.Helper()
	st := &back.Audio
	wantPort := port
	if src.Audio.Disabled() {
		wantPort = 0
	}
	if st.Addr != addr || st.Port != wantPort {
		t.Errorf("rewritten audio at %v port %d, want %v port %d", st.Addr, st.Port, addr, wantPort)
	}
	if !reflect.DeepEqual(st.PTs, codecs) {
		t.Errorf("rewritten PTs %+v, want %+v", st.PTs, codecs)
	}
	if st.Direction != src.Audio.Effective() {
		t.Errorf("rewritten direction %v, want %v", st.Direction, src.Audio.Effective())
	}
	if st.Ptime != src.Audio.Ptime || st.MaxPtime != src.Audio.MaxPtime {
		t.Errorf("ptime %d/%d, want %d/%d", st.Ptime, st.MaxPtime, src.Audio.Ptime, src.Audio.MaxPtime)
	}
	if st.ICE || st.Fingerprint != "" || st.Setup != "" || st.Crypto != nil || st.RTCPMux || st.RTCP.IsValid() {
		t.Errorf("rewritten SDP kept ICE/DTLS/SDES/rtcp lines: %+v", st)
	}
	if st.Proto != "RTP/AVP" {
		t.Errorf("rewritten transport %s", st.Proto)
	}
	if len(back.Media) != len(src.Media) || st.Index != src.Audio.Index {
		t.Fatalf("rewritten has %d m= lines (audio %d), want %d (audio %d)", len(back.Media), st.Index, len(src.Media), src.Audio.Index)
	}
	for i, m := range back.Media {
		if i != st.Index && (m.Port != 0 || m.Kind != src.Media[i].Kind) {
			t.Errorf("m= line %d = %+v, want %s with port 0", i, m, src.Media[i].Kind)
		}
	}
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		// Stored with LF line ends for readable diffs; compared as CRLF.
		if err := os.WriteFile(path, bytes.ReplaceAll(got, []byte("\r\n"), []byte("\n")), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(crlf(want), got) {
		t.Errorf("rewritten SDP differs from %s:\n%s\nwant\n%s", path, got, crlf(want))
	}
}
