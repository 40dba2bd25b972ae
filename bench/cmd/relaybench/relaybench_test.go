package main

import (
	"context"
	"math"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestBencodeRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   any
		want string
	}{
		{"string", "spam", "4:spam"},
		{"empty string", "", "0:"},
		{"integer", 42, "i42e"},
		{"negative", -3, "i-3e"},
		{"zero", 0, "i0e"},
		{"list", []any{"spam", 7}, "l4:spami7ee"},
		{"dictionary with sorted keys", map[string]any{"sdp": "v=0", "command": "offer", "call-id": "x"},
			"d7:call-id1:x7:command5:offer3:sdp3:v=0e"},
		{"nested", map[string]any{"replace": []any{"origin", "session-connection"}},
			"d7:replacel6:origin18:session-connectionee"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := bencode(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("bencode = %q, want %q", got, tc.want)
			}
			back, err := bdecode(got)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, normalise(tc.in)) {
				t.Errorf("decoded %#v, want %#v", back, normalise(tc.in))
			}
		})
	}
}

// normalise turns encoder inputs into what the decoder returns.
func normalise(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case []any:
		out := []any{}
		for _, e := range x {
			out = append(out, normalise(e))
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = normalise(e)
		}
		return out
	}
	return v
}

func TestBdecodeRejects(t *testing.T) {
	for _, in := range []string{
		"", "i42", "ie", "i-0e", "i03e", "5:abc", "-1:a", "03:abc", "l4:spam", "d3:key", "di1e3:vale",
		"4:spamX", "x", strings.Repeat("l", 40) + strings.Repeat("e", 40),
	} {
		if v, err := bdecode([]byte(in)); err == nil {
			t.Errorf("bdecode(%q) = %#v, want an error", in, v)
		}
	}
}

func TestNGReply(t *testing.T) {
	// An rtpengine answer to offer, as it sends it (cookie, space, dictionary).
	reply := "a1b2 d3:sdp25:v=0\r\nc=IN IP4 127.0.0.1\r\n6:result2:oke"
	cookie, d, err := parseNGReply([]byte(reply))
	if err != nil {
		t.Fatal(err)
	}
	if cookie != "a1b2" || d["result"] != "ok" || d["sdp"] != "v=0\r\nc=IN IP4 127.0.0.1\r\n" {
		t.Errorf("cookie %q, dict %#v", cookie, d)
	}
	for _, bad := range []string{"nocookie", " d6:result2:oke", "c1 l2:oke", "c1 d6:result2:ok"} {
		if _, _, err := parseNGReply([]byte(bad)); err == nil {
			t.Errorf("parseNGReply(%q): no error", bad)
		}
	}
	msg, err := ngMessage("c9", map[string]any{"command": "ping"})
	if err != nil || string(msg) != "c9 d7:command4:pinge" {
		t.Errorf("ngMessage = %q, %v", msg, err)
	}
}

// The ng client matches replies to requests by cookie and resends
// unanswered ones.
func TestNGClient(t *testing.T) {
	srv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		buf := make([]byte, 2048)
		seen := 0
		for {
			n, from, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if seen++; seen == 1 {
				continue // lose the first request: the client must resend
			}
			cookie, _, _ := strings.Cut(string(buf[:n]), " ")
			srv.WriteToUDPAddrPort([]byte("other d6:result5:wrong"), from) // not ours
			srv.WriteToUDPAddrPort([]byte(cookie+" d6:result4:ponge"), from)
		}
	}()
	c, err := newNGClient(srv.LocalAddr().(*net.UDPAddr).AddrPort())
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := c.do(ctx, map[string]any{"command": "ping"})
	if err != nil || d["result"] != "pong" {
		t.Fatalf("ping: %#v, %v", d, err)
	}
	if _, err := c.command(ctx, map[string]any{"command": "ping"}); err == nil {
		t.Error("command: a result other than ok should be an error")
	}
}

