package test

// End-to-end tests of ring groups and IVR menus (issue 6: a DID reaches a
// ring group or an IVR): sipp plays the caller, the members (registered,
// then answering or ringing on their registered port) and the carrier.

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

// pbxConfig: MD5 for sipp's digest, UK numbering for the DIDs.
const pbxConfig = sippConfig + "calls:\n  country_code: \"44\"\n  no_answer_timeout: 10s\n"

// Media ports of the sipp instances (this suite's range: 38000-38499).
const (
	mpCaller  = 38100
	mpBob     = 38120
	mpCarol   = 38140
	mpCarrier = 38160
)

// pbxServer is a server with caller alice (1001) and members bob (1002),
// carol (1003) and dave (1004, never registered).
func pbxServer(t *testing.T) *harness.Server {
	t.Helper()
	srv := harness.StartServer(t, harness.ServerOptions{Config: pbxConfig, Args: []string{"--rtp-ports", "37500-37999"}})
	for i, u := range []string{"alice", "bob", "carol", "dave"} {
		harness.AddUser(t, srv.DataDir, u, u+"-secret-1", fmt.Sprint(1001+i))
	}
	return srv
}

// member registers user from a fresh port and starts a sipp UAS there
// with args; wait returns its result.
func member(t *testing.T, srv *harness.Server, user string, mp int, args ...string) (wait func() *harness.SippResult) {
	t.Helper()
	port := harness.FreePort(t, "udp")
	r := sippRegister(t, srv, "register.xml", user, user+"-secret-1", "-key", "expires", "600", "-p", fmt.Sprint(port))
	if r.ExitCode != 0 {
		t.Fatalf("registering %s: exit %d\n%s", user, r.ExitCode, r.Errors)
	}
	return callee(t, port, append([]string{"-mp", fmt.Sprint(mp)}, args...)...)
}

// answers is a member that answers at once and waits for the BYE.
func answers(t *testing.T, srv *harness.Server, user string, mp int) func() *harness.SippResult {
	return member(t, srv, user, mp, "-sn", "uas", "-timeout", "40s")
}

// echoes is a member that answers with PCMU and telephone-event, echoes
// the RTP it gets, and waits for the BYE.
func echoes(t *testing.T, srv *harness.Server, user string, mp int) func() *harness.SippResult {
	return member(t, srv, user, mp, "-sf", harness.Scenario(t, "uas_carrier_dtmf.xml"), "-rtp_echo", "-timeout", "40s")
}

// rings is a member that rings until the call is cancelled.
func rings(t *testing.T, srv *harness.Server, user string, mp int) func() *harness.SippResult {
	return member(t, srv, user, mp, "-sf", harness.Scenario(t, "uas_ring_until_cancel.xml"), "-timeout", "40s")
}

// callGroup has alice call number with scenario.
func callGroup(t *testing.T, srv *harness.Server, scenario, number string) *harness.SippResult {
	t.Helper()
	return harness.Sipp(t, srv.SIPAddr(), "-sf", scenario, "-s", number, "-mp", fmt.Sprint(mpCaller),
		"-au", "alice", "-ap", "alice-secret-1", "-key", "caller", "alice", "-auth_uri", srv.Domain, "-timeout", "40s")
}

func mustExit0(t *testing.T, who string, r *harness.SippResult, want string) {
	t.Helper()
	if r.ExitCode != 0 {
		t.Fatalf("%s: exit %d, want 0 (%s)\n%s", who, r.ExitCode, want, r.Errors)
	}
}

