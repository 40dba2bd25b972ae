package test

// End-to-end tests of the call extensions: reliable provisional responses
// (RFC 3262, PRACK) on both legs, session timers (RFC 4028) and re-INVITE
// glare (491). sipp on both sides, on 127.0.0.1.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kaopu/kaopu/test/harness"
)

// TestCallReliableProvisionals: a callee sends its 183 with SDP reliably;
// the server PRACKs it (the callee's scenario fails without a PRACK naming
// RSeq 1). A caller that requires 100rel gets that 183 reliably, with its
// own RSeq, PRACKs it, and the 200 comes only after the PRACK's 200. A
// caller that does not gets an ordinary 183.
func TestCallReliableProvisionals(t *testing.T) {
	f := newCallFixture(t)
	for _, tc := range []struct {
		name, scenario string
	}{
		{"caller requires 100rel", "uac_100rel.xml"},
		{"caller does not", "uac_auth.xml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The callee's scenario fails without a PRACK for its 183.
			r, u := f.call(t, []string{"-sf", harness.Scenario(t, "uas_100rel.xml")}, harness.Scenario(t, tc.scenario), "bob")
			var p183 *harness.Message
			for _, m := range r.Responses() {
				if m.StatusCode() == 183 {
					p183 = m
				}
			}
			if p183 == nil {
				t.Fatal("the caller got no 183")
			}
			reliable := p183.Has("RSeq") || strings.Contains(strings.ToLower(p183.Get("Require")), "100rel")
			if want := tc.scenario == "uac_100rel.xml"; reliable != want {
				t.Fatalf("183 to the caller reliable=%v, want %v: %s %v", reliable, want, p183.StartLine, p183.Headers)
			}
			// What the callee got: the ACK has the INVITE's CSeq number
			// (RFC 3261 §13.2.2.4) although the PRACK came in between, and
			// the BYE a higher one than the PRACK.
			cseq := map[string]int{}
			for _, m := range u.Trace() {
				if !m.Sent && !m.IsResponse() {
					var n int
					fmt.Sscan(m.Get("CSeq"), &n)
					cseq[m.CSeqMethod()] = n
				}
			}
			if cseq["ACK"] != cseq["INVITE"] || cseq["PRACK"] <= cseq["INVITE"] || cseq["BYE"] <= cseq["PRACK"] {
				t.Fatalf("CSeq numbers the callee got: %v; want ACK = INVITE < PRACK < BYE", cseq)
			}
			c := lastCDR(t, f.srv)
			if c.Disposition != "ANSWERED" || c.Cause != 200 {
				t.Fatalf("CDR %+v, want ANSWERED 200", c)
			}
		})
	}
}

// TestCallSessionTimer: with a 2 s floor, a caller asking for a 3 s
// session with itself as refresher gets it (Session-Expires and Require:
// timer in the 200, checked by the scenario), refreshes once after 1.5 s,
// then stops: the server hangs up both sides about 3 s after the refresh,
// so the call lasts about 4.5 s -- longer than one interval, so the
// refresh counted. An interval below the floor gets 422 with Min-SE.
func TestCallSessionTimer(t *testing.T) {
	f := newCallFixture(t, "calls:\n  min_session_expires: 2s\n")
	srv := f.srv

	t.Run("expires after the last refresh", func(t *testing.T) {
		// The caller's scenario checks the timer granted in the 200 and
		// waits for the server's BYE; the callee's, the refresh relayed.
		start := time.Now()
		f.call(t, []string{"-sf", harness.Scenario(t, "uas_refresh.xml")}, harness.Scenario(t, "uac_session_timer.xml"), "bob")
		if _, err := srv.WaitLog(5*time.Second, `msg="call ended".*reason="session timer expired"`); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 4*time.Second {
			t.Fatalf("call ended after %v: the refresh at 1.5 s did not restart the 3 s interval", d)
		}
		c := lastCDR(t, srv)
		if c.Disposition != "ANSWERED" || c.Billsec < 4 || c.Billsec > 6 {
			t.Fatalf("CDR %+v, want ANSWERED with billsec 4-6", c)
		}
	})

	t.Run("too small gets 422", func(t *testing.T) {
		path := failingCaller(t, 422)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.Replace(string(b), "CSeq: 2 INVITE\n", "CSeq: 2 INVITE\nSupported: timer\nSession-Expires: 1\n", 1)
		if s == string(b) {
			t.Fatal("uac_auth.xml changed: no CSeq: 2 INVITE")
		}
		path = filepath.Join(t.TempDir(), "uac_se_too_small.xml")
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		r := f.caller(t, path, "bob")
		if r.ExitCode != 0 {
			t.Fatalf("caller: exit %d, want 0 (422)\n%s", r.ExitCode, r.Errors)
		}
		for _, m := range r.Responses() {
			if m.StatusCode() == 422 {
				if got := m.Get("Min-SE"); got != "2" {
					t.Fatalf("422 has Min-SE %q, want 2: %v", got, m.Headers)
				}
				return
			}
		}
		t.Fatal("no 422")
	})
}

