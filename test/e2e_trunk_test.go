package test

// End-to-end tests of trunks (issue 6): sipp plays the carriers, each on
// its own loopback address (127.0.0.2 and up) so that its calls come from
// an address no phone uses; a second kaopu plays the carrier for the call
// with two-way audio.

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kaopu/kaopu/test/harness"
)

// trunkConfig: MD5 for sipp's digest, UK numbering.
const trunkConfig = sippConfig + "calls:\n  country_code: \"44\"\n"

// cli runs kaopu with args against srv's store and fails the test unless it exits 0.
func cli(t *testing.T, srv *harness.Server, args ...string) string {
	t.Helper()
	out, code := harness.RunCLI(t, append(args, "--data", srv.DataDir)...)
	if code != 0 {
		t.Fatalf("kaopu %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// carrier runs a sipp UAS at ip:port in the background.
func carrier(t *testing.T, ip string, port int, args ...string) (wait func() *harness.SippResult) {
	t.Helper()
	return callee(t, port, append([]string{"-i", ip}, args...)...)
}

// waitMetric waits until srv's /metrics has sample name (with its labels)
// at value; false at the deadline.
func waitMetric(t *testing.T, srv *harness.Server, name string, value float64, d time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		resp, err := http.Get(srv.HTTPURL() + "/metrics")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, line := range strings.Split(string(body), "\n") {
				if v, ok := strings.CutPrefix(line, name+" "); ok && v == strconv.FormatFloat(value, 'g', -1, 64) {
					return true
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// TestTrunkOutbound: alice dials ordinary numbers. An international number
// (00...) goes by its route to trunk intl with the number in E.164 in the
// Request-URI; a national number (0...) goes to trunk primary, which
// answers 503, and then to trunk backup, which answers: the call is up,
// both carriers saw +44..., and the server logs the failover.
func TestTrunkOutbound(t *testing.T) {
	srv := harness.StartServer(t, harness.ServerOptions{Config: trunkConfig})
	harness.AddUser(t, srv.DataDir, "alice", "alice-secret-1", "1001")
	cli(t, srv, "user", "set", "alice", "--allow", "international")
	ports := map[string]int{}
	for i, name := range []string{"primary", "backup", "intl"} {
		ports[name] = harness.FreePort(t, "udp")
		cli(t, srv, "trunk", "add", name, "--address", fmt.Sprintf("127.0.0.%d:%d", i+2, ports[name]), "--qualify", "0")
	}
	cli(t, srv, "route", "add", "uk", "--pattern", "_0[1-9]X.", "--trunks", "primary,backup")
	cli(t, srv, "route", "add", "intl", "--pattern", "00", "--trunks", "intl", "--priority", "50")
	if out := cli(t, srv, "route", "list"); !strings.Contains(out, "_0[1-9]X.") || strings.Index(out, "intl") > strings.Index(out, "uk ") {
		t.Fatalf("route list, intl (priority 50) first:\n%s", out)
	}
	time.Sleep(1500 * time.Millisecond) // the server reloads trunks every second

	t.Run("by prefix", func(t *testing.T) {
		wait := carrier(t, "127.0.0.4", ports["intl"], "-sn", "uas")
		r := harness.Sipp(t, srv.SIPAddr(), "-sf", harness.Scenario(t, "uac_auth.xml"), "-s", "0033-1-23-45-67-89",
			"-au", "alice", "-ap", "alice-secret-1", "-key", "caller", "alice", "-auth_uri", srv.Domain, "-timeout", "20s")
		if r.ExitCode != 0 {
			t.Fatalf("caller: exit %d, want 0 (answered by trunk intl)\n%s", r.ExitCode, r.Errors)
		}
		u := wait()
		if u.ExitCode != 0 {
			t.Fatalf("carrier intl: exit %d\n%s", u.ExitCode, u.Errors)
		}
		inv := receivedInvite(t, u)
		if want := fmt.Sprintf("INVITE sip:+33123456789@127.0.0.4:%d SIP/2.0", ports["intl"]); inv.StartLine != want {
			t.Fatalf("carrier got %q, want %q", inv.StartLine, want)
		}
		if !strings.Contains(inv.Get("From"), "sip:alice@") {
			t.Errorf("From %q: want the caller (no DID, no trunk caller ID)", inv.Get("From"))
		}
	})

	t.Run("failover on 503", func(t *testing.T) {
		waitPrimary := carrier(t, "127.0.0.2", ports["primary"], "-sf", rejectingCallee(t, 503, "Service Unavailable"))
		waitBackup := carrier(t, "127.0.0.3", ports["backup"], "-sn", "uas")
		r := harness.Sipp(t, srv.SIPAddr(), "-sf", harness.Scenario(t, "uac_auth.xml"), "-s", "02079460000",
			"-au", "alice", "-ap", "alice-secret-1", "-key", "caller", "alice", "-auth_uri", srv.Domain, "-timeout", "20s")
		if r.ExitCode != 0 {
			t.Fatalf("caller: exit %d, want 0 (answered by trunk backup)\n%s", r.ExitCode, r.Errors)
		}
		p, b := waitPrimary(), waitBackup()
		if p.ExitCode != 0 || b.ExitCode != 0 {
			t.Fatalf("carriers: primary exit %d, backup exit %d\n%s\n%s", p.ExitCode, b.ExitCode, p.Errors, b.Errors)
		}
		for name, res := range map[string]*harness.SippResult{"primary": p, "backup": b} {
			inv := receivedInvite(t, res)
			if !strings.HasPrefix(inv.StartLine, "INVITE sip:+442079460000@") {
				t.Errorf("%s got %q, want the number in E.164", name, inv.StartLine)
			}
		}
		if _, err := srv.WaitLog(5*time.Second, `msg="trunk failed; trying the next" .*trunk=primary status=503`); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.WaitLog(5*time.Second, `msg="call ended".*status=200`); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("no route", func(t *testing.T) {
		if r := harness.Sipp(t, srv.SIPAddr(), "-sf", failingCaller(t, 404), "-s", "12345",
			"-au", "alice", "-ap", "alice-secret-1", "-key", "caller", "alice", "-auth_uri", srv.Domain); r.ExitCode != 0 {
			t.Fatalf("caller: exit %d, want 404\n%s", r.ExitCode, r.Errors)
		}
	})
}

// TestTrunkRegistration: a carrier that challenges every REGISTER; kaopu
// answers the 401 with the trunk's credentials, and refreshes before the
// granted 2 s run out (a second challenged REGISTER with Authorization).
// The metric says registered; the password is never logged.
func TestTrunkRegistration(t *testing.T) {
	srv := harness.StartServer(t, harness.ServerOptions{Config: trunkConfig})
	port := harness.FreePort(t, "udp")
	wait := carrier(t, "127.0.0.2", port, "-sf", harness.Scenario(t, "uas_trunk_register.xml"))
	cli(t, srv, "trunk", "add", "reg", "--address", fmt.Sprintf("127.0.0.2:%d", port), "--auth", "register",
		"--username", "trunkuser", "--password", "Tr0nk-pass-word", "--qualify", "0")
	registered := `kaopu_trunk_registered{trunk="reg"}`
	if !waitMetric(t, srv, registered, 1, 10*time.Second) {
		t.Fatalf("%s never 1", registered)
	}
	r := wait()
	if r.ExitCode != 0 {
		t.Fatalf("carrier: exit %d, want 0 (two challenged REGISTERs, each answered with credentials)\n%s", r.ExitCode, r.Errors)
	}
	var regs []*harness.Message
	for _, m := range r.Trace() {
		if !m.Sent && strings.HasPrefix(m.StartLine, "REGISTER ") {
			regs = append(regs, m.Message)
		}
	}
	if len(regs) != 4 {
		t.Fatalf("carrier got %d REGISTERs, want 4", len(regs))
	}
	for i, m := range regs {
		authz := m.Get("Authorization")
		if (i%2 == 1) != (authz != "") {
			t.Errorf("REGISTER %d: Authorization %q (want one on the 2nd and 4th only)", i+1, authz)
		}
		if m.Get("Call-ID") != regs[0].Get("Call-ID") {
			t.Errorf("REGISTER %d: Call-ID %q changed (RFC 3261 §10.2.4)", i+1, m.Get("Call-ID"))
		}
		if !strings.Contains(m.Get("Contact"), "sip:trunkuser@127.0.0.1:") {
			t.Errorf("REGISTER %d: Contact %q, want trunkuser at our listener", i+1, m.Get("Contact"))
		}
	}
	if strings.Contains(srv.AllLogs(), "Tr0nk-pass-word") {
		t.Fatal("the trunk password is in the server log")
	}
	if out := cli(t, srv, "trunk", "show", "reg"); strings.Contains(out, "Tr0nk-pass-word") || !strings.Contains(out, "(set)") {
		t.Fatalf("trunk show prints the password or not that it is set:\n%s", out)
	}
}

// expectingCarrier writes a copy of uac_trunk_expect.xml expecting code.
func expectingCarrier(t *testing.T, code int) string {
	t.Helper()
	b, err := os.ReadFile(harness.Scenario(t, "uac_trunk_expect.xml"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), fmt.Sprintf("uac_trunk_expect_%d.xml", code))
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), `response="CODE"`, fmt.Sprintf(`response="%d"`, code), 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTrunkInboundRefusals: from the trunk's address, a number that is
// not ours gets 404 and a log line; the same call to a real DID from
// another address is not the carrier's and must authenticate (407).
func TestTrunkInboundRefusals(t *testing.T) {
	// No calls from other domains: an INVITE without credentials from
	// elsewhere than the trunk must authenticate.
	srv := harness.StartServer(t, harness.ServerOptions{Config: trunkConfig + "  federation: outbound\n"})
	harness.AddUser(t, srv.DataDir, "bob", "bob-secret-2", "1002")
	cli(t, srv, "trunk", "add", "carrier", "--address", "127.0.0.2:5060", "--qualify", "0")
	cli(t, srv, "did", "add", "020 7123 0001", "--to", "1002", "--trunk", "carrier", "--config", srv.ConfigFile)
	if out := cli(t, srv, "did", "list"); !strings.Contains(out, "+442071230001") {
		t.Fatalf("did list: the DID in E.164:\n%s", out)
	}
	time.Sleep(1500 * time.Millisecond)
	if r := harness.Sipp(t, srv.SIPAddr(), "-sf", expectingCarrier(t, 404), "-s", "+442071239999", "-i", "127.0.0.2"); r.ExitCode != 0 {
		t.Fatalf("carrier: exit %d, want 404 for a number that is not ours\n%s", r.ExitCode, r.Errors)
	}
	if _, err := srv.WaitLog(5*time.Second, `msg="call from a trunk to a number that is not ours" trunk=carrier number=\+442071239999`); err != nil {
		t.Fatal(err)
	}
	if r := harness.Sipp(t, srv.SIPAddr(), "-sf", expectingCarrier(t, 407), "-s", "+442071230001", "-i", "127.0.0.3"); r.ExitCode != 0 {
		t.Fatalf("spoofed carrier: exit %d, want 407\n%s", r.ExitCode, r.Errors)
	}
}

// TestTrunkDIDAudio: two kaopu servers, each the other's carrier. alice
// (baresip, registered to server B) dials bob's DID nationally; B routes
// it to its trunk toward A with the number in E.164; A takes the call from
// B's address as its trunk's, maps the DID to bob (baresip, registered to
// A) without digest auth, and each phone hears the other's tone. Then
// again with alice calling in SRTP (srtp-mand: RTP/SAVP): B's trunk is
// plain RTP (the default --media), so B bridges her SRTP leg to RTP
// toward A, which sees a plain offer.
func TestTrunkDIDAudio(t *testing.T) {
	t.Run("plain", func(t *testing.T) { trunkDIDAudio(t, "") })
	t.Run("SRTP caller", func(t *testing.T) { trunkDIDAudio(t, "srtp-mand") })
}

func trunkDIDAudio(t *testing.T, aliceEnc string) {
	const callLength = 4 * time.Second
	a := harness.StartServer(t, harness.ServerOptions{Config: trunkConfig, Args: []string{"--rtp-ports", "12000-12999"}})
	b := harness.StartServer(t, harness.ServerOptions{Config: trunkConfig, IP: "127.0.0.2", Args: []string{"--rtp-ports", "13000-13999"}})
	harness.AddUser(t, a.DataDir, "bob", "bob-secret-2", "1002")
	harness.AddUser(t, b.DataDir, "alice", "alice-secret-1", "1001")
	cli(t, a, "trunk", "add", "b", "--address", b.SIPAddr(), "--qualify", "2")
	cli(t, a, "did", "add", "+442071230001", "--to", "bob")
	cli(t, b, "trunk", "add", "a", "--address", a.SIPAddr(), "--qualify", "2")
	cli(t, b, "route", "add", "national", "--pattern", "_0[1-9]X.", "--trunks", "a")

	dir := t.TempDir()
	wav := func(name string, freq float64) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, harness.ToneWAV(freq, 8000, callLength+3*time.Second, toneLevel), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	bob := harness.StartBaresip(t, harness.BaresipOptions{User: "bob", Password: "bob-secret-2",
		Server: a.SIPAddr(), AnswerMode: "auto", AudioSource: wav("bob-1000hz.wav", bobTone)})
	alice := harness.StartBaresip(t, harness.BaresipOptions{User: "alice", Password: "alice-secret-1",
		Server: b.SIPAddr(), AudioSource: wav("alice-440hz.wav", aliceTone), MediaEnc: aliceEnc})
	for _, p := range []*harness.Baresip{bob, alice} {
		if err := p.WaitRegisterOKs(0, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	// Both trunks up: each server's OPTIONS was answered by the other.
	if !waitMetric(t, a, `kaopu_trunk_up{trunk="b"}`, 1, 10*time.Second) || !waitMetric(t, b, `kaopu_trunk_up{trunk="a"}`, 1, 10*time.Second) {
		t.Fatal("the trunks between the two servers are not up")
	}

	if err := alice.Dial("sip:02071230001@" + b.Domain); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.WaitOutput(10*time.Second, `Call established: sip:02071230001@`); err != nil {
		t.Fatalf("alice: %v", err)
	}
	if _, err := bob.WaitOutput(2*time.Second, `Call established: `); err != nil {
		t.Fatalf("bob: %v", err)
	}
	time.Sleep(callLength)
	if err := alice.Hangup(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*harness.Baresip{alice, bob} {
		if _, err := p.WaitOutput(5*time.Second, `Call with sip:\S+ terminated`); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.WaitLog(5*time.Second, `msg="calling through trunk" .*trunk=a route=national number=\+442071230001`); err != nil {
		t.Fatal(err)
	}
	if _, err := a.WaitLog(5*time.Second, `msg="call ended".*to=bob status=200`); err != nil {
		t.Fatal(err)
	}
	if c := lastCDR(t, a); c.Disposition != "ANSWERED" || c.Callee != "bob" || c.Billsec < 3 {
		t.Errorf("A's CDR %+v, want ANSWERED to bob, billsec >= 3", c)
	}
	// What each relay joined: on B alice's leg and the trunk's, on A the
	// trunk's (B's plain offer) and bob's.
	aliceLeg := `"plain RTP"`
	if aliceEnc != "" {
		aliceLeg = `"SRTP AES_CM_128_HMAC_SHA1_80"`
	}
	if _, err := b.WaitLog(time.Second, `msg="media connected" .*caller_srtp=`+aliceLeg+` callee_srtp="plain RTP"`); err != nil {
		t.Error(err)
	}
	if _, err := a.WaitLog(time.Second, `msg="media connected" .*caller_srtp="plain RTP" callee_srtp="plain RTP"`); err != nil {
		t.Error(err)
	}
	alice.Stop()
	bob.Stop()
	t.Run("alice hears bob", func(t *testing.T) {
		checkHeard(t, alice, bobTone, aliceTone, callLength)
	})
	t.Run("bob hears alice", func(t *testing.T) {
		checkHeard(t, bob, aliceTone, bobTone, callLength)
	})
}
