package test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kaopu/kaopu/test/harness"
)

// TestCallDestinationClasses: international and premium-rate numbers need
// a permission per user (`kaopu user set --allow`); without it the call is
// refused with 403 and a reason before anything leaves the server, and
// counted. Emergency numbers are never refused.
func TestCallDestinationClasses(t *testing.T) {
	f := newCallFixture(t, "calls:\n  max_per_minute: 0\n")
	expect := func(target string, code int, reason string) {
		t.Helper()
		r := f.caller(t, failingCaller(t, code), target)
		got := r.LastResponse()
		if r.ExitCode != 0 || got == nil || got.StatusCode() != code || reason != "" && got.Reason() != reason {
			t.Fatalf("call to %s: exit %d, last answer %v; want %d %s\n%s", target, r.ExitCode, got, code, reason, r.Errors)
		}
	}
	expect("0044207946000", 403, "International Calls Not Permitted")
	expect("+44207946000", 403, "International Calls Not Permitted")
	expect("0900123456", 403, "Premium-Rate Calls Not Permitted")
	// Not a class: the number is merely unknown here (no route yet).
	expect("5550100", 404, "")
	expect("112", 404, "")
	if _, err := f.srv.WaitLog(5*time.Second, `msg="call denied".*class=international`); err != nil {
		t.Error("the denial was not logged with its class")
	}
	if out, code := harness.RunCLI(t, "user", "set", "alice", "--allow", "international", "--data", f.srv.DataDir); code != 0 {
		t.Fatalf("user set: exit %d: %s", code, out)
	}
	// The server reads the change within a second or so.
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := f.caller(t, failingCaller(t, 404), "0044207946000")
		if r.ExitCode == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after --allow international the call is still refused: %v", r.LastResponse())
		}
		time.Sleep(300 * time.Millisecond)
	}
	// International does not include premium rate.
	expect("0900123456", 403, "Premium-Rate Calls Not Permitted")
	if got := f.srv.Metric(t, "kaopu_calls_denied_class_total"); got < 4 {
		t.Errorf("kaopu_calls_denied_class_total = %v, want at least 4", got)
	}
}

// TestBansPersistAndLift: a ban outlives a restart; `kaopu ban list` shows
// it, `kaopu ban del` lifts it and `kaopu ban add` makes one, each taken
// up by the running server within seconds.
func TestBansPersistAndLift(t *testing.T) {
	srv := harness.StartServer(t, harness.ServerOptions{
		Config: "security:\n  ban_failures: 3\n  ban_window: 60s\n  ban_time: 10m\n",
	})
	const user, pw = "grace", "grace-secret-7"
	harness.AddUser(t, srv.DataDir, user, pw, "")
	failAuth(t, srv, user, 3)
	if got := banProbe(t, srv, time.Second); got != "dropped" {
		t.Fatalf("after 3 wrong passwords an OPTIONS got %q, want it dropped", got)
	}
	waitBanList := func(want bool) string {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			out, code := harness.RunCLI(t, "ban", "list", "--data", srv.DataDir)
			if code != 0 {
				t.Fatalf("ban list: exit %d: %s", code, out)
			}
			if strings.Contains(out, "127.0.0.1") == want {
				return out
			}
			if time.Now().After(deadline) {
				t.Fatalf("ban list (want 127.0.0.1 listed: %v):\n%s", want, out)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	out := waitBanList(true)
	if !strings.Contains(out, "authentication failures") {
		t.Errorf("ban list does not give the reason:\n%s", out)
	}
	srv.Restart()
	if got := banProbe(t, srv, time.Second); got != "dropped" {
		t.Fatalf("after a restart the banned source got %q, want it dropped", got)
	}
	if out, code := harness.RunCLI(t, "ban", "del", "127.0.0.1", "--data", srv.DataDir); code != 0 {
		t.Fatalf("ban del: exit %d: %s", code, out)
	}
	waitProbe := func(want func(string) bool, what string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			got := banProbe(t, srv, 500*time.Millisecond)
			if want(got) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: OPTIONS got %q", what, got)
			}
		}
	}
	waitProbe(func(s string) bool { return strings.HasPrefix(s, "200") }, "5 s after `ban del`")
	c := harness.Dial(t, "udp", srv.SIPAddr())
	register(t, c, user, pw, "<"+c.ContactURI(user)+">", 600, 200)
	waitBanList(false)

	if out, code := harness.RunCLI(t, "ban", "add", "127.0.0.1", "--for", "1m", "--data", srv.DataDir); code != 0 {
		t.Fatalf("ban add: exit %d: %s", code, out)
	}
	for deadline := time.Now().Add(5 * time.Second); srv.Metric(t, "kaopu_banned_sources") != 1; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("5 s after `ban add` the server has not banned the source (kaopu_banned_sources != 1)")
		}
	}
	if got := banProbe(t, srv, 2*time.Second); got != "dropped" {
		t.Errorf("after `ban add` an OPTIONS got %q, want it dropped", got)
	}
	if out, code := harness.RunCLI(t, "ban", "del", "127.0.0.1", "--data", srv.DataDir); code != 0 {
		t.Fatalf("ban del: exit %d: %s", code, out)
	}
	waitProbe(func(s string) bool { return strings.HasPrefix(s, "200") }, "after the second `ban del`")
}

