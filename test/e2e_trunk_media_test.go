package test

// End-to-end tests of what kaopu tells carriers (issue 6): the media a
// trunk takes (plain RTP whatever the phone uses, or SRTP), its codecs in
// its order, the caller's identity and privacy both ways (RFC 3323,
// RFC 3325), and trunks over TCP and TLS. sipp plays the carriers on
// their own loopback addresses; a second kaopu plays the TLS carrier
// (Debian's sipp has no TLS).

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaopu/kaopu/test/harness"
)

// rewriteScenario writes a copy of the sipp scenario at path with each
// old string replaced by its new one (pairs); every old must occur.
func rewriteScenario(t *testing.T, path string, pairs ...string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("%s: no %q to replace", filepath.Base(path), pairs[i])
		}
		s = strings.ReplaceAll(s, pairs[i], pairs[i+1])
	}
	out := filepath.Join(t.TempDir(), "copy-"+filepath.Base(path))
	if err := os.WriteFile(out, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// callerOffer rewrites a uac_auth.xml-based caller scenario's offer (both
// INVITEs) to sdp's media lines, and adds headers (lines ending in \n).
func callerOffer(t *testing.T, path, sdp, headers string) string {
	t.Helper()
	return rewriteScenario(t, path,
		"m=audio [media_port] RTP/AVP 0\na=rtpmap:0 PCMU/8000\n", sdp,
		"Max-Forwards: 70\nContent-Type: application/sdp", headers+"Max-Forwards: 70\nContent-Type: application/sdp")
}

// srtpOffer is an SRTP-only (RTP/SAVP) offer of PCMU, G722 and
// telephone-event with an SDES key (30 bytes, base64).
const srtpOffer = "m=audio [media_port] RTP/SAVP 0 9 101\na=rtpmap:0 PCMU/8000\na=rtpmap:9 G722/8000\n" +
	"a=rtpmap:101 telephone-event/8000\na=fmtp:101 0-16\n" +
	"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd\n"

// plainOffer is the same offer in plain RTP.
const plainOffer = "m=audio [media_port] RTP/AVP 0 9 101\na=rtpmap:0 PCMU/8000\na=rtpmap:9 G722/8000\n" +
	"a=rtpmap:101 telephone-event/8000\na=fmtp:101 0-16\n"

// audioLine is the m=audio line of an SDP body, without its port.
func audioLine(body []byte) string {
	for _, l := range strings.Split(strings.ReplaceAll(string(body), "\r\n", "\n"), "\n") {
		if strings.HasPrefix(l, "m=audio ") {
			f := strings.Fields(l)
			return strings.Join(append([]string{f[0]}, f[2:]...), " ")
		}
	}
	return ""
}

// TestTrunkMediaAndCodecs: alice's phone offers SRTP (RTP/SAVP) with
// PCMU, G722 and telephone-event.
//   - National numbers route to trunk opusonly (codecs opus: none in
//     common, skipped without a word to it) then plain (media rtp, codecs
//     G722,PCMU): its carrier is offered plain RTP/AVP without a=crypto,
//     G722 before PCMU, telephone-event kept; alice is answered in SRTP.
//   - 0033... routes to trunk secure (media srtp): a plain offer from alice
//     becomes RTP/SAVP with a=crypto toward it; its plain answer is
//     refused (488 to alice).
//   - 0049... routes to opusonly alone: 488, and nothing reaches a carrier.
func TestTrunkMediaAndCodecs(t *testing.T) {
	srv := harness.StartServer(t, harness.ServerOptions{Config: trunkConfig})
	harness.AddUser(t, srv.DataDir, "alice", "alice-secret-1", "1001")
	cli(t, srv, "user", "set", "alice", "--allow", "international")
	plainPort, securePort, opusPort := harness.FreePort(t, "udp"), harness.FreePort(t, "udp"), harness.FreePort(t, "udp")
	cli(t, srv, "trunk", "add", "opusonly", "--address", fmt.Sprintf("127.0.0.4:%d", opusPort), "--codecs", "opus", "--qualify", "0")
	cli(t, srv, "trunk", "add", "plain", "--address", fmt.Sprintf("127.0.0.2:%d", plainPort), "--qualify", "0")
	cli(t, srv, "trunk", "set", "plain", "--codecs", "G722,PCMU") // default media: rtp
	cli(t, srv, "trunk", "add", "secure", "--address", fmt.Sprintf("127.0.0.3:%d", securePort), "--media", "srtp", "--qualify", "0")
	cli(t, srv, "route", "add", "uk", "--pattern", "_0[1-9]X.", "--trunks", "opusonly,plain")
	cli(t, srv, "route", "add", "fr", "--pattern", "0033", "--trunks", "secure", "--priority", "50")
	cli(t, srv, "route", "add", "de", "--pattern", "0049", "--trunks", "opusonly", "--priority", "50")
	if out := cli(t, srv, "trunk", "show", "plain"); !strings.Contains(out, "media:") || !strings.Contains(out, " rtp\n") {
		t.Fatalf("trunk show plain: media rtp by default:\n%s", out)
	}
	time.Sleep(1500 * time.Millisecond) // the server reloads trunks every second
	caller := func(scenario, number string) *harness.SippResult {
		return harness.Sipp(t, srv.SIPAddr(), "-sf", scenario, "-s", number, "-au", "alice", "-ap", "alice-secret-1",
			"-key", "caller", "alice", "-auth_uri", srv.Domain, "-timeout", "20s")
	}

	t.Run("SRTP caller through an rtp trunk", func(t *testing.T) {
		wait := carrier(t, "127.0.0.2", plainPort, "-sn", "uas")
		r := caller(callerOffer(t, harness.Scenario(t, "uac_auth.xml"), srtpOffer, ""), "02079460000")
		if r.ExitCode != 0 {
			t.Fatalf("caller: exit %d, want 0 (answered through trunk plain)\n%s", r.ExitCode, r.Errors)
		}
		u := wait()
		if u.ExitCode != 0 {
			t.Fatalf("carrier: exit %d\n%s", u.ExitCode, u.Errors)
		}
		inv := receivedInvite(t, u)
		if got := audioLine(inv.Body); got != "m=audio RTP/AVP 9 0 101" {
			t.Errorf("carrier's offer: %q, want plain RTP, G722 then PCMU, telephone-event\n%s", got, inv.Body)
		}
		if strings.Contains(string(inv.Body), "a=crypto") {
			t.Errorf("a=crypto offered to an rtp trunk:\n%s", inv.Body)
		}
		ok := r.LastResponse()
		var answer *harness.Message
		for _, m := range r.Responses() {
			if m.StatusCode() == 200 && m.CSeqMethod() == "INVITE" {
				answer = m
			}
		}
		if answer == nil {
			t.Fatalf("caller got no 200 to its INVITE (last %s)", ok.StartLine)
		}
		if got := audioLine(answer.Body); got != "m=audio RTP/SAVP 0" || !strings.Contains(string(answer.Body), "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:") {
			t.Errorf("answer to the SRTP caller: %q\n%s", got, answer.Body)
		}
		for _, line := range []string{`msg="trunk skipped: none of its codecs offered by the caller" .*trunk=opusonly codecs=opus`,
			`msg="media connected" .*caller_srtp="SRTP AES_CM_128_HMAC_SHA1_80" callee_srtp="plain RTP"`} {
			if _, err := srv.WaitLog(5*time.Second, line); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("plain caller through an srtp trunk", func(t *testing.T) {
		wait := carrier(t, "127.0.0.3", securePort, "-sn", "uas")
		r := caller(callerOffer(t, failingCaller(t, 488), plainOffer, ""), "0033123456789")
		if r.ExitCode != 0 {
			t.Fatalf("caller: exit %d, want 488 (the carrier's plain answer refused)\n%s", r.ExitCode, r.Errors)
		}
		u := wait()
		inv := receivedInvite(t, u)
		if got := audioLine(inv.Body); got != "m=audio RTP/SAVP 0 9 101" || !strings.Contains(string(inv.Body), "a=crypto:") {
			t.Errorf("srtp trunk's offer: %q\n%s", got, inv.Body)
		}
		if _, err := srv.WaitLog(5*time.Second, `msg="callee's answer unusable"`); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("no codec in common", func(t *testing.T) {
		r := caller(callerOffer(t, failingCaller(t, 488), plainOffer, ""), "004930123456")
		if r.ExitCode != 0 {
			t.Fatalf("caller: exit %d, want 488\n%s", r.ExitCode, r.Errors)
		}
		if _, err := srv.WaitLog(5*time.Second, `msg="call ended".*to=004930123456 .*status=488`); err != nil {
			t.Fatal(err)
		}
	})
}

// TestTrunkCallerIdentity: outbound, a trunk with --pai presents alice by
// her DID in From and P-Asserted-Identity; when she asks for privacy,
// From is anonymous, Privacy: id goes to the carrier and the asserted
// identity still does (the carrier is trusted). Inbound, the carrier's
// P-Asserted-Identity names the caller to bob (behind an anonymous From),
// and the carrier's Privacy: id hides it from bob but not from the CDR.
func TestTrunkCallerIdentity(t *testing.T) {
	srv := harness.StartServer(t, harness.ServerOptions{Config: trunkConfig})
	harness.AddUser(t, srv.DataDir, "alice", "alice-secret-1", "1001")
	harness.AddUser(t, srv.DataDir, "bob", "bob-secret-2", "1002")
	port := harness.FreePort(t, "udp")
	cli(t, srv, "trunk", "add", "carrier", "--address", fmt.Sprintf("127.0.0.2:%d", port), "--pai", "--qualify", "0")
	cli(t, srv, "route", "add", "uk", "--pattern", "_0[1-9]X.", "--trunks", "carrier")
	cli(t, srv, "did", "add", "+442071230001", "--to", "alice")
	cli(t, srv, "did", "add", "+442071230002", "--to", "bob")
	time.Sleep(1500 * time.Millisecond)
	identity := "<sip:+442071230001@" + srv.Domain + ">"

	outbound := func(t *testing.T, headers string) *harness.Message {
		t.Helper()
		wait := carrier(t, "127.0.0.2", port, "-sn", "uas")
		r := harness.Sipp(t, srv.SIPAddr(), "-sf", callerOffer(t, harness.Scenario(t, "uac_auth.xml"), plainOffer, headers),
			"-s", "02079460000", "-au", "alice", "-ap", "alice-secret-1", "-key", "caller", "alice", "-auth_uri", srv.Domain)
		if r.ExitCode != 0 {
			t.Fatalf("caller: exit %d\n%s", r.ExitCode, r.Errors)
		}
		u := wait()
		if u.ExitCode != 0 {
			t.Fatalf("carrier: exit %d\n%s", u.ExitCode, u.Errors)
		}
		return receivedInvite(t, u)
	}
	t.Run("outbound, P-Asserted-Identity", func(t *testing.T) {
		inv := outbound(t, "")
		if from := inv.Get("From"); !strings.Contains(from, identity) {
			t.Errorf("From %q, want alice's DID %s", from, identity)
		}
		if pai := inv.Get("P-Asserted-Identity"); pai != identity {
			t.Errorf("P-Asserted-Identity %q, want %s", pai, identity)
		}
		if inv.Has("Privacy") {
			t.Errorf("Privacy %q without the caller asking", inv.Get("Privacy"))
		}
	})
	t.Run("outbound, caller asks for privacy", func(t *testing.T) {
		inv := outbound(t, "Privacy: id\n")
		if from := inv.Get("From"); !strings.Contains(from, "<sip:anonymous@anonymous.invalid>") || strings.Contains(from, "442071230001") {
			t.Errorf("From %q, want anonymous", from)
		}
		if got := inv.Get("Privacy"); got != "id" {
			t.Errorf("Privacy %q, want id", got)
		}
		if pai := inv.Get("P-Asserted-Identity"); pai != identity {
			t.Errorf("P-Asserted-Identity %q, want %s for the trusted carrier", pai, identity)
		}
	})

	bobPort := harness.FreePort(t, "udp")
	if r := sippRegister(t, srv, "register.xml", "bob", "bob-secret-2", "-key", "expires", "600", "-p", fmt.Sprint(bobPort)); r.ExitCode != 0 {
		t.Fatalf("bob's registration: exit %d\n%s", r.ExitCode, r.Errors)
	}
	inbound := func(t *testing.T, from, headers string) *harness.Message {
		t.Helper()
		wait := callee(t, bobPort, "-sn", "uas")
		sc := rewriteScenario(t, harness.Scenario(t, "uac_trunk_call.xml"), "X-Caller: as-is\n", headers)
		if r := harness.Sipp(t, srv.SIPAddr(), "-sf", sc, "-s", "+442071230002", "-i", "127.0.0.2", "-key", "from", from); r.ExitCode != 0 {
			t.Fatalf("carrier: exit %d, want the call answered\n%s", r.ExitCode, r.Errors)
		}
		u := wait()
		if u.ExitCode != 0 {
			t.Fatalf("bob: exit %d\n%s", u.ExitCode, u.Errors)
		}
		return receivedInvite(t, u)
	}
	t.Run("inbound, asserted identity", func(t *testing.T) {
		inv := inbound(t, "anonymous", "P-Asserted-Identity: <tel:+33140000000>\n")
		if from := inv.Get("From"); !strings.Contains(from, "<sip:+33140000000@"+srv.Domain+">") {
			t.Errorf("bob sees From %q, want the carrier's asserted +33140000000", from)
		}
		if inv.Has("P-Asserted-Identity") {
			t.Errorf("the carrier's P-Asserted-Identity went on to bob: %q", inv.Get("P-Asserted-Identity"))
		}
		if c := lastCDR(t, srv); c.Caller != "+33140000000" || c.Callee != "bob" {
			t.Errorf("CDR %+v, want caller +33140000000 to bob", c)
		}
	})
	t.Run("inbound, caller hidden", func(t *testing.T) {
		inv := inbound(t, "anonymous", "P-Asserted-Identity: <sip:+33140000001@127.0.0.2>\nPrivacy: id\n")
		if from := inv.Get("From"); !strings.Contains(from, "<sip:anonymous@anonymous.invalid>") || strings.Contains(from, "33140000001") {
			t.Errorf("bob sees From %q, want anonymous", from)
		}
		if c := lastCDR(t, srv); c.Caller != "+33140000001" {
			t.Errorf("CDR caller %q, want the asserted +33140000001", c.Caller)
		}
	})
	t.Run("inbound, From only", func(t *testing.T) {
		inv := inbound(t, "+33140000002", "")
		if from := inv.Get("From"); !strings.Contains(from, "<sip:+33140000002@"+srv.Domain+">") {
			t.Errorf("bob sees From %q", from)
		}
	})
}

// TestTrunkTransports: a trunk over TCP to a sipp carrier (the INVITE
// arrives over TCP), and one over TLS to a second kaopu, which takes the
// call to bob's DID: the call reaches bob through the TLS listener only
// (B's trunk names A's TLS port, where nothing speaks UDP or plain TCP).
func TestTrunkTransports(t *testing.T) {
	t.Run("tcp", func(t *testing.T) {
		srv := harness.StartServer(t, harness.ServerOptions{Config: trunkConfig})
		harness.AddUser(t, srv.DataDir, "alice", "alice-secret-1", "1001")
		port := harness.FreePort(t, "tcp")
		cli(t, srv, "trunk", "add", "tcp", "--address", fmt.Sprintf("127.0.0.2:%d", port), "--transport", "tcp", "--qualify", "0")
		cli(t, srv, "route", "add", "uk", "--pattern", "_0[1-9]X.", "--trunks", "tcp")
		time.Sleep(1500 * time.Millisecond)
		wait := carrier(t, "127.0.0.2", port, "-t", "t1", "-sn", "uas")
		r := harness.Sipp(t, srv.SIPAddr(), "-sf", harness.Scenario(t, "uac_auth.xml"), "-s", "02079460000",
			"-au", "alice", "-ap", "alice-secret-1", "-key", "caller", "alice", "-auth_uri", srv.Domain)
		if r.ExitCode != 0 {
			t.Fatalf("caller: exit %d, want 0 (answered through the TCP trunk)\n%s", r.ExitCode, r.Errors)
		}
		u := wait()
		if u.ExitCode != 0 {
			t.Fatalf("carrier: exit %d\n%s", u.ExitCode, u.Errors)
		}
		inv := receivedInvite(t, u)
		if via := inv.Get("Via"); !strings.HasPrefix(via, "SIP/2.0/TCP ") {
			t.Errorf("carrier got Via %q, want TCP", via)
		}
		if !strings.HasPrefix(inv.StartLine, "INVITE sip:+442079460000@127.0.0.2:") || !strings.Contains(inv.StartLine, "transport=tcp") {
			t.Errorf("carrier got %q", inv.StartLine)
		}
	})

	t.Run("tls", func(t *testing.T) {
		a := harness.StartServer(t, harness.ServerOptions{Config: trunkConfig})
		b := harness.StartServer(t, harness.ServerOptions{Config: trunkConfig, IP: "127.0.0.2"})
		harness.AddUser(t, a.DataDir, "bob", "bob-secret-2", "1002")
		harness.AddUser(t, b.DataDir, "alice", "alice-secret-1", "1001")
		cli(t, a, "trunk", "add", "b", "--address", b.SIPAddr(), "--qualify", "0")
		cli(t, a, "did", "add", "+442071230002", "--to", "bob")
		// A's certificate is its own self-signed one: not verified.
		cli(t, b, "trunk", "add", "a", "--address", a.SIPSAddr(), "--transport", "tls", "--qualify", "2", "--tls-verify=false")
		cli(t, b, "route", "add", "national", "--pattern", "_0[1-9]X.", "--trunks", "a")
		// Up: B's OPTIONS over TLS were answered by A.
		if !waitMetric(t, b, `kaopu_trunk_up{trunk="a"}`, 1, 10*time.Second) {
			t.Fatal("B's TLS trunk to A is not up")
		}
		bobPort := harness.FreePort(t, "udp")
		if r := sippRegister(t, a, "register.xml", "bob", "bob-secret-2", "-key", "expires", "600", "-p", fmt.Sprint(bobPort)); r.ExitCode != 0 {
			t.Fatalf("bob's registration: exit %d\n%s", r.ExitCode, r.Errors)
		}
		wait := callee(t, bobPort, "-sn", "uas")
		r := harness.Sipp(t, b.SIPAddr(), "-sf", harness.Scenario(t, "uac_auth.xml"), "-s", "02071230002",
			"-au", "alice", "-ap", "alice-secret-1", "-key", "caller", "alice", "-auth_uri", b.Domain)
		if r.ExitCode != 0 {
			t.Fatalf("alice: exit %d, want 0 (answered by bob through the TLS trunk)\n%s", r.ExitCode, r.Errors)
		}
		if u := wait(); u.ExitCode != 0 {
			t.Fatalf("bob: exit %d\n%s", u.ExitCode, u.Errors)
		}
		if _, err := b.WaitLog(5*time.Second, `msg="calling through trunk" .*trunk=a .*number=\+442071230002`); err != nil {
			t.Fatal(err)
		}
		if c := lastCDR(t, a); c.Disposition != "ANSWERED" || c.Callee != "bob" {
			t.Errorf("A's CDR %+v, want ANSWERED to bob", c)
		}
	})
}