func TestRxStreamLossAndJitter(t *testing.T) {
	const ms = int64(time.Millisecond)
	t.Run("steady stream, no loss, no jitter", func(t *testing.T) {
		var s rxStream
		a := s.mark()
		seq, ts := uint16(65530), uint32(math.MaxUint32-500) // both wrap
		for i := range 100 {
			s.packet(rtpHead{seq: seq, ts: ts, ssrc: 1}, int64(i)*20*ms, 0)
			seq++
			ts += tsStep
		}
		exp, rec := windowLoss(a, s.mark())
		if exp != 100 || rec != 100 {
			t.Errorf("expected %d received %d, want 100/100", exp, rec)
		}
		if s.jitterMs() > 1e-9 {
			t.Errorf("jitter %.6f ms, want 0", s.jitterMs())
		}
	})
	t.Run("gaps and reordering", func(t *testing.T) {
		var s rxStream
		at := int64(0)
		send := func(seq uint16) {
			s.packet(rtpHead{seq: seq, ts: uint32(seq) * tsStep, ssrc: 7}, at, 0)
			at += 20 * ms
		}
		send(10)
		a := s.mark()
		for _, q := range []uint16{11, 13, 12, 16, 17} { // 14 and 15 lost, 12 late
			send(q)
		}
		exp, rec := windowLoss(a, s.mark())
		if exp != 7 || rec != 5 {
			t.Errorf("expected %d received %d, want 7/5", exp, rec)
		}
	})
	t.Run("RFC 3550 jitter of a constant 1 ms alternation", func(t *testing.T) {
		// Every other packet 1 ms late: |D| is 1 ms (8 units) each time,
		// and J converges to it.
		var s rxStream
		for i := range 2000 {
			late := int64(i%2) * ms
			s.packet(rtpHead{seq: uint16(i), ts: uint32(i) * tsStep, ssrc: 3}, int64(i)*20*ms+late, 0)
		}
		if math.Abs(s.jitterMs()-1) > 1e-6 {
			t.Errorf("jitter %.6f ms, want 1", s.jitterMs())
		}
	})
	t.Run("jitter samples every N packets", func(t *testing.T) {
		var s rxStream
		due := 0
		for i := range 150 {
			if s.packet(rtpHead{seq: uint16(i), ssrc: 3}, int64(i)*20*ms, 50) {
				due++
			}
		}
		if due != 3 {
			t.Errorf("%d samples due, want 3", due)
		}
	})
	t.Run("stream that starts inside the window", func(t *testing.T) {
		var s rxStream
		a := s.mark()
		for _, q := range []uint16{100, 101, 103} {
			s.packet(rtpHead{seq: q, ssrc: 9}, 0, 0)
		}
		exp, rec := windowLoss(a, s.mark())
		if exp != 4 || rec != 3 {
			t.Errorf("expected %d received %d, want 4/3", exp, rec)
		}
	})
}

func TestRTPHeader(t *testing.T) {
	b := make([]byte, packetSize)
	putRTPHead(b, 8, true, 0xbeef, 0xdeadbeef, 0x01020304)
	h, ok := parseRTPHead(b)
	if !ok || h != (rtpHead{pt: 8, seq: 0xbeef, ts: 0xdeadbeef, ssrc: 0x01020304}) || b[1]&0x80 == 0 {
		t.Errorf("parsed %+v %v from % x", h, ok, b[:12])
	}
	if _, ok := parseRTPHead(b[:11]); ok {
		t.Error("11 bytes parsed as RTP")
	}
	b[0] = 0x40
	if _, ok := parseRTPHead(b); ok {
		t.Error("version 1 parsed as RTP")
	}
}