// TestCallReinviteGlare: a second re-INVITE while the first is still
// pending (the callee takes 1 s) gets 491 Request Pending; the first is
// relayed and answered, and the call goes on to a normal BYE.
func TestCallReinviteGlare(t *testing.T) {
	f := newCallFixture(t)
	// The caller expects 491 for its second re-INVITE, 200 for the first;
	// the callee, one re-INVITE and then the BYE.
	f.call(t, []string{"-sf", harness.Scenario(t, "uas_slow_refresh.xml")}, harness.Scenario(t, "uac_glare.xml"), "bob")
	if c := lastCDR(t, f.srv); c.Disposition != "ANSWERED" {
		t.Fatalf("CDR %+v, want ANSWERED", c)
	}
}

// TestCallLateOffer: an INVITE without SDP. The callee's offer comes back
// in the 200 with the relay's address (checked by the caller's scenario),
// and the answer in the caller's ACK reaches the callee in the server's
// ACK, rewritten to the relay's address: media stays anchored.
func TestCallLateOffer(t *testing.T) {
	f := newCallFixture(t, "rtp:\n  ports: 31000-31100\n")
	srv := f.srv
	_, u := f.call(t, []string{"-sn", "uas"}, harness.Scenario(t, "uac_late_offer.xml"), "bob")
	var ack *harness.Message
	for _, m := range u.Trace() {
		if !m.Sent && strings.HasPrefix(m.StartLine, "ACK ") {
			ack = m.Message
		}
	}
	if ack == nil {
		t.Fatal("the callee got no ACK")
	}
	body := string(ack.Body)
	if !strings.Contains(body, "c=IN IP4 127.0.0.1") || !regexp.MustCompile(`m=audio 31\d{3} `).MatchString(body) {
		t.Fatalf("the callee's ACK does not carry the answer with the relay's address:\n%s", body)
	}
	if c := lastCDR(t, srv); c.Disposition != "ANSWERED" || c.Codec != "PCMU" {
		t.Fatalf("CDR %+v, want ANSWERED with PCMU", c)
	}
}

// TestCallPortRangeFull: with RTP ports for one call only (two port pairs),
// a second call while the first is up gets 503 and takes nothing from the
// first, which goes on and ends normally; afterwards the ports are free
// again and a new call gets through.
func TestCallPortRangeFull(t *testing.T) {
	f := newCallFixture(t, "rtp:\n  ports: 9900-9903\n")
	srv := f.srv

	port := f.registerCallee(t)
	wait := callee(t, port, "-sn", "uas")
	first := make(chan *harness.SippResult, 1)
	go func() {
		// uac_auth.xml holds the call 1 s: the second call is placed
		// as soon as the first is answered.
		first <- f.caller(t, harness.Scenario(t, "uac_auth.xml"), "bob")
	}()
	if _, err := srv.WaitLog(10*time.Second, `msg="call answered"`); err != nil {
		t.Fatal(err)
	}
	r := f.caller(t, failingCaller(t, 503), "bob")
	if r.ExitCode != 0 {
		t.Fatalf("second caller: exit %d, want 0 (503)\n%s", r.ExitCode, r.Errors)
	}
	if r1 := <-first; r1.ExitCode != 0 {
		t.Fatalf("first caller: exit %d, want 0 (its call unharmed)\n%s", r1.ExitCode, r1.Errors)
	}
	if u := wait(); u.ExitCode != 0 {
		t.Fatalf("callee: exit %d\n%s", u.ExitCode, u.Errors)
	}
	lastCDR(t, srv) // both ended
	var got []string
	for _, c := range cdrs(t, srv) {
		got = append(got, fmt.Sprintf("%s %d", c.Disposition, c.Cause))
	}
	if strings.Join(got, ", ") != "ANSWERED 200, FAILED 503" {
		t.Fatalf("CDRs %v, want the first call ANSWERED 200 and the second FAILED 503", got)
	}

	// The ports came back: the next call is answered.
	f.call(t, []string{"-sn", "uas"}, harness.Scenario(t, "uac_auth.xml"), "bob")
}