// TestRingGroupRingAll: alice dials ring group 600 (ringall: bob, carol,
// dave). dave is not registered and is skipped; bob and carol ring at
// once; bob answers, carol gets a CANCEL; the CDR names the group dialed
// and bob, who answered.
func TestRingGroupRingAll(t *testing.T) {
	srv := pbxServer(t)
	cli(t, srv, "group", "add", "600", "--members", "bob,1003,dave", "--ring-time", "8s")
	time.Sleep(1500 * time.Millisecond) // the server reloads groups within a second
	waitCarol := rings(t, srv, "carol", mpCarol)
	waitBob := answers(t, srv, "bob", mpBob)
	r := callGroup(t, srv, harness.Scenario(t, "uac_auth.xml"), "600")
	mustExit0(t, "caller", r, "answered and hung up")
	mustExit0(t, "bob", waitBob(), "answered, then the caller's BYE")
	mustExit0(t, "carol", waitCarol(), "rang, then CANCEL")
	if _, err := srv.WaitLog(5*time.Second, `ringing group members`, `group=600`, `strategy=ringall`, `members="?\[bob carol\]`); err != nil {
		t.Error(err)
	}
	if _, err := srv.WaitLog(time.Second, `group member skipped: not registered`, `member=dave`); err != nil {
		t.Error(err)
	}
	c := lastCDR(t, srv)
	if c.Disposition != "ANSWERED" || c.Dialed != "600" || c.Callee != "bob" || c.Caller != "alice" {
		t.Errorf("CDR %+v: want ANSWERED, dialed 600, callee bob (the member who answered)", c)
	}
}

// TestRingGroupHunt: hunt group 601 (carol, then bob, 2 s each): carol
// rings for 2 s and gets a CANCEL, then bob rings and answers.
func TestRingGroupHunt(t *testing.T) {
	srv := pbxServer(t)
	cli(t, srv, "group", "add", "601", "--members", "carol,bob", "--strategy", "hunt", "--ring-time", "2s")
	time.Sleep(1500 * time.Millisecond)
	waitCarol := rings(t, srv, "carol", mpCarol)
	waitBob := answers(t, srv, "bob", mpBob)
	start := time.Now()
	r := callGroup(t, srv, harness.Scenario(t, "uac_auth.xml"), "601")
	mustExit0(t, "caller", r, "answered and hung up")
	mustExit0(t, "carol", waitCarol(), "rang, then CANCEL after the ring time")
	mustExit0(t, "bob", waitBob(), "answered, then the caller's BYE")
	if took := time.Since(start); took < 3*time.Second {
		t.Errorf("the call took %v: carol cannot have rung her 2 s before bob (and the call its 1 s)", took)
	}
	log := srv.Log()
	first := regexp.MustCompile(`ringing group members.*group=601.*members="?\[carol\]`).FindStringIndex(log)
	second := regexp.MustCompile(`ringing group members.*group=601.*members="?\[bob\]`).FindStringIndex(log)
	if first == nil || second == nil || first[0] > second[0] {
		t.Errorf("want carol rung, then bob:\n%s", log)
	}
	if c := lastCDR(t, srv); c.Disposition != "ANSWERED" || c.Dialed != "601" || c.Callee != "bob" {
		t.Errorf("CDR %+v: want ANSWERED, dialed 601, callee bob", c)
	}
}

// TestRingGroupFallback: group 602 (carol, 2 s) falls back to group 603
// (bob): carol rings and is cancelled, bob answers. Then group 604
// (carol, 2 s, no fallback) gets no answer: the caller gets 480.
func TestRingGroupFallback(t *testing.T) {
	srv := pbxServer(t)
	cli(t, srv, "group", "add", "603", "--members", "bob")
	cli(t, srv, "group", "add", "602", "--members", "carol,dave", "--ring-time", "2s", "--fallback", "603")
	cli(t, srv, "group", "add", "604", "--members", "carol", "--ring-time", "2s")
	time.Sleep(1500 * time.Millisecond)

	waitCarol := rings(t, srv, "carol", mpCarol)
	waitBob := answers(t, srv, "bob", mpBob)
	r := callGroup(t, srv, harness.Scenario(t, "uac_auth.xml"), "602")
	mustExit0(t, "caller", r, "answered by the fallback")
	mustExit0(t, "carol", waitCarol(), "rang, then CANCEL")
	mustExit0(t, "bob", waitBob(), "answered as the fallback group's member")
	if _, err := srv.WaitLog(5*time.Second, `group not answered: fallback`, `group=602`, `fallback=603`); err != nil {
		t.Error(err)
	}
	if c := lastCDR(t, srv); c.Disposition != "ANSWERED" || c.Dialed != "602" || c.Callee != "bob" {
		t.Errorf("CDR %+v: want ANSWERED, dialed 602, callee bob", c)
	}

	waitCarol = rings(t, srv, "carol", mpCarol)
	r = callGroup(t, srv, failingCaller(t, 480), "604")
	mustExit0(t, "caller", r, "480 when no member answers")
	mustExit0(t, "carol", waitCarol(), "rang, then CANCEL")
	if c := lastCDR(t, srv); c.Dialed != "604" || c.Cause != 480 {
		t.Errorf("CDR %+v: want dialed 604, cause 480", c)
	}
}