func TestDiffWindow(t *testing.T) {
	a := []legMark{
		{rx: rxMark{started: true, baseExt: 1, maxExt: 100, received: 100}, sent: 100},
		{rx: rxMark{started: true, baseExt: 1, maxExt: 100, received: 100}, sent: 100},
	}
	b := []legMark{
		{rx: rxMark{started: true, baseExt: 1, maxExt: 600, received: 599}, sent: 600},
		{rx: rxMark{started: true, baseExt: 1, maxExt: 100, received: 100}, sent: 600}, // heard nothing
		{rx: rxMark{started: true, baseExt: 50, maxExt: 59, received: 10}, sent: 10},   // new in the window
	}
	w := diffWindow(a, b)
	if w.streams != 3 || w.expected != 510 || w.received != 509 || w.lost != 1 || w.dead != 1 || w.sent != 1010 {
		t.Errorf("window %+v", w)
	}
	if got := w.lossPct(); math.Abs(got-100.0/510) > 1e-9 {
		t.Errorf("lossPct %.4f", got)
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	for _, c := range []struct{ p, want float64 }{{50, 5}, {99, 10}, {100, 10}, {10, 1}, {0, 1}} {
		if got := percentile(append([]float64(nil), xs...), c.p); got != c.want {
			t.Errorf("p%.0f = %v, want %v", c.p, got, c.want)
		}
	}
	if !math.IsNaN(percentile(nil, 99)) {
		t.Error("percentile of nothing is not NaN")
	}
}

func TestParseSIP(t *testing.T) {
	raw := "SIP/2.0 407 Proxy Authentication Required\r\n" +
		"v: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabc;rport=5070\r\n" +
		"From: <sip:u1@bench.test>;tag=f1\r\n" +
		"t: <sip:c1@127.0.0.1:5080>;tag=t9\r\n" +
		"i: call-1@relaybench\r\n" +
		"CSeq: 1 INVITE\r\n" +
		"Proxy-Authenticate: Digest realm=\"bench.test\", nonce=\"n,1\", algorithm=SHA-256, qop=\"auth\"\r\n" +
		"Proxy-Authenticate: Digest realm=\"bench.test\",\r\n nonce=\"n2\", algorithm=MD5, qop=\"auth\"\r\n" +
		"Record-Route: <sip:127.0.0.1:5060;lr>, <sip:10.0.0.1;lr>\r\n" +
		"l: 4\r\n\r\nbodyEXTRA"
	m, err := parseSIP([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if m.status != 407 || m.get("Call-ID") != "call-1@relaybench" || tagOf(m.get("To")) != "t9" || tagOf(m.get("From")) != "f1" {
		t.Errorf("parsed %+v", m)
	}
	if n, meth := m.cseq(); n != 1 || meth != "INVITE" {
		t.Errorf("CSeq %d %s", n, meth)
	}
	if string(m.body) != "body" {
		t.Errorf("body %q", m.body)
	}
	if rr := m.all("Record-Route"); len(rr) != 2 || rr[1] != "<sip:10.0.0.1;lr>" {
		t.Errorf("Record-Route %q", rr)
	}
	ch, ok := pickMD5(m.values("Proxy-Authenticate"))
	if p, _ := digestParams(ch); !ok || p["nonce"] != "n2" {
		t.Errorf("MD5 challenge %q", ch)
	}
	r := response(&sipMsg{method: "INVITE", uri: "sip:c1@x", hdrs: m.hdrs}, 200, "OK", "mytag")
	if tagOf(r.get("To")) != "t9" || r.get("Via") != m.get("Via") || !strings.HasPrefix(r.String(), "SIP/2.0 200 OK\r\n") {
		t.Errorf("response:\n%s", r)
	}
	for _, bad := range []string{"INVITE sip:x SIP/2.0\r\n", "SIP/2.0 99 Low\r\n\r\n", "INVITE sip:x\r\n\r\n", "SIP/2.0 200 OK\r\nl: 10\r\n\r\nshort"} {
		if _, err := parseSIP([]byte(bad)); err == nil {
			t.Errorf("parseSIP(%q): no error", bad)
		}
	}
}

// RFC 2617 §3.5's example, computed by digestAnswer.
func TestDigestAnswerRFC2617(t *testing.T) {
	ch := `Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"`
	got, err := digestAnswer(ch, "Mufasa", "Circle Of Life", "GET", "/dir/index.html", "0a4f113b")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := digestParams(got)
	if p["response"] != "6629fae49393a05397450978507c4ef1" || p["nc"] != "00000001" || p["opaque"] != "5ccc069c403ebaf9f0171e9517f40e41" {
		t.Errorf("answer %s", got)
	}
	if _, err := digestAnswer(`Digest realm="r", nonce="n", algorithm=SHA-256`, "u", "p", "INVITE", "sip:x", "c"); err == nil {
		t.Error("SHA-256 challenge answered with MD5")
	}
}

func TestSDPMedia(t *testing.T) {
	for _, tc := range []struct {
		name, sdp string
		want      string
	}{
		{"session c=", "v=0\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 20000 RTP/AVP 0\r\n", "127.0.0.1:20000"},
		{"media c= wins", "v=0\r\nc=IN IP4 10.0.0.1\r\nm=video 30000 RTP/AVP 96\r\nc=IN IP4 10.0.0.3\r\nm=audio 20002 RTP/AVP 0\r\nc=IN IP4 10.0.0.2\r\n", "10.0.0.2:20002"},
		{"our own offer", string(offerSDP(netip.MustParseAddrPort("127.0.0.1:41000"), 1)), "127.0.0.1:41000"},
	} {
		got, err := sdpMedia([]byte(tc.sdp))
		if err != nil || got.String() != tc.want {
			t.Errorf("%s: %v, %v; want %s", tc.name, got, err, tc.want)
		}
	}
	for _, bad := range []string{"v=0\r\nm=audio 1 RTP/AVP 0\r\n", "c=IN IP4 1.2.3.4\r\nm=audio 0x RTP/AVP 0\r\n", "c=IN IP4 nope\r\nm=audio 5 RTP/AVP 0\r\n"} {
		if a, err := sdpMedia([]byte(bad)); err == nil {
			t.Errorf("sdpMedia(%q) = %v, want an error", bad, a)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and parentheses.
	stat := "1234 (kaopu (x) y) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 100 1000000 500"
	ticks, pg, err := parseStatCPU([]byte(stat))
	if err != nil || ticks != 325 || pg != 1234 {
		t.Errorf("ticks %d pgrp %d err %v", ticks, pg, err)
	}
	if _, _, err := parseStatCPU([]byte("1 (x) S 1")); err == nil {
		t.Error("short stat parsed")
	}
}

func TestParseMetricsAndRange(t *testing.T) {
	m := parseMetrics("# HELP go_goroutines G.\n# TYPE go_goroutines gauge\ngo_goroutines 25\ngo_memstats_heap_inuse_bytes 1.5e+07\nlabelled{a=\"b\"} 3\n")
	if m["go_goroutines"] != 25 || m["go_memstats_heap_inuse_bytes"] != 1.5e7 || len(m) != 2 {
		t.Errorf("metrics %v", m)
	}
	if lo, hi, err := parseRange("20000-29999"); err != nil || lo != 20000 || hi != 29999 {
		t.Errorf("range %d-%d %v", lo, hi, err)
	}
	for _, bad := range []string{"20000", "3000-2000", "80-90", "1-x"} {
		if _, _, err := parseRange(bad); err == nil {
			t.Errorf("parseRange(%q): no error", bad)
		}
	}
}

// FuzzBdecode: no panic, and whatever decodes encodes back to the same
// bytes (bencode has one encoding per value).
func FuzzBdecode(f *testing.F) {
	for _, s := range []string{"d6:result2:oke", "l4:spami-3ee", "i0e", "0:"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := bdecode(b)
		if err != nil {
			return
		}
		back, err := bencode(v)
		if err != nil {
			t.Fatalf("re-encode %#v: %v", v, err)
		}
		if string(back) != string(b) {
			// Unsorted dictionary keys decode but re-encode sorted.
			if _, err := bdecode(back); err != nil {
				t.Fatalf("re-encoded %q does not decode: %v", back, err)
			}
		}
	})
}

func FuzzParseSIP(f *testing.F) {
	f.Add([]byte("SIP/2.0 200 OK\r\nCSeq: 1 INVITE\r\nl: 0\r\n\r\n"))
	f.Add([]byte("INVITE sip:a@b SIP/2.0\r\nTo: <sip:a@b>;tag=x\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseSIP(b)
		if err != nil {
			return
		}
		m.cseq()
		tagOf(m.get("To"))
		m.all("Record-Route")
		_ = m.String()
	})
}