// TestCallReinviteWithoutSDP: a re-INVITE without SDP gets the callee's
// offer in the 200 (with the relay's address, checked by the caller's
// scenario), and the callee gets the caller's answer in the server's ACK,
// also with the relay's address.
func TestCallReinviteWithoutSDP(t *testing.T) {
	f := newCallFixture(t, "rtp:\n  ports: 31000-31100\n")
	_, u := f.call(t, []string{"-sf", harness.Scenario(t, "uas_refresh.xml")}, harness.Scenario(t, "uac_reinvite_no_sdp.xml"), "bob")
	var acks []string
	for _, m := range u.Trace() {
		if !m.Sent && strings.HasPrefix(m.StartLine, "ACK ") {
			acks = append(acks, string(m.Body))
		}
	}
	if len(acks) != 2 || !regexp.MustCompile(`m=audio 31\d{3} `).MatchString(acks[1]) {
		t.Fatalf("the callee's ACKs %q: want the second (of the re-INVITE) to carry the answer with the relay's port", acks)
	}
}

// TestCallNeverAcked: a caller that never ACKs the 200 gets it
// retransmitted, then, after 64*T1, a BYE; the callee gets a BYE too, and
// the call is recorded with cause 408 and nothing billed, not as a call
// that went on (RFC 3261 §13.3.1.4). It waits 32 s, so it runs alongside the other tests.
func TestCallNeverAcked(t *testing.T) {
	t.Parallel()
	f := newCallFixture(t)
	f.call(t, []string{"-sn", "uas", "-timeout", "60s"}, harness.Scenario(t, "uac_no_ack.xml"), "bob", "-timeout", "60s")
	if _, err := f.srv.WaitLog(5*time.Second, `msg="call ended".*status=408 reason="No ACK"`); err != nil {
		t.Fatal(err)
	}
	if c := lastCDR(t, f.srv); c.Disposition == "ANSWERED" || c.Cause != 408 || c.Billsec != 0 {
		t.Fatalf("CDR %+v, want cause 408, not answered, nothing billed", c)
	}
}

// TestCallFraudLimits: with calls.max_concurrent 1, a call by alice while
// her first is up gets 403 "Concurrent Call Limit" and the first is
// unharmed; with calls.max_per_minute 2, her third started call within the
// minute gets 403 "Call Rate Limit". Both are counted in /metrics.
func TestCallFraudLimits(t *testing.T) {
	f := newCallFixture(t, "calls:\n  max_concurrent: 1\n  max_per_minute: 2\n")
	port := f.registerCallee(t)
	wait := callee(t, port, "-sn", "uas")
	first := make(chan *harness.SippResult, 1)
	go func() { first <- f.caller(t, harness.Scenario(t, "uac_auth.xml"), "bob") }()
	if _, err := f.srv.WaitLog(10*time.Second, `msg="call answered"`); err != nil {
		t.Fatal(err)
	}
	expect403 := func(reason string) {
		t.Helper()
		r := f.caller(t, failingCaller(t, 403), "bob")
		if r.ExitCode != 0 {
			t.Fatalf("caller: exit %d, want 0 (403)\n%s", r.ExitCode, r.Errors)
		}
		if got := r.LastResponse(); got == nil || got.Reason() != reason {
			t.Fatalf("got %v, want 403 %s", got, reason)
		}
	}
	expect403("Concurrent Call Limit")
	if r := <-first; r.ExitCode != 0 {
		t.Fatalf("first call: exit %d\n%s", r.ExitCode, r.Errors)
	}
	if u := wait(); u.ExitCode != 0 {
		t.Fatalf("callee: exit %d\n%s", u.ExitCode, u.Errors)
	}
	// A refused call is no start: a second one goes through, a third
	// within the minute does not.
	f.call(t, []string{"-sn", "uas"}, harness.Scenario(t, "uac_auth.xml"), "bob")
	expect403("Call Rate Limit")
	for name, want := range map[string]float64{"kaopu_calls_denied_concurrent_total": 1, "kaopu_calls_denied_rate_total": 1} {
		if got := f.srv.Metric(t, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}
