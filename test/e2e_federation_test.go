//go:build linux

package test

// End-to-end test of federation: two kaopu servers with their own SIP
// domains and users, alpha.test (alice) and beta.test (bob), call each
// other's users, each finding the other in DNS. The messages name made-up
// hosts, so everything runs inside a network namespace with only lo up:
// both servers, every sipp, and a DNS server for the two domains that the
// namespace's resolv.conf names.
//
//	alpha.test  A 127.0.0.2, no SRV: found on the default port 5060
//	beta.test   SRV _sip._udp 0 0 5080 sip.beta.test, A sip.beta.test 127.0.0.3

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kaopu/kaopu/test/harness"
)

// fedFixture is the two servers in their namespace.
type fedFixture struct {
	ns          *harness.Netns
	dns         *harness.DNS
	alpha, beta *harness.Server
}

func newFedFixture(t *testing.T) *fedFixture {
	t.Helper()
	return newFedFixtureZone(t, harness.DNSZone{
		A: map[string][]netip.Addr{
			"alpha.test":    {netip.MustParseAddr("127.0.0.2")},
			"sip.beta.test": {netip.MustParseAddr("127.0.0.3")},
		},
		SRV: map[string][]net.SRV{
			"_sip._udp.beta.test": {{Target: "sip.beta.test", Port: 5080, Priority: 0, Weight: 0}},
		},
	})
}

// newFedFixtureZone is the two servers, alpha.test on 127.0.0.2:5060 and
// beta.test on 127.0.0.3:5080, with zone as their DNS.
func newFedFixtureZone(t *testing.T, zone harness.DNSZone) *fedFixture {
	t.Helper()
	f := &fedFixture{ns: harness.StartNetns(t)}
	f.dns = harness.StartDNS(t, f.ns, zone)
	f.alpha = harness.StartServer(t, harness.ServerOptions{Config: sippConfig + "rtp:\n  ports: 30000-30098\n",
		Domain: "alpha.test", Netns: f.ns, IP: "127.0.0.2", SIPPort: 5060})
	f.beta = harness.StartServer(t, harness.ServerOptions{Config: sippConfig + "rtp:\n  ports: 30100-30198\n",
		Domain: "beta.test", Netns: f.ns, IP: "127.0.0.3", SIPPort: 5080})
	harness.AddUser(t, f.alpha.DataDir, "alice", "alice-secret-1", "1001")
	harness.AddUser(t, f.beta.DataDir, "bob", "bob-secret-2", "2002")
	return f
}