// TestNoEnumerationTiming: a wrong password for a user that exists and any
// password for one that does not take the same time to refuse, and an
// unauthenticated INVITE to an extension that exists and to one that does
// not get the same challenge: no enumeration by response code, header or
// timing.
func TestNoEnumerationTiming(t *testing.T) {
	srv := harness.StartServer(t, harness.ServerOptions{
		Config: sippConfig + "security:\n  ban_failures: 100000\n  rate_limit: 0\n",
	})
	harness.AddUser(t, srv.DataDir, "alice", "alice-secret-1", "1001")
	c := harness.Dial(t, "udp", srv.SIPAddr())
	const rounds = 60
	var known, unknown []time.Duration
	for i := range 2 * rounds {
		user := "alice"
		if i%2 == 1 {
			user = fmt.Sprintf("nobody%d", i)
		}
		res, err := c.DoAuth(c.NewRegister(user, "<"+c.ContactURI(user)+">", 600), user, "wrong-password", nil, sipTimeout)
		if err != nil || res.Sent == nil {
			t.Fatalf("REGISTER %s: %v", user, err)
		}
		// Time the answer to the credentials alone: send it again as a
		// new transaction and measure the round trip.
		retry := res.Sent.Clone()
		retry.Set("Via", fmt.Sprintf("SIP/2.0/UDP %s;branch=z9hG4bK%s;rport", c.LocalAddr(), harness.RandomToken()))
		start := time.Now()
		final, err := c.Do(retry, sipTimeout)
		d := time.Since(start)
		if err != nil {
			t.Fatalf("REGISTER %s (timed): %v", user, err)
		}
		if code := final.StatusCode(); code != 401 && code != 403 {
			t.Fatalf("wrong credentials for %s: %q", user, final.Status())
		}
		if user == "alice" {
			known = append(known, d)
		} else {
			unknown = append(unknown, d)
		}
	}
	median := func(ds []time.Duration) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[len(s)/2]
	}
	mk, mu := median(known), median(unknown)
	t.Logf("median time to refuse: known user %v, unknown user %v", mk, mu)
	// Loopback round trips are ~0.1-1 ms; a password hash or a store
	// lookup done for one kind only shows up as a whole extra millisecond.
	if diff := (mk - mu).Abs(); diff > time.Millisecond && diff > (mk+mu)/4 {
		t.Errorf("refusing a known user takes %v, an unknown one %v: timing tells them apart", mk, mu)
	}

	// INVITE without credentials to an existing and a missing extension.
	invite := func(ext string) *harness.Message {
		req := c.NewRequest("INVITE", "sip:"+ext+"@"+srv.Domain, "alice")
		req.Set("To", "<sip:"+ext+"@"+srv.Domain+">")
		req.Add("Contact", "<"+c.ContactURI("alice")+">")
		res, err := c.Do(req, sipTimeout)
		if err != nil {
			t.Fatalf("INVITE %s: %v", ext, err)
		}
		c.Send(ackFor(req, res))
		return res
	}
	a, b := invite("1001"), invite("1999")
	if a.StatusCode() != 407 || b.StatusCode() != 407 {
		t.Fatalf("unauthenticated INVITEs answered %q and %q, want 407 both", a.Status(), b.Status())
	}
	if sa, sb := challengeShape(a), challengeShape(b); sa != sb {
		t.Errorf("the challenge tells an existing extension from a missing one:\n%s\n%s", sa, sb)
	}
}

