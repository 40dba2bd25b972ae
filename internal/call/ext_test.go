package call

import (
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

func TestParseRAck(t *testing.T) {
	for _, tc := range []struct {
		in         string
		rseq, cseq uint32
		method     sip.RequestMethod
		ok         bool
	}{
		{"776656 1 INVITE", 776656, 1, sip.INVITE, true},
		{"  1   2  invite ", 1, 2, sip.INVITE, true},
		{"1 2", 0, 0, "", false},
		{"x 2 INVITE", 0, 0, "", false},
		{"1 4294967296 INVITE", 0, 0, "", false},
		{"", 0, 0, "", false},
	} {
		rseq, cseq, m, ok := parseRAck(tc.in)
		if rseq != tc.rseq || cseq != tc.cseq || m != tc.method || ok != tc.ok {
			t.Errorf("parseRAck(%q) = %d %d %q %v, want %d %d %q %v", tc.in, rseq, cseq, m, ok, tc.rseq, tc.cseq, tc.method, tc.ok)
		}
	}
}

func TestReliablePrack(t *testing.T) {
	r := &reliable{rseq: 10}
	if _, ok := r.prack("10 1 INVITE", 1); ok {
		t.Fatal("PRACK matched before any reliable 1xx was sent")
	}
	r.rseq, r.acked = 11, make(chan struct{})
	for _, bad := range []string{"10 1 INVITE", "11 2 INVITE", "11 1 BYE", "junk"} {
		if _, ok := r.prack(bad, 1); ok {
			t.Fatalf("PRACK %q matched RSeq 11 of INVITE CSeq 1", bad)
		}
	}
	ack, ok := r.prack("11 1 INVITE", 1)
	if !ok {
		t.Fatal("the right PRACK did not match")
	}
	ack()
	ack() // a retransmitted PRACK must not panic
	if err := r.waitAcked(t.Context(), false); err != nil {
		t.Fatal(err)
	}
}

func TestSessionExpires(t *testing.T) {
	for _, tc := range []struct {
		in        string
		d         time.Duration
		refresher string
		ok        bool
	}{
		{"1800", 1800 * time.Second, "", true},
		{"90;refresher=uac", 90 * time.Second, "uac", true},
		{" 120 ; refresher = UAS ", 120 * time.Second, "uas", true},
		{"0", 0, "", false},
		{"-5", 0, "", false},
		{"90;refresher=both", 0, "", false},
		{"abc", 0, "", false},
	} {
		d, r, ok := sessionExpires(tc.in)
		if d != tc.d || r != tc.refresher || ok != tc.ok {
			t.Errorf("sessionExpires(%q) = %v %q %v, want %v %q %v", tc.in, d, r, ok, tc.d, tc.refresher, tc.ok)
		}
	}
}

func TestAnswerSession(t *testing.T) {
	invite := func(hdrs ...string) *sip.Request {
		req := sip.NewRequest(sip.INVITE, sip.Uri{User: "bob", Host: "kaopu.test"})
		for i := 0; i+1 < len(hdrs); i += 2 {
			req.AppendHeader(sip.NewHeader(hdrs[i], hdrs[i+1]))
		}
		return req
	}
	ok := func(hdrs ...string) *sip.Response {
		res := sip.NewResponse(200, "OK")
		for i := 0; i+1 < len(hdrs); i += 2 {
			res.AppendHeader(sip.NewHeader(hdrs[i], hdrs[i+1]))
		}
		return res
	}
	headers := func(hs []sip.Header) map[string]string {
		m := map[string]string{}
		for _, h := range hs {
			m[h.Name()] = h.Value()
		}
		return m
	}
	// The callee chose: its choice goes to the caller.
	hs, d := answerSession(invite("Supported", "timer", "Session-Expires", "1800"), ok("Session-Expires", "900;refresher=uac"))
	if m := headers(hs); d != 900*time.Second || m["Session-Expires"] != "900;refresher=uac" || m["Require"] != "timer" {
		t.Fatalf("callee's choice: %v %v", m, d)
	}
	hs, d = answerSession(invite("Supported", "timer", "Session-Expires", "1800"), ok("Session-Expires", "1800;refresher=uas"))
	if m := headers(hs); d != 1800*time.Second || m["Require"] != "" {
		t.Fatalf("callee refreshes: %v %v", m, d)
	}
	// The callee does not do timers; the caller asked and supports them.
	hs, d = answerSession(invite("Supported", "100rel, timer", "Session-Expires", "600"), ok())
	if m := headers(hs); d != 600*time.Second || m["Session-Expires"] != "600;refresher=uac" || m["Require"] != "timer" {
		t.Fatalf("server answers for the callee: %v %v", m, d)
	}
	// Neither supports them, or the caller cannot refresh.
	if hs, d = answerSession(invite(), ok()); hs != nil || d != 0 {
		t.Fatalf("no timers: %v %v", hs, d)
	}
	if hs, d = answerSession(invite("Session-Expires", "600"), ok()); hs != nil || d != 0 {
		t.Fatalf("caller without timer support: %v %v", hs, d)
	}
}

func TestCheckSessionExpires(t *testing.T) {
	req := func(se string) *sip.Request {
		r := sip.NewRequest(sip.INVITE, sip.Uri{User: "bob", Host: "kaopu.test"})
		if se != "" {
			r.AppendHeader(sip.NewHeader("Session-Expires", se))
		}
		return r
	}
	if rf := checkSessionExpires(req(""), DefaultMinSE); rf != nil {
		t.Fatalf("no header: %v", rf)
	}
	if rf := checkSessionExpires(req("90"), DefaultMinSE); rf != nil {
		t.Fatalf("90 s: %v", rf)
	}
	if rf := checkSessionExpires(req("60"), DefaultMinSE); rf == nil || rf.code != 422 {
		t.Fatalf("60 s: %v, want 422", rf)
	}
	if rf := checkSessionExpires(req("soon"), DefaultMinSE); rf == nil || rf.code != 400 {
		t.Fatalf("garbage: %v, want 400", rf)
	}
	r := req("90")
	r.AppendHeader(sip.NewHeader("Min-SE", "120"))
	if h := minSEHeader(r, DefaultMinSE); h.Value() != "120" {
		t.Fatalf("Min-SE toward the callee %q, want the caller's larger 120", h.Value())
	}
}

func TestSetDialogCSeq(t *testing.T) {
	var d sipgo.Dialog
	d.InviteRequest = sip.NewRequest(sip.INVITE, sip.Uri{User: "bob", Host: "kaopu.test"})
	d.InviteRequest.AppendHeader(&sip.CSeqHeader{SeqNo: 7, MethodName: sip.INVITE})
	d.Init()
	setDialogCSeq(&d, 42)
	if got := d.CSEQ(); got != 42 {
		t.Fatalf("dialog CSeq %d after setDialogCSeq(42)", got)
	}
}