// federated rewrites a kaopu.test sipp scenario for a caller of
// callerDomain dialing a user of calleeDomain (a REGISTER goes to
// calleeDomain).
func federated(t *testing.T, path, callerDomain, calleeDomain string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), "[caller]@kaopu.test", "[caller]@"+callerDomain)
	s = strings.ReplaceAll(s, "[service]@kaopu.test", "[service]@"+calleeDomain)
	s = strings.ReplaceAll(s, "sip:kaopu.test", "sip:"+calleeDomain)
	for _, part := range strings.Split(s, "<![CDATA[")[1:] {
		if msg, _, _ := strings.Cut(part, "]]>"); strings.Contains(msg, "kaopu.test") {
			t.Fatalf("%s: a message still names kaopu.test after rewriting:\n%s", path, msg)
		}
	}
	out := filepath.Join(t.TempDir(), callerDomain+"-"+calleeDomain+"-"+filepath.Base(path))
	if err := os.WriteFile(out, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// register registers user at srv from a fresh port inside the namespace
// and returns that port, where the user's sipp must then listen.
func (f *fedFixture) register(t *testing.T, srv *harness.Server, user, password string) int {
	t.Helper()
	port := harness.FreePort(t, "udp")
	r := harness.SippIn(t, f.ns, srv.SIPAddr(), "-sf", federated(t, harness.Scenario(t, "register.xml"), srv.Domain, srv.Domain),
		"-s", user, "-ap", password, "-auth_uri", srv.Domain, "-key", "expires", "600", "-p", fmt.Sprint(port))
	if r.ExitCode != 0 {
		t.Fatalf("registering %s at %s: exit %d\n%s", user, srv.Domain, r.ExitCode, r.Errors)
	}
	return port
}

// answerer runs a sipp UAS on port inside the namespace in the background;
// wait returns its result.
func (f *fedFixture) answerer(t *testing.T, port int) (wait func() *harness.SippResult) {
	t.Helper()
	done := make(chan *harness.SippResult, 1)
	go func() {
		done <- harness.SippIn(t, f.ns, "-p", fmt.Sprint(port), "-sn", "uas", "-timeout", "20s")
	}()
	time.Sleep(300 * time.Millisecond) // sipp binds its port before it reads
	return func() *harness.SippResult {
		select {
		case r := <-done:
			return r
		case <-time.After(40 * time.Second):
			t.Fatal("callee sipp did not finish")
			return nil
		}
	}
}

// call has user (authenticating at its own server srv) call
// sip:target@calleeDomain with scenario (a kaopu.test one, rewritten).
func (f *fedFixture) call(t *testing.T, srv *harness.Server, user, password, scenario, target, calleeDomain string) *harness.SippResult {
	t.Helper()
	return harness.SippIn(t, f.ns, srv.SIPAddr(), "-sf", federated(t, scenario, srv.Domain, calleeDomain),
		"-s", target, "-au", user, "-ap", password, "-key", "caller", user, "-auth_uri", srv.Domain, "-timeout", "20s")
}

// challenged sends an INVITE without credentials to srv for
// sip:target@calleeDomain from caller@callerDomain and expects a 407.
func (f *fedFixture) challenged(t *testing.T, srv *harness.Server, caller, callerDomain, target, calleeDomain string) {
	t.Helper()
	r := harness.SippIn(t, f.ns, srv.SIPAddr(), "-sf", harness.Scenario(t, "uac_challenged.xml"), "-s", target,
		"-key", "caller", caller, "-key", "caller_domain", callerDomain, "-key", "callee_domain", calleeDomain)
	if r.ExitCode != 0 {
		t.Fatalf("INVITE sip:%s@%s from %s@%s to %s without credentials: exit %d, want a 407 challenge (responses %v)\n%s",
			target, calleeDomain, caller, callerDomain, srv.Domain, r.ExitCode, statuses(r.Responses()), r.Errors)
	}
}

// receivedInvite is the INVITE a callee's sipp received.
func receivedInvite(t *testing.T, r *harness.SippResult) *harness.Message {
	t.Helper()
	for _, m := range r.Trace() {
		if !m.Sent && strings.HasPrefix(m.StartLine, "INVITE ") {
			return m.Message
		}
	}
	t.Fatal("the callee received no INVITE")
	return nil
}

// TestFederation: alice of alpha.test calls bob of beta.test: she
// authenticates at alpha, alpha finds beta by SRV and sends the call
// there, beta accepts it without credentials (alpha has none to give)
// because it comes from another domain to its own user, bob answers and
// the call is recorded ANSWERED on both sides, with the full foreign
// address as the caller on beta. The other way round, beta finds alpha by
// its A record on port 5060. Neither server relays a call it has not
// authenticated to another domain, a forged From of a server's own domain
// is challenged, and a call to a user or a domain that does not exist
// ends with 404.
func TestFederation(t *testing.T) {
	f := newFedFixture(t)

	t.Run("alpha to beta by SRV", func(t *testing.T) {
		wait := f.answerer(t, f.register(t, f.beta, "bob", "bob-secret-2"))
		r := f.call(t, f.alpha, "alice", "alice-secret-1", harness.Scenario(t, "uac_auth.xml"), "bob", "beta.test")
		if r.ExitCode != 0 {
			t.Fatalf("alice: exit %d, want 0 (answered and hung up); responses %v\n%s", r.ExitCode, statuses(r.Responses()), r.Errors)
		}
		if codes := statuses(r.Responses()); !containsInts(codes, 407, 200) {
			t.Fatalf("alice saw %v, want 407 (from alpha) and 200", codes)
		}
		u := wait()
		if u.ExitCode != 0 {
			t.Fatalf("bob: exit %d, want 0 (INVITE, ACK and BYE received)\n%s", u.ExitCode, u.Errors)
		}
		inv := receivedInvite(t, u)
		if from, to := inv.Get("From"), inv.Get("To"); !strings.Contains(from, "sip:alice@alpha.test") ||
			!strings.Contains(to, "sip:bob@beta.test") {
			t.Errorf("bob's INVITE has From %q and To %q, want sip:alice@alpha.test to sip:bob@beta.test", from, to)
		}
		if q := f.dns.Queries(); !slices.Contains(q, "SRV _sip._udp.beta.test.") || !slices.Contains(q, "A sip.beta.test.") {
			t.Errorf("alpha did not locate beta by SRV then A; DNS queries: %q", q)
		}
		if c := lastCDR(t, f.alpha); c.Disposition != "ANSWERED" || c.Cause != 200 || c.Caller != "alice" || c.Dialed != "bob" {
			t.Errorf("alpha's CDR %+v, want ANSWERED 200 from alice, dialed bob", c)
		}
		if c := lastCDR(t, f.beta); c.Disposition != "ANSWERED" || c.Cause != 200 || c.Caller != "alice@alpha.test" ||
			c.Dialed != "bob" || c.Billsec < 1 {
			t.Errorf("beta's CDR %+v, want ANSWERED 200 from alice@alpha.test, dialed bob, billsec >= 1", c)
		}
	})

	alicePort := 0
	t.Run("beta to alpha by A on 5060", func(t *testing.T) {
		alicePort = f.register(t, f.alpha, "alice", "alice-secret-1")
		wait := f.answerer(t, alicePort)
		// By extension at beta: 2002 is bob's login too.
		r := f.call(t, f.beta, "2002", "bob-secret-2", harness.Scenario(t, "uac_auth.xml"), "1001", "alpha.test")
		if r.ExitCode != 0 {
			t.Fatalf("bob: exit %d, want 0; responses %v\n%s", r.ExitCode, statuses(r.Responses()), r.Errors)
		}
		if u := wait(); u.ExitCode != 0 {
			t.Fatalf("alice: exit %d\n%s", u.ExitCode, u.Errors)
		}
		if q := f.dns.Queries(); !slices.Contains(q, "SRV _sip._udp.alpha.test.") || !slices.Contains(q, "A alpha.test.") {
			t.Errorf("beta did not try SRV then fall back to A for alpha.test; DNS queries: %q", q)
		}
		if c := lastCDR(t, f.alpha); c.Disposition != "ANSWERED" || c.Caller != "bob@beta.test" || c.Dialed != "1001" {
			t.Errorf("alpha's CDR %+v, want ANSWERED from bob@beta.test, dialed 1001", c)
		}
		if c := lastCDR(t, f.beta); c.Disposition != "ANSWERED" || c.Caller != "bob" {
			t.Errorf("beta's CDR %+v, want ANSWERED from bob", c)
		}
	})

	t.Run("beta to alpha over TCP", func(t *testing.T) {
		if alicePort == 0 {
			t.Skip("alice did not register at alpha")
		}
		before := len(f.dns.Queries())
		wait := f.answerer(t, alicePort)
		// sip:1001@alpha.test;transport=tcp: only the TCP SRV, then A.
		b, err := os.ReadFile(federated(t, harness.Scenario(t, "uac_auth.xml"), "beta.test", "alpha.test"))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "uac_tcp.xml")
		tcp := strings.ReplaceAll(string(b), "@alpha.test SIP/2.0", "@alpha.test;transport=tcp SIP/2.0")
		if err := os.WriteFile(path, []byte(tcp), 0o644); err != nil {
			t.Fatal(err)
		}
		// While the call is up, beta has a TCP connection to alpha's
		// listener (sipgo closes it once the call no longer uses it).
		stop := make(chan struct{})
		sawTCP := make(chan string, 1)
		go func() {
			// "LOCAL PEER users:(("kaopu",pid=N,fd=M))": beta's end.
			tcpToAlpha := regexp.MustCompile(fmt.Sprintf(`:\d+\s+127\.0\.0\.2:5060\s.*pid=%d,`, f.beta.PID()))
			last := ""
			defer func() { sawTCP <- last }()
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				out, err := f.ns.Exec("ss", "-Htnp", "state", "established")
				if err != nil {
					last = err.Error()
					continue
				}
				if last = out; tcpToAlpha.MatchString(out) {
					last = ""
					return
				}
			}
		}()
		r := harness.SippIn(t, f.ns, f.beta.SIPAddr(), "-sf", path, "-s", "1001", "-au", "bob", "-ap", "bob-secret-2",
			"-key", "caller", "bob", "-auth_uri", "beta.test", "-timeout", "20s")
		if r.ExitCode != 0 {
			t.Fatalf("bob: exit %d, want 0; responses %v\n%s", r.ExitCode, statuses(r.Responses()), r.Errors)
		}
		if u := wait(); u.ExitCode != 0 {
			t.Fatalf("alice: exit %d\n%s", u.ExitCode, u.Errors)
		}
		if q := f.dns.Queries()[before:]; !slices.Contains(q, "SRV _sip._tcp.alpha.test.") || slices.Contains(q, "SRV _sip._udp.alpha.test.") {
			t.Errorf("for transport=tcp beta asked %q, want the TCP SRV only", q)
		}
		close(stop)
		if last := <-sawTCP; last != "" {
			t.Errorf("no TCP connection from beta to alpha's 127.0.0.2:5060 during the call; last ss:\n%s", last)
		}
		if c := lastCDR(t, f.alpha); c.Disposition != "ANSWERED" || c.Caller != "bob@beta.test" {
			t.Errorf("alpha's CDR %+v, want ANSWERED from bob@beta.test", c)
		}
	})

	t.Run("no open relay", func(t *testing.T) {
		before := len(f.dns.Queries())
		// A stranger asks alpha to carry a call to beta.
		f.challenged(t, f.alpha, "mallory", "gamma.test", "bob", "beta.test")
		// Even with a From of beta, alpha does not relay to beta.
		f.challenged(t, f.alpha, "bob", "beta.test", "bob", "beta.test")
		if q := f.dns.Queries(); len(q) != before {
			t.Errorf("alpha looked up %q for calls it had not authenticated", q[before:])
		}
	})

	t.Run("forged From of our domain", func(t *testing.T) {
		f.challenged(t, f.beta, "alice", "beta.test", "bob", "beta.test")
		f.challenged(t, f.beta, "alice", "127.0.0.3", "bob", "beta.test")
	})

	t.Run("no such user at the other domain", func(t *testing.T) {
		r := f.call(t, f.alpha, "alice", "alice-secret-1", failingCaller(t, 404), "nobody", "beta.test")
		if r.ExitCode != 0 {
			t.Fatalf("alice: exit %d, want beta's 404 relayed; responses %v\n%s", r.ExitCode, statuses(r.Responses()), r.Errors)
		}
		if c := lastCDR(t, f.beta); c.Disposition != "FAILED" || c.Cause != 404 || c.Caller != "alice@alpha.test" || c.Dialed != "nobody" {
			t.Errorf("beta's CDR %+v, want FAILED 404 from alice@alpha.test for nobody", c)
		}
		if c := lastCDR(t, f.alpha); c.Disposition != "FAILED" || c.Cause != 404 || c.Caller != "alice" {
			t.Errorf("alpha's CDR %+v, want FAILED 404 from alice", c)
		}
	})

	t.Run("no such domain", func(t *testing.T) {
		r := f.call(t, f.alpha, "alice", "alice-secret-1", failingCaller(t, 404), "bob", "nowhere.test")
		if r.ExitCode != 0 {
			t.Fatalf("alice: exit %d, want 404 for a domain that does not exist; responses %v\n%s",
				r.ExitCode, statuses(r.Responses()), r.Errors)
		}
		if q := f.dns.Queries(); !slices.Contains(q, "A nowhere.test.") {
			t.Errorf("alpha did not look nowhere.test up; DNS queries: %q", q)
		}
		if c := lastCDR(t, f.alpha); c.Disposition != "FAILED" || c.Cause != 404 || c.Dialed != "bob" {
			t.Errorf("alpha's CDR %+v, want FAILED 404 for bob", c)
		}
	})
}