// menuTone is the menu prompt's tone.
const menuTone = 600.0

// promptWAV writes a menu prompt: 1.5 s of menuTone, 16-bit mono at
// 16 kHz (the import converts it to 8 kHz).
func promptWAV(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "menu.wav")
	if err := os.WriteFile(path, harness.ToneWAV(menuTone, 16000, 1500*time.Millisecond, toneLevel), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// ivrScenario fills in a menu caller scenario: it keys keys, waits talk,
// plays four digits of RTP for the relay, and hangs up after hangup.
func ivrScenario(t *testing.T, name, keys string, talk, hangup time.Duration) string {
	t.Helper()
	dir := t.TempDir()
	p1, p2 := filepath.Join(dir, "keys.pcap"), filepath.Join(dir, "talk.pcap")
	if _, err := harness.DTMFPcap(p1, keys, 101, 100000, 1000); err != nil {
		t.Fatal(err)
	}
	if _, err := harness.DTMFPcap(p2, "1234", 101, 900000, 9000); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(harness.Scenario(t, name))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer("@PCAP1@", p1, "@PCAP2@", p2, "@TALK@", fmt.Sprint(talk.Milliseconds()),
		"@HANGUP@", fmt.Sprint(hangup.Milliseconds())).Replace(string(b))
	out := filepath.Join(dir, name)
	if err := os.WriteFile(out, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkRelayed checks the log of a menu call connected to a member: every
// leg of the relay moved packets (the caller's digits reached the member,
// whose echo came back).
func checkRelayed(t *testing.T, srv *harness.Server) {
	t.Helper()
	line, err := srv.WaitLog(5*time.Second, `application call media`)
	if err != nil {
		t.Fatalf("service log: %v", err)
	}
	for _, k := range []string{"caller_packets_in", "carrier_packets_out", "carrier_packets_in", "caller_packets_out"} {
		m := regexp.MustCompile(k + `=(\d+)`).FindStringSubmatch(line)
		if m == nil || m[1] == "0" {
			t.Errorf("relay %s: %q", k, line)
		}
	}
}

// TestIVRMenuConnects: alice calls menu 700 and presses 2 during the
// prompt (barge-in): the menu rings bob (option 2=bob), who answers and
// echoes; the caller's RTP reaches bob and comes back; the caller hangs
// up and bob gets the BYE. The CDR names bob.
func TestIVRMenuConnects(t *testing.T) {
	srv := pbxServer(t)
	cli(t, srv, "ivr", "add", "700", "--prompt", promptWAV(t), "--option", "1=carol", "--option", "2=bob", "--timeout", "3s")
	time.Sleep(1500 * time.Millisecond)
	waitBob := echoes(t, srv, "bob", mpBob)
	r := callGroup(t, srv, ivrScenario(t, "uac_ivr.xml", "2", 3*time.Second, 2*time.Second), "700")
	mustExit0(t, "caller", r, "answered by the menu, connected, then its own BYE")
	mustExit0(t, "bob", waitBob(), "rung by the menu, answered, then the caller's BYE")
	if _, err := srv.WaitLog(5*time.Second, `IVR menu: connecting`, `menu=700`, `key=2`, `destination=bob`); err != nil {
		t.Error(err)
	}
	if _, err := srv.WaitLog(5*time.Second, `IVR menu call`, `outcome=connected`, `destination=bob`, `status=200`, `attempts=1`); err != nil {
		t.Error(err)
	}
	checkRelayed(t, srv)
	if c := lastCDR(t, srv); c.Disposition != "ANSWERED" || c.Dialed != "700" || c.Callee != "bob" {
		t.Errorf("CDR %+v: want ANSWERED, dialed 700, callee bob", c)
	}
}

// TestIVRMenuInvalidThenDefault: a caller who presses an invalid key and
// then nothing runs out of retries (1) and goes to the menu's default,
// ring group 600 (bob).
func TestIVRMenuInvalidThenDefault(t *testing.T) {
	srv := pbxServer(t)
	cli(t, srv, "group", "add", "600", "--members", "bob")
	cli(t, srv, "ivr", "add", "701", "--prompt", promptWAV(t), "--option", "1=carol", "--retries", "1",
		"--timeout", "2s", "--default", "600")
	time.Sleep(1500 * time.Millisecond)
	waitBob := echoes(t, srv, "bob", mpBob)
	// 9 is invalid; the menu replays, waits 2 s for nothing, and sends
	// the caller to 600 about 6-7 s after the answer.
	r := callGroup(t, srv, ivrScenario(t, "uac_ivr.xml", "9", 10*time.Second, 2*time.Second), "701")
	mustExit0(t, "caller", r, "answered, sent to the default, then its own BYE")
	mustExit0(t, "bob", waitBob(), "rung as the default group's member")
	for _, want := range [][]string{{`IVR menu: invalid choice`, `key=9`}, {`IVR menu: no key pressed`},
		{`IVR menu: retries used up, default destination`, `destination=600`},
		{`IVR menu call`, `outcome=default`, `destination=600`, `status=200`, `attempts=2`}} {
		if _, err := srv.WaitLog(5*time.Second, want...); err != nil {
			t.Error(err)
		}
	}
	checkRelayed(t, srv)
}

// TestPBXThroughDID: a carrier's calls to our DIDs: one mapped to ring
// group 600 rings bob, who answers (CDR: dialed the DID, callee bob);
// one mapped to menu 700, where the caller presses 1 and reaches bob.
func TestPBXThroughDID(t *testing.T) {
	srv := pbxServer(t)
	cli(t, srv, "trunk", "add", "carrier", "--address", "127.0.0.4:5060", "--qualify", "0")
	cli(t, srv, "group", "add", "600", "--members", "bob,carol")
	cli(t, srv, "ivr", "add", "700", "--prompt", promptWAV(t), "--option", "1=bob")
	cli(t, srv, "did", "add", "02071230600", "--to", "600", "--trunk", "carrier", "--config", srv.ConfigFile)
	cli(t, srv, "did", "add", "02071230700", "--to", "700", "--trunk", "carrier", "--config", srv.ConfigFile)
	time.Sleep(1500 * time.Millisecond)

	waitBob := answers(t, srv, "bob", mpBob)
	r := harness.Sipp(t, srv.SIPAddr(), "-sf", harness.Scenario(t, "uac_trunk_call.xml"), "-s", "+442071230600",
		"-i", "127.0.0.4", "-mp", fmt.Sprint(mpCarrier), "-key", "from", "+15551230000", "-timeout", "30s")
	mustExit0(t, "carrier", r, "the DID's group answered, then the carrier's BYE")
	mustExit0(t, "bob", waitBob(), "rung through the group, answered")
	if c := lastCDR(t, srv); c.Disposition != "ANSWERED" || c.Callee != "bob" || !strings.Contains(c.Dialed, "2071230600") {
		t.Errorf("CDR %+v: want ANSWERED, the DID dialed, callee bob", c)
	}

	waitBob = echoes(t, srv, "bob", mpBob)
	r = harness.Sipp(t, srv.SIPAddr(), "-sf", ivrScenario(t, "uac_ivr_did.xml", "1", 3*time.Second, 2*time.Second),
		"-s", "+442071230700", "-i", "127.0.0.4", "-mp", fmt.Sprint(mpCarrier), "-key", "caller", "+15551230000", "-timeout", "30s")
	mustExit0(t, "carrier", r, "the DID's menu answered, connected, then the carrier's BYE")
	mustExit0(t, "bob", waitBob(), "rung by the menu, answered")
	if _, err := srv.WaitLog(5*time.Second, `IVR menu call`, `outcome=connected`, `destination=bob`); err != nil {
		t.Error(err)
	}
	checkRelayed(t, srv)
}

// TestRingGroupFallbackToMenu: group 605 (carol, 2 s) falls back to menu
// 700: nobody answers, so the menu answers the still-ringing caller; the
// caller presses 2 and reaches bob.
func TestRingGroupFallbackToMenu(t *testing.T) {
	srv := pbxServer(t)
	cli(t, srv, "ivr", "add", "700", "--prompt", promptWAV(t), "--option", "2=bob")
	cli(t, srv, "group", "add", "605", "--members", "carol", "--ring-time", "2s", "--fallback", "700")
	time.Sleep(1500 * time.Millisecond)
	waitCarol := rings(t, srv, "carol", mpCarol)
	waitBob := echoes(t, srv, "bob", mpBob)
	r := callGroup(t, srv, ivrScenario(t, "uac_ivr.xml", "2", 3*time.Second, 2*time.Second), "605")
	mustExit0(t, "caller", r, "answered by the fallback menu, connected, then its own BYE")
	mustExit0(t, "carol", waitCarol(), "rang, then CANCEL")
	mustExit0(t, "bob", waitBob(), "rung by the menu, answered")
	for _, want := range [][]string{{`group not answered: fallback`, `group=605`, `fallback=700`},
		{`call answered by application`, `number=700`}, {`IVR menu call`, `outcome=connected`, `destination=bob`}} {
		if _, err := srv.WaitLog(5*time.Second, want...); err != nil {
			t.Error(err)
		}
	}
	checkRelayed(t, srv)
	if c := lastCDR(t, srv); c.Disposition != "ANSWERED" || c.Dialed != "605" || c.Callee != "bob" {
		t.Errorf("CDR %+v: want ANSWERED, dialed 605, callee bob (who took the call in the end)", c)
	}
}

// TestIVRMenuBaresipAudio: alice (baresip, playing 440 Hz) calls menu 702
// and presses nothing: after the prompt (600 Hz) and the timeout the menu
// sends her to its default, bob (baresip, auto-answer, playing 1000 Hz).
// Audio crosses both ways through the relay the menu's endpoint handed
// its port to: bob's recording is alice's tone, and the end of alice's,
// after the prompt and the ringback, is bob's.
func TestIVRMenuBaresipAudio(t *testing.T) {
	const talk = 4 * time.Second
	srv := pbxServer(t)
	cli(t, srv, "ivr", "add", "702", "--prompt", promptWAV(t), "--option", "1=carol", "--timeout", "1s",
		"--retries", "0", "--default", "bob")
	time.Sleep(1500 * time.Millisecond)
	dir := t.TempDir()
	bob := harness.StartBaresip(t, harness.BaresipOptions{User: "bob", Password: "bob-secret-1", Server: srv.SIPAddr(),
		AnswerMode: "auto", RTPPorts: "38200-38299", AudioSource: toneFile(t, dir, "bob.wav", bobTone, talk+10*time.Second)})
	alice := harness.StartBaresip(t, harness.BaresipOptions{User: "alice", Password: "alice-secret-1", Server: srv.SIPAddr(),
		RTPPorts: "38000-38099", AudioSource: toneFile(t, dir, "alice.wav", aliceTone, talk+15*time.Second)})
	for _, b := range []*harness.Baresip{bob, alice} {
		if err := b.WaitRegisterOKs(0, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := alice.Dial("sip:702@" + srv.Domain); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.WaitOutput(10*time.Second, `Call established: sip:702@`); err != nil {
		t.Fatalf("alice: %v", err)
	}
	// The prompt (1.5 s) and the timeout (1 s), then bob rings.
	if _, err := bob.WaitOutput(10*time.Second, `Call established: sip:alice@`); err != nil {
		t.Fatalf("bob: %v", err)
	}
	time.Sleep(talk)
	if err := alice.Hangup(); err != nil {
		t.Fatal(err)
	}
	for _, b := range []*harness.Baresip{alice, bob} {
		if _, err := b.WaitOutput(5*time.Second, `Call with sip:\S+ terminated`); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := srv.WaitLog(5*time.Second, `IVR menu call`, `outcome=default`, `destination=bob`, `status=200`); err != nil {
		t.Error(err)
	}
	alice.Stop()
	bob.Stop()
	t.Run("bob hears alice", func(t *testing.T) {
		checkHeard(t, bob, aliceTone, bobTone, talk)
	})
	t.Run("alice hears the prompt, then bob", func(t *testing.T) {
		files := alice.Recordings()
		if len(files) != 1 {
			t.Fatalf("alice's recordings %q, want one", files)
		}
		a, err := harness.ReadWAV(files[0])
		if err != nil {
			t.Fatal(err)
		}
		windows := a.Windows(100 * time.Millisecond)
		if len(windows) < 60 {
			t.Fatalf("alice's recording is %v long", a.Duration())
		}
		heard := func(ws []harness.Audio, want, notWant float64) int {
			n := 0
			for _, w := range ws {
				if in := w.Tone(want); in >= toneLevel/2 && w.Tone(notWant) < in/10 {
					n++
				}
			}
			return n
		}
		// The prompt: most of the first second and a half.
		if n := heard(windows[2:14], menuTone, aliceTone); n < 9 {
			t.Errorf("the prompt's %v Hz in %d of the first 12 windows, want most", menuTone, n)
		}
		// bob: the last three seconds but the very end.
		last := windows[len(windows)-32 : len(windows)-2]
		if n := heard(last, bobTone, aliceTone); n < len(last)*9/10 {
			t.Errorf("bob's %v Hz in %d of the last %d windows, want 90%%", bobTone, n, len(last))
		}
	})
}

// TestIVRMenuNested: menu 700's option 9 is menu 701, which runs on the
// same call: the caller keys 9 and 2 quickly (type-ahead), so 701 takes
// the 2 at once and rings bob (its option 2).
func TestIVRMenuNested(t *testing.T) {
	srv := pbxServer(t)
	cli(t, srv, "ivr", "add", "701", "--prompt", promptWAV(t), "--option", "2=bob")
	cli(t, srv, "ivr", "add", "700", "--prompt", promptWAV(t), "--option", "2=carol", "--option", "9=701")
	time.Sleep(1500 * time.Millisecond)
	waitBob := echoes(t, srv, "bob", mpBob)
	r := callGroup(t, srv, ivrScenario(t, "uac_ivr.xml", "92", 3*time.Second, 2*time.Second), "700")
	mustExit0(t, "caller", r, "answered by the menu, connected, then its own BYE")
	mustExit0(t, "bob", waitBob(), "rung by the inner menu, answered")
	for _, want := range [][]string{{`IVR menu: connecting`, `menu=700`, `key=9`, `destination=701`},
		{`IVR menu: connecting`, `menu=701`, `key=2`, `destination=bob`},
		{`IVR menu call`, `menu=701`, `outcome=connected`, `destination=bob`, `status=200`},
		{`IVR menu call`, `menu=700`, `outcome=connected`, `destination=701`}} {
		if _, err := srv.WaitLog(5*time.Second, want...); err != nil {
			t.Error(err)
		}
	}
	checkRelayed(t, srv)
}
