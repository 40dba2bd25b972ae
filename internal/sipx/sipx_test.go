package sipx

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func testGate() *Gate {
	return &Gate{
		Limits: Limits{MaxMessageSize: 4096, MaxHeaders: 30, MaxVia: 5},
		Fast: map[sip.RequestMethod]Handler{sip.OPTIONS: func(r *sip.Request) *sip.Response {
			return sip.NewResponseFromRequest(r, 200, "OK", nil)
		}},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

var from = netip.MustParseAddrPort("127.0.0.1:40000")

func msg(lines ...string) []byte {
	return []byte(strings.Join(lines, "\r\n") + "\r\n\r\n")
}

const (
	via  = "Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK1;rport"
	fr   = "From: <sip:alice@kaopu.test>;tag=1"
	to   = "To: <sip:alice@kaopu.test>"
	cid  = "Call-ID: abc@127.0.0.1"
	cseq = "CSeq: 1 OPTIONS"
	mf   = "Max-Forwards: 70"
	rl   = "OPTIONS sip:kaopu.test SIP/2.0"
	cl   = "Content-Length: 0"
)

func TestProcess(t *testing.T) {
	tests := []struct {
		name   string
		data   []byte
		code   int // 0: no answer
		reason string
		pass   bool
	}{
		{"valid options answered", msg(rl, via, fr, to, cid, cseq, mf, cl), 200, "OK", false},
		{"missing call-id", msg(rl, via, fr, to, cseq, mf, cl), 400, "Missing Call-ID", false},
		{"missing cseq", msg(rl, via, fr, to, cid, mf, cl), 400, "Missing CSeq", false},
		{"missing from", msg(rl, via, to, cid, cseq, mf, cl), 400, "Missing From", false},
		{"missing to", msg(rl, via, fr, cid, cseq, mf, cl), 400, "Missing To", false},
		{"bad cseq", msg(rl, via, fr, to, cid, "CSeq: abc OPTIONS", mf, cl), 400, "Invalid CSeq Header", false},
		{"cseq method mismatch", msg(rl, via, fr, to, cid, "CSeq: 1 INVITE", mf, cl), 400, "CSeq Method Mismatch", false},
		{"negative content-length", msg(rl, via, fr, to, cid, cseq, mf, "Content-Length: -5"), 400, "Invalid Content-Length Header", false},
		{"content-length beyond body", msg(rl, via, fr, to, cid, cseq, mf, "Content-Length: 500"), 400, "Invalid Content-Length", false},
		{"bad max-forwards", msg(rl, via, fr, to, cid, cseq, "Max-Forwards: lots", cl), 400, "Invalid Max-Forwards Header", false},
		{"zero max-forwards on register", msg("REGISTER sip:kaopu.test SIP/2.0", via, fr, to, cid, "CSeq: 1 REGISTER", "Max-Forwards: 0", cl), 483, "Too Many Hops", false},
		{"wrong version", msg("OPTIONS sip:kaopu.test SIP/3.0", via, fr, to, cid, cseq, mf, cl), 505, "Version Not Supported", false},
		{"unsupported scheme", msg("OPTIONS http://kaopu.test SIP/2.0", via, fr, to, cid, cseq, mf, cl), 416, "Unsupported URI Scheme", false},
		{"too many via", msg(rl, via, via, via, via, via, via, fr, to, cid, cseq, mf, cl), 400, "Too Many Via Headers", false},
		{"garbage dropped", []byte("hello there\r\n\r\n"), 0, "", false},
		{"missing via dropped", msg(rl, fr, to, cid, cseq, mf, cl), 0, "", false},
		{"keepalive ignored", []byte("\r\n\r\n"), 0, "", false},
		{"oversize refused", msg(rl, via, fr, to, cid, cseq, mf, "X-Pad: "+strings.Repeat("a", 5000), cl), 513, "Message Too Large", false},
		{"invite passed to transactions", msg("INVITE sip:bob@kaopu.test SIP/2.0", via, fr, to, cid, "CSeq: 1 INVITE", mf, cl), 0, "", true},
		{"response passed", msg("SIP/2.0 200 OK", via, fr, to, cid, cseq, cl), 0, "", true},
		{"in-dialog options passed", msg(rl, via, fr, to+";tag=x", cid, cseq, mf, cl), 0, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := testGate()
			res, pass := g.Process(tc.data, from)
			if pass != tc.pass {
				t.Fatalf("pass = %v, want %v", pass, tc.pass)
			}
			if tc.code == 0 {
				if res != nil {
					t.Fatalf("answered %d %s, want no answer", res.StatusCode, res.Reason)
				}
				return
			}
			if res == nil {
				t.Fatalf("no answer, want %d %s", tc.code, tc.reason)
			}
			if res.StatusCode != tc.code || res.Reason != tc.reason {
				t.Fatalf("got %d %s, want %d %s", res.StatusCode, res.Reason, tc.code, tc.reason)
			}
			if v := res.Via(); v == nil || v.Params.GetOr("rport", "") != "40000" {
				t.Fatalf("response Via lacks rport=40000: %v", res.Via())
			}
		})
	}
}

func TestBannedDroppedOrRejected(t *testing.T) {
	g := testGate()
	g.Banned = func(a netip.Addr) bool { return a == from.Addr() }
	if res, pass := g.Process(msg(rl, via, fr, to, cid, cseq, mf, cl), from); res != nil || pass {
		t.Fatal("banned source answered or passed")
	}
	g.RejectBanned = true
	if res, _ := g.Process(msg(rl, via, fr, to, cid, cseq, mf, cl), from); res == nil || res.StatusCode != 403 {
		t.Fatalf("banned source with reject: %v, want 403", res)
	}
}

func TestReceivedAdded(t *testing.T) {
	g := testGate()
	data := msg(rl, "Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK2", fr, to, cid, cseq, mf, cl)
	res, _ := g.Process(data, from)
	if got := res.Via().Params.GetOr("received", ""); got != "127.0.0.1" {
		t.Fatalf("received = %q, want 127.0.0.1 (RFC 3261 §18.2.1)", got)
	}
}

// FuzzProcess feeds arbitrary datagrams through the edge: it must never
// panic, and any answer must be a well-formed response.
func FuzzProcess(f *testing.F) {
	f.Add(msg(rl, via, fr, to, cid, cseq, mf, cl))
	f.Add(msg("REGISTER sip:kaopu.test SIP/2.0", via, fr, to, cid, "CSeq: 1 REGISTER", mf, "Contact: <sip:a@1.2.3.4>;expires=60", cl))
	f.Add(msg(rl, via, fr, to, cid, "CSeq: 99999999999 OPTIONS", mf, cl))
	f.Add(msg("INVITE sip:bob@kaopu.test SIP/2.0", via, fr, to, cid, "CSeq: 1 INVITE", mf, "Content-Type: application/sdp", "Content-Length: 4", "", "v=0"))
	f.Add([]byte("SIP/2.0 200 OK\r\n\r\n"))
	g := testGate()
	f.Fuzz(func(t *testing.T, data []byte) {
		res, _ := g.Process(data, from)
		if res == nil {
			return
		}
		if res.StatusCode < 100 || res.StatusCode > 699 {
			t.Fatalf("bad status %d", res.StatusCode)
		}
		if _, err := sip.ParseMessage([]byte(res.String())); err != nil {
			t.Fatalf("answer does not parse: %v\n%s", err, res.String())
		}
	})
}

func TestScannerDroppedAndReported(t *testing.T) {
	g := testGate()
	var got []string
	g.OnScanner = func(a netip.Addr, tool string) { got = append(got, a.String()+" "+tool) }
	for _, ua := range []string{"User-Agent: friendly-scanner", "User-Agent: sipcli/v1.8", "User-Agent: SIPVicious 0.3"} {
		if res, pass := g.Process(msg(rl, via, fr, to, cid, cseq, mf, ua, cl), from); res != nil || pass {
			t.Fatalf("%s: answered or passed", ua)
		}
	}
	want := []string{"127.0.0.1 friendly-scanner", "127.0.0.1 sipcli", "127.0.0.1 sipvicious"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("scanners reported %v, want %v", got, want)
	}
	// A phone's User-Agent is served as before.
	if res, pass := g.Process(msg(rl, via, fr, to, cid, cseq, mf, "User-Agent: Linphone/5.2", cl), from); res == nil && !pass {
		t.Fatal("a phone was dropped")
	}
	if n := g.Stats.Scanners.Load(); n != 3 {
		t.Fatalf("Stats.Scanners = %d, want 3", n)
	}
}