// TestFederationFailover: calls to another domain try the servers DNS
// lists in order (RFC 3263 §4.3). beta.test's SRV names a dead server
// first (nothing on 127.0.0.3:5090: silent), then one answering 503 (a
// sipp on 127.0.0.4:5070), then beta itself: alice's call to bob
// connects through the third, after alpha gave up on the first for its
// silence and on the second for its 503. gamma.test's servers are a TCP
// port nobody listens on (refused), then the 503 sipp: alice gets the
// last answer, 503. A caller who cancels while the dead server of
// delta.test is tried gets 487, and no other server is tried.
func TestFederationFailover(t *testing.T) {
	const busyPort = 5070
	busy := netip.MustParseAddr("127.0.0.4")
	f := newFedFixtureZone(t, harness.DNSZone{
		A: map[string][]netip.Addr{
			"alpha.test":         {netip.MustParseAddr("127.0.0.2")},
			"sip.beta.test":      {netip.MustParseAddr("127.0.0.3")},
			"dead.beta.test":     {netip.MustParseAddr("127.0.0.3")},
			"busy.beta.test":     {busy},
			"refused.gamma.test": {netip.MustParseAddr("127.0.0.5")},
		},
		SRV: map[string][]net.SRV{
			"_sip._udp.beta.test": {
				{Target: "dead.beta.test", Port: 5090, Priority: 0},
				{Target: "busy.beta.test", Port: busyPort, Priority: 1},
				{Target: "sip.beta.test", Port: 5080, Priority: 2},
			},
			"_sip._tcp.gamma.test": {{Target: "refused.gamma.test", Port: 5090, Priority: 0}},
			"_sip._udp.delta.test": {
				{Target: "dead.beta.test", Port: 5090, Priority: 0},
				{Target: "sip.beta.test", Port: 5080, Priority: 1},
			},
			"_sip._udp.gamma.test": {{Target: "busy.beta.test", Port: busyPort, Priority: 0}},
		},
	})
	rejecting := func(t *testing.T) func() *harness.SippResult {
		return sippInBackground(t, f.ns, "-i", busy.String(), "-p", fmt.Sprint(busyPort), "-sf", rejectingCallee(t, 503, "Service Unavailable"))
	}

	t.Run("dead, then 503, then beta", func(t *testing.T) {
		waitBusy := rejecting(t)
		wait := f.answerer(t, f.register(t, f.beta, "bob", "bob-secret-2"))
		start := time.Now()
		r := f.call(t, f.alpha, "alice", "alice-secret-1", harness.Scenario(t, "uac_auth.xml"), "bob", "beta.test")
		if r.ExitCode != 0 {
			t.Fatalf("alice: exit %d, want 0 (answered by beta's third server); responses %v\n%s", r.ExitCode, statuses(r.Responses()), r.Errors)
		}
		if u := wait(); u.ExitCode != 0 {
			t.Fatalf("bob: exit %d\n%s", u.ExitCode, u.Errors)
		}
		b := waitBusy()
		if b.ExitCode != 0 {
			t.Fatalf("503 server: exit %d, want 0 (INVITE, then ACK of its 503)\n%s", b.ExitCode, b.Errors)
		}
		// Every server got the domain in the Request-URI.
		if inv := receivedInvite(t, b); !strings.HasPrefix(inv.StartLine, "INVITE sip:bob@beta.test SIP/2.0") {
			t.Errorf("503 server got %q", inv.StartLine)
		}
		for _, re := range []string{
			`msg="domain server failed; trying the next" .*domain=beta.test server=UDP:127.0.0.3:5090 status=0 silent=true .*next=UDP:127.0.0.4:5070`,
			`msg="domain server failed; trying the next" .*domain=beta.test server=UDP:127.0.0.4:5070 status=503 silent=false .*next=UDP:127.0.0.3:5080`,
		} {
			if _, err := f.alpha.WaitLog(5*time.Second, re); err != nil {
				t.Fatal(err)
			}
		}
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("the call took %v: the dead server held it longer than the setup timeout", d)
		}
		if c := lastCDR(t, f.alpha); c.Disposition != "ANSWERED" || c.Caller != "alice" || c.Dialed != "bob" {
			t.Errorf("alpha's CDR %+v, want ANSWERED from alice, dialed bob", c)
		}
		if c := lastCDR(t, f.beta); c.Disposition != "ANSWERED" || c.Caller != "alice@alpha.test" {
			t.Errorf("beta's CDR %+v, want ANSWERED from alice@alpha.test", c)
		}
	})

	t.Run("refused, then 503: the caller gets 503", func(t *testing.T) {
		waitBusy := rejecting(t)
		r := f.call(t, f.alpha, "alice", "alice-secret-1", failingCaller(t, 503), "carol", "gamma.test")
		if r.ExitCode != 0 {
			t.Fatalf("alice: exit %d, want the last server's 503; responses %v\n%s", r.ExitCode, statuses(r.Responses()), r.Errors)
		}
		if b := waitBusy(); b.ExitCode != 0 {
			t.Fatalf("503 server: exit %d\n%s", b.ExitCode, b.Errors)
		}
		if _, err := f.alpha.WaitLog(5*time.Second,
			`msg="domain server failed; trying the next" .*domain=gamma.test server=TCP:127.0.0.5:5090 status=0 silent=false unreached=true next=UDP:127.0.0.4:5070`); err != nil {
			t.Fatal(err)
		}
		if c := lastCDR(t, f.alpha); c.Disposition != "FAILED" || c.Cause != 503 || c.Dialed != "carol" {
			t.Errorf("alpha's CDR %+v, want FAILED 503 for carol", c)
		}
	})

	t.Run("caller cancels while a dead server is tried", func(t *testing.T) {
		b, err := os.ReadFile(harness.Scenario(t, "uac_cancel.xml"))
		if err != nil {
			t.Fatal(err)
		}
		// No 180 comes from a dead server: CANCEL after alpha's 100 and a
		// pause instead (a pause is a scenario message too: [branch-3] is
		// still the INVITE's).
		uac := strings.Replace(string(b), `<recv response="100" optional="true"/>
  <recv response="180"/>`, `<recv response="100"/>
  <pause milliseconds="1500"/>`, 1)
		if uac == string(b) {
			t.Fatal("uac_cancel.xml changed: no 100 and 180 recv")
		}
		path := filepath.Join(t.TempDir(), "uac_cancel_silent.xml")
		if err := os.WriteFile(path, []byte(uac), 0o644); err != nil {
			t.Fatal(err)
		}
		r := f.call(t, f.alpha, "alice", "alice-secret-1", path, "dave", "delta.test")
		if r.ExitCode != 0 {
			t.Fatalf("alice: exit %d, want her CANCEL answered 200 and the INVITE 487; responses %v\n%s",
				r.ExitCode, statuses(r.Responses()), r.Errors)
		}
		// Past the setup timeout the dead server would have been left
		// for the next: nothing of the kind once the caller is gone.
		time.Sleep(5 * time.Second)
		if strings.Contains(f.alpha.Log(), "domain=delta.test") {
			t.Errorf("alpha tried another server of delta.test after the caller's CANCEL:\n%s", f.alpha.Log())
		}
		if c := lastCDR(t, f.alpha); c.Disposition != "CANCELLED" || c.Cause != 487 || c.Dialed != "dave" {
			t.Errorf("alpha's CDR %+v, want CANCELLED 487 for dave", c)
		}
	})
}