// ackFor builds the ACK of a non-2xx answer to req (RFC 3261 §17.1.1.3).
func ackFor(req *harness.Request, res *harness.Message) []byte {
	ack := &harness.Request{Method: "ACK", URI: req.URI}
	for _, h := range []string{"Via", "Max-Forwards", "From", "Call-ID"} {
		ack.Add(h, req.Get(h))
	}
	ack.Add("To", res.Get("To"))
	seq, _, _ := strings.Cut(req.Get("CSeq"), " ")
	ack.Add("CSeq", seq+" ACK")
	return ack.Bytes()
}

// TestCallerIdentityNotSpoofable: alice authenticates but claims to be bob
// in From, P-Asserted-Identity and Remote-Party-ID; the callee sees alice,
// and none of the claimed identity.
func TestCallerIdentityNotSpoofable(t *testing.T) {
	srv := harness.StartServer(t, harness.ServerOptions{Config: sippConfig})
	harness.AddUser(t, srv.DataDir, "alice", "alice-secret-1", "1001")
	harness.AddUser(t, srv.DataDir, "bob", "bob-secret-2", "1002")
	harness.AddUser(t, srv.DataDir, "carol", "carol-secret-3", "1003")
	callee := harness.Dial(t, "udp", srv.SIPAddr())
	register(t, callee, "carol", "carol-secret-3", "<"+callee.ContactURI("carol")+">", 600, 200)

	caller := harness.Dial(t, "udp", srv.SIPAddr())
	req := caller.NewRequest("INVITE", "sip:carol@"+srv.Domain, "bob") // From: bob
	req.Set("To", "<sip:carol@"+srv.Domain+">")
	req.Set("From", `"Bob" <sip:bob@`+srv.Domain+`>;tag=`+harness.RandomToken())
	req.Add("P-Asserted-Identity", "<sip:bob@"+srv.Domain+">")
	req.Add("Remote-Party-ID", `"Bob" <sip:bob@`+srv.Domain+`>;party=calling;screen=yes`)
	req.Add("Contact", "<"+caller.ContactURI("bob")+">")
	req.Add("Content-Type", "application/sdp")
	req.Body = fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n", harness.FreePort(t, "udp"))
	answered := make(chan *harness.AuthResult, 1)
	go func() {
		// alice's credentials, bob's name everywhere else.
		res, err := caller.DoAuth(req, "alice", "alice-secret-1", nil, 10*time.Second)
		if err != nil {
			t.Errorf("INVITE: %v", err)
		}
		answered <- res
	}()
	var inv *harness.Message
	for deadline := time.Now().Add(10 * time.Second); inv == nil; {
		m, err := callee.Read(time.Until(deadline))
		if err != nil {
			t.Fatalf("the callee got no INVITE: %v", err)
		}
		if !m.IsResponse() && strings.HasPrefix(m.StartLine, "INVITE ") {
			inv = m
		}
	}
	from := inv.Get("From")
	if !strings.Contains(from, "sip:alice@") {
		t.Errorf("callee sees From %q, want the authenticated user alice", from)
	}
	for _, h := range []string{"From", "P-Asserted-Identity", "P-Preferred-Identity", "Remote-Party-ID"} {
		for _, v := range inv.Values(h) {
			if strings.Contains(strings.ToLower(v), "bob") {
				t.Errorf("callee sees the spoofed identity in %s: %q", h, v)
			}
		}
	}
	// Busy: the call ends.
	res := "SIP/2.0 486 Busy Here\r\n"
	for _, h := range []string{"Via", "From", "Call-ID", "CSeq"} {
		for _, v := range inv.Values(h) {
			res += h + ": " + v + "\r\n"
		}
	}
	res += "To: " + inv.Get("To") + ";tag=" + harness.RandomToken() + "\r\nContent-Length: 0\r\n\r\n"
	if err := callee.Send([]byte(res)); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-answered:
		if r != nil && r.Final != nil && r.Final.StatusCode() != 486 {
			t.Errorf("caller got %q, want 486", r.Final.Status())
		}
		if r != nil && r.Sent != nil && r.Final != nil {
			caller.Send(ackFor(r.Sent, r.Final))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the caller got no final answer")
	}
}
