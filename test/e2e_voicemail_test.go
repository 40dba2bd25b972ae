package test

// End-to-end tests of voicemail (issue 6: a DID or an unanswered call
// reaches a mailbox): baresip and sipp callers leave messages (a tone),
// which the CLI exports and a baresip phone hears back through the
// access number; sipp keys the menu; a SIP client subscribes to the
// mailbox's message-summary (RFC 3842).

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/voicemail"
	"github.com/kaopu/kaopu/test/harness"
)

// vmConfig: MD5 for sipp's digest, UK numbering for the DID, a user with
// a mailbox rings 3 s.
const vmConfig = sippConfig + "calls:\n  country_code: \"44\"\n  no_answer_timeout: 10s\n  voicemail_after: 3s\n"

// vmTone is what callers say in their messages.
const vmTone = 1400.0

// vmServer is a server with alice (1001), bob (1002, mailbox on), carol
// (1003) and dave (1004).
func vmServer(t *testing.T) *harness.Server {
	t.Helper()
	srv := harness.StartServer(t, harness.ServerOptions{Config: vmConfig, Args: []string{"--rtp-ports", "37500-37999"}})
	for i, u := range []string{"alice", "bob", "carol", "dave"} {
		harness.AddUser(t, srv.DataDir, u, u+"-secret-1", fmt.Sprint(1001+i))
	}
	cli(t, srv, "voicemail", "on", "bob")
	return srv
}

// vmScenario fills in a caller scenario (uac_ivr.xml, uac_ivr_did.xml):
// once answered it keys keys (RFC 4733), waits talk, then says vmTone
// for say (PCMU RTP), waits hangup and hangs up. extra headers go into
// the INVITEs.
func vmScenario(t *testing.T, name, keys string, talk, say, hangup time.Duration, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	p1, p2 := filepath.Join(dir, "keys.pcap"), filepath.Join(dir, "say.pcap")
	if _, err := harness.DTMFPcap(p1, keys, 101, 100000, 1000); err != nil {
		t.Fatal(err)
	}
	if _, err := harness.TonePcap(p2, vmTone, say, toneLevel, 900000, 9000); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(harness.Scenario(t, name))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer("@PCAP1@", p1, "@PCAP2@", p2, "@TALK@", fmt.Sprint(talk.Milliseconds()),
		"@HANGUP@", fmt.Sprint(hangup.Milliseconds())).Replace(string(b))
	for _, h := range extra {
		s = strings.ReplaceAll(s, "Max-Forwards: 70\nContent-Type: application/sdp", "Max-Forwards: 70\n"+h+"\nContent-Type: application/sdp")
	}
	out := filepath.Join(dir, name)
	if err := os.WriteFile(out, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// leaveMessage has alice call number, skip the greeting with #, say the
// tone for say and hang up.
func leaveMessage(t *testing.T, srv *harness.Server, number string, say time.Duration) {
	t.Helper()
	r := harness.Sipp(t, srv.SIPAddr(), "-sf", vmScenario(t, "uac_ivr.xml", "#", time.Second, say, say+time.Second),
		"-s", number, "-mp", fmt.Sprint(mpCaller), "-au", "alice", "-ap", "alice-secret-1", "-key", "caller", "alice",
		"-auth_uri", srv.Domain, "-timeout", "30s")
	mustExit0(t, "caller", r, "answered by voicemail, said the message, hung up")
}

// vmRow is a line of kaopu voicemail list.
var vmRow = regexp.MustCompile(`(?m)^(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s+\S+ \S+\s+(\S+)\s+(new|old)\s*$`)

// messages lists a mailbox: [id mailbox from name length status] rows.
func messages(t *testing.T, srv *harness.Server, user string) [][]string {
	t.Helper()
	var rows [][]string
	for _, m := range vmRow.FindAllStringSubmatch(cli(t, srv, "voicemail", "list", user), -1) {
		rows = append(rows, m[1:])
	}
	return rows
}

// waitMessages waits until user's mailbox holds n messages.
func waitMessages(t *testing.T, srv *harness.Server, user string, n int) [][]string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		rows := messages(t, srv, user)
		if len(rows) == n {
			return rows
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's mailbox: %q, want %d message(s)", user, rows, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkMessageTone exports message id and checks it holds vmTone for at
// least least (100 ms windows at half the level said or more).
func checkMessageTone(t *testing.T, srv *harness.Server, id string, least time.Duration) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "msg.wav")
	cli(t, srv, "voicemail", "export", id, path)
	a, err := harness.ReadWAV(path)
	if err != nil {
		t.Fatal(err)
	}
	if a.Rate != 8000 {
		t.Errorf("message at %d Hz, want 8000", a.Rate)
	}
	n := 0
	ws := a.Windows(100 * time.Millisecond)
	for _, w := range ws {
		if w.Tone(vmTone) >= toneLevel/2 {
			n++
		}
	}
	if got := time.Duration(n) * 100 * time.Millisecond; got < least || n < len(ws)*8/10 {
		t.Errorf("message %s: the tone in %d of %d windows (%v), want at least %v and 80%%", id, n, len(ws), got, least)
	}
}

// TestVoicemailNoAnswer: alice (baresip, saying vmTone) calls bob, whose
// phone rings and never answers: after calls.voicemail_after (3 s) the
// phone gets a CANCEL and the mailbox answers alice; the greeting, the
// beep, then her tone is recorded until her phone hangs up. The message
// (exported as WAV) holds her tone; the record says answered, callee bob,
// flagged voicemail.
func TestVoicemailNoAnswer(t *testing.T) {
	srv := vmServer(t)
	waitBob := rings(t, srv, "bob", mpBob)
	// Greeting for 1002 (about 7 s) and the beep, then 4 s of message:
	// baresip hangs up when its file ends.
	alice := harness.StartBaresip(t, harness.BaresipOptions{User: "alice", Password: "alice-secret-1", Server: srv.SIPAddr(),
		RTPPorts: "38000-38099", AudioSource: toneFile(t, t.TempDir(), "alice.wav", vmTone, 12*time.Second)})
	if err := alice.WaitRegisterOKs(0, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := alice.Dial("sip:1002@" + srv.Domain); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.WaitOutput(10*time.Second, `Call established: sip:1002@`); err != nil {
		t.Fatalf("alice: %v", err)
	}
	if took := time.Since(start); took < 2500*time.Millisecond || took > 6*time.Second {
		t.Errorf("answered after %v, want calls.voicemail_after (3 s)", took)
	}
	mustExit0(t, "bob", waitBob(), "rang, then CANCEL")
	if _, err := alice.WaitOutput(20*time.Second, `Call with \S+ terminated`); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.WaitLog(5*time.Second, `voicemail: message left`, `mailbox=bob`, `caller=1001`, `ended=hangup`); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.WaitLog(time.Second, `not answered: voicemail`, `no_answer=true`); err != nil {
		t.Error(err)
	}
	rows := waitMessages(t, srv, "bob", 1)
	if rows[0][2] != "1001" || rows[0][3] != "alice" || rows[0][5] != "new" {
		t.Errorf("message %q: want from 1001 (alice), new", rows[0])
	}
	checkMessageTone(t, srv, rows[0][0], 3*time.Second)
	c := lastCDR(t, srv)
	if c.Disposition != "ANSWERED" || c.Caller != "alice" || c.Callee != "bob" || !strings.Contains(c.Flags, "voicemail") {
		t.Errorf("CDR %+v: want ANSWERED, alice to bob, flagged voicemail", c)
	}
}

// TestVoicemailNotRegistered: bob has no phone registered: alice's call
// goes to his mailbox at once; # skips the greeting; the message holds
// what she said. Leaving a message with the deposit code (*98 + 1002)
// works the same.
func TestVoicemailNotRegistered(t *testing.T) {
	srv := vmServer(t)
	start := time.Now()
	leaveMessage(t, srv, "1002", 2500*time.Millisecond)
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("the call took %v: not straight to voicemail", took)
	}
	if _, err := srv.WaitLog(5*time.Second, `not registered: voicemail`); err != nil {
		t.Error(err)
	}
	if _, err := srv.WaitLog(5*time.Second, `voicemail: message left`, `mailbox=bob`, `caller=1001`); err != nil {
		t.Fatal(err)
	}
	rows := waitMessages(t, srv, "bob", 1)
	checkMessageTone(t, srv, rows[0][0], 2*time.Second)
	if c := lastCDR(t, srv); c.Disposition != "ANSWERED" || c.Callee != "bob" || c.Dialed != "1002" || !strings.Contains(c.Flags, "voicemail") {
		t.Errorf("CDR %+v: want ANSWERED, dialed 1002, callee bob, flagged voicemail", c)
	}

	leaveMessage(t, srv, "*981002", 1500*time.Millisecond)
	rows = waitMessages(t, srv, "bob", 2)
	checkMessageTone(t, srv, rows[1][0], time.Second)
	if c := lastCDR(t, srv); c.Disposition != "ANSWERED" || c.Callee != "bob" || c.Dialed != "*981002" {
		t.Errorf("CDR %+v: want ANSWERED, dialed *981002, callee bob", c)
	}
}

// TestVoicemailThroughDID: a carrier's calls to a DID whose target is
// voicemail:bob leave messages in bob's mailbox, with the carrier's
// caller number; a caller who asks for privacy is recorded anonymous.
// A DID to voicemail: asks for the mailbox and its PIN: a wrong PIN is
// refused, the right one opens bob's mailbox.
func TestVoicemailThroughDID(t *testing.T) {
	srv := vmServer(t)
	cli(t, srv, "trunk", "add", "carrier", "--address", "127.0.0.4:5060", "--qualify", "0")
	cli(t, srv, "did", "add", "02071230800", "--to", "voicemail:bob", "--trunk", "carrier", "--config", srv.ConfigFile)
	time.Sleep(1500 * time.Millisecond) // the server reloads DIDs within a second
	for i, extra := range [][]string{nil, {"Privacy: id"}} {
		r := harness.Sipp(t, srv.SIPAddr(), "-sf", vmScenario(t, "uac_ivr_did.xml", "#", time.Second, 2*time.Second, 3*time.Second, extra...),
			"-s", "+442071230800", "-i", "127.0.0.4", "-mp", fmt.Sprint(mpCarrier), "-key", "caller", "+15551230000", "-timeout", "30s")
		mustExit0(t, "carrier", r, "answered by the mailbox, said the message, hung up")
		waitMessages(t, srv, "bob", i+1)
	}
	rows := messages(t, srv, "bob")
	if rows[0][2] != "+15551230000" || rows[1][2] != "anonymous" {
		t.Errorf("messages %q: want from +15551230000, then anonymous", rows)
	}
	checkMessageTone(t, srv, rows[0][0], 1500*time.Millisecond)
	if c := lastCDR(t, srv); c.Disposition != "ANSWERED" || c.Callee != "bob" || !strings.Contains(c.Dialed, "2071230800") {
		t.Errorf("CDR %+v: want ANSWERED, the DID dialed, callee bob", c)
	}

	// A DID to voicemail: is the mailbox login: mailbox number and PIN.
	cli(t, srv, "voicemail", "on", "bob", "--pin", "4321")
	cli(t, srv, "did", "add", "02071230801", "--to", "voicemail:", "--trunk", "carrier", "--config", srv.ConfigFile)
	time.Sleep(1500 * time.Millisecond)
	for _, c := range []struct{ keys, log string }{
		{"1002#1111#", `voicemail: wrong mailbox or PIN`},
		{"1002#4321#", `voicemail: login.*mailbox=bob`},
	} {
		r := harness.Sipp(t, srv.SIPAddr(), "-sf", vmScenario(t, "uac_ivr_did.xml", c.keys, 2500*time.Millisecond, 200*time.Millisecond, 300*time.Millisecond),
			"-s", "+442071230801", "-i", "127.0.0.4", "-mp", fmt.Sprint(mpCarrier), "-key", "caller", "+15551230000", "-timeout", "30s")
		mustExit0(t, "carrier", r, "keyed mailbox and PIN, hung up")
		if _, err := srv.WaitLog(5*time.Second, c.log); err != nil {
			t.Error(err)
		}
	}
	if _, err := srv.WaitLog(5*time.Second, `voicemail: retrieval`, `mailbox=bob`, `new=2`); err != nil {
		t.Error(err)
	}
}

// TestVoicemailRetrieve: alice leaves bob a message (vmTone); bob's
// phone (baresip, recording what it hears) dials *97 and hears the
// message among the prompts; it is then old. From sipp, bob dials *97
// again and presses 7: the message is deleted.
func TestVoicemailRetrieve(t *testing.T) {
	srv := vmServer(t)
	leaveMessage(t, srv, "*981002", 2500*time.Millisecond)
	waitMessages(t, srv, "bob", 1)

	bob := harness.StartBaresip(t, harness.BaresipOptions{User: "bob", Password: "bob-secret-1", Server: srv.SIPAddr(),
		RTPPorts: "38200-38299", AudioSource: toneFile(t, t.TempDir(), "bob.wav", bobTone, 30*time.Second)})
	if err := bob.WaitRegisterOKs(0, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := bob.Dial("sip:*97@" + srv.Domain); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.WaitOutput(10*time.Second, `Call established`); err != nil {
		t.Fatalf("bob: %v", err)
	}
	// "You have one new message", the header (about 5 s), the message.
	time.Sleep(11 * time.Second)
	if err := bob.Hangup(); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.WaitOutput(5*time.Second, `Call with \S+ terminated`); err != nil {
		t.Fatal(err)
	}
	bob.Stop()
	files := bob.Recordings()
	if len(files) != 1 {
		t.Fatalf("bob's recordings %q, want one", files)
	}
	a, err := harness.ReadWAV(files[0])
	if err != nil {
		t.Fatal(err)
	}
	heard := 0
	for _, w := range a.Windows(100 * time.Millisecond) {
		if w.Tone(vmTone) >= toneLevel/2 {
			heard++
		}
	}
	if heard < 18 {
		t.Errorf("bob heard the message's tone in %d windows of 100 ms, want the 2.5 s said (18 or more)", heard)
	}
	if rows := waitMessages(t, srv, "bob", 1); rows[0][5] != "old" {
		t.Errorf("message %q: want old once heard", rows[0])
	}

	r := harness.Sipp(t, srv.SIPAddr(), "-sf", vmScenario(t, "uac_ivr.xml", "7", 300*time.Millisecond, 200*time.Millisecond, 500*time.Millisecond),
		"-s", "*97", "-mp", fmt.Sprint(mpBob), "-au", "bob", "-ap", "bob-secret-1", "-key", "caller", "bob",
		"-auth_uri", srv.Domain, "-timeout", "30s")
	mustExit0(t, "bob (sipp)", r, "pressed 7, hung up")
	if _, err := srv.WaitLog(5*time.Second, `voicemail: message deleted`, `mailbox=bob`); err != nil {
		t.Error(err)
	}
	waitMessages(t, srv, "bob", 0)
}

// TestVoicemailMWI: bob's SIP client subscribes to message-summary for
// his own address (digest authenticated) and gets a NOTIFY at once
// (no messages), another when alice leaves a message (yes, 1/0), and
// more when bob hears and deletes it (no, 0/0). Subscribing to another
// user's mailbox is forbidden; another event package is 489.
func TestVoicemailMWI(t *testing.T) {
	srv := vmServer(t)
	c := harness.Dial(t, "udp", srv.SIPAddr())
	c.Domain = srv.Domain
	var sent *harness.Request // the last SUBSCRIBE with credentials
	subscribe := func(user string, event string, expires int) *harness.Message {
		t.Helper()
		req := c.NewRequest("SUBSCRIBE", "sip:"+user+"@"+srv.Domain, "bob")
		req.Set("To", "<sip:"+user+"@"+srv.Domain+">")
		req.Add("Contact", "<"+c.ContactURI("bob")+">")
		req.Add("Event", event)
		req.Add("Accept", voicemail.ContentType)
		req.Add("Expires", fmt.Sprint(expires))
		res, err := c.DoAuth(req, "bob", "bob-secret-1", []string{"MD5"}, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		sent = res.Sent
		return res.Final
	}
	if res := subscribe("alice", "message-summary", 600); res.StatusCode() != 403 {
		t.Errorf("bob subscribing to alice's mailbox: %s, want 403", res.Status())
	}
	if res := subscribe("bob", "presence", 600); res.StatusCode() != 489 {
		t.Errorf("event presence: %s, want 489 Bad Event", res.Status())
	}
	res := subscribe("bob", "message-summary", 600)
	if res.StatusCode() != 200 || !strings.Contains(res.Get("To"), "tag=") {
		t.Fatalf("subscription: %s (To %q), want 200 with a To tag", res.Status(), res.Get("To"))
	}
	if n := srv.Metric(t, "kaopu_mwi_subscriptions"); n != 1 {
		t.Errorf("kaopu_mwi_subscriptions = %v, want 1", n)
	}
	dialogTo, subscription := res.Get("To"), sent
	notified := func(want voicemail.Summary, waiting bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			m, err := c.Read(time.Until(deadline))
			if err != nil {
				t.Fatalf("waiting for a NOTIFY with %+v: %v", want, err)
			}
			if m.IsResponse() || !strings.HasPrefix(m.StartLine, "NOTIFY ") {
				continue
			}
			replyOK(t, c, m)
			if m.Get("Event") != "message-summary" || !strings.HasPrefix(m.Get("Subscription-State"), "active") {
				t.Errorf("NOTIFY Event %q, Subscription-State %q", m.Get("Event"), m.Get("Subscription-State"))
			}
			got, w, err := voicemail.ParseSummary(m.Body)
			if err != nil {
				t.Fatalf("NOTIFY body %q: %v", m.Body, err)
			}
			if got == want && w == waiting {
				return
			}
		}
	}
	notified(voicemail.Summary{}, false)
	leaveMessage(t, srv, "*981002", 1500*time.Millisecond)
	notified(voicemail.Summary{New: 1}, true)
	r := harness.Sipp(t, srv.SIPAddr(), "-sf", vmScenario(t, "uac_ivr.xml", "7", 300*time.Millisecond, 200*time.Millisecond, 500*time.Millisecond),
		"-s", "*97", "-mp", fmt.Sprint(mpBob), "-au", "bob", "-ap", "bob-secret-1", "-key", "caller", "bob",
		"-auth_uri", srv.Domain, "-timeout", "30s")
	mustExit0(t, "bob (sipp)", r, "pressed 7, hung up")
	notified(voicemail.Summary{}, false)
	waitMessages(t, srv, "bob", 0)

	// Unsubscribing (Expires: 0 in the subscription's dialog) gets 200
	// and a last NOTIFY that ends it.
	unsub := subscription.Clone()
	unsub.Del("Authorization")
	unsub.Set("To", dialogTo)
	unsub.Set("Expires", "0")
	unsub.Set("CSeq", "100 SUBSCRIBE")
	unsub.Set("Via", fmt.Sprintf("SIP/2.0/UDP %s;branch=z9hG4bK%s;rport", c.LocalAddr(), harness.RandomToken()))
	r2, err := c.DoAuth(unsub, "bob", "bob-secret-1", []string{"MD5"}, 5*time.Second)
	if err != nil || r2.Final.StatusCode() != 200 {
		t.Fatalf("unsubscribing: %v %v", r2, err)
	}
	for {
		m, err := c.Read(5 * time.Second)
		if err != nil {
			t.Fatalf("no final NOTIFY: %v", err)
		}
		if !m.IsResponse() && strings.HasPrefix(m.StartLine, "NOTIFY ") {
			replyOK(t, c, m)
			if strings.HasPrefix(m.Get("Subscription-State"), "terminated") {
				break
			}
		}
	}
	if n := srv.Metric(t, "kaopu_mwi_subscriptions"); n != 0 {
		t.Errorf("kaopu_mwi_subscriptions = %v after unsubscribing, want 0", n)
	}
}

// replyOK answers a request the server sent with 200.
func replyOK(t *testing.T, c *harness.Client, m *harness.Message) {
	t.Helper()
	var b strings.Builder
	b.WriteString("SIP/2.0 200 OK\r\n")
	for _, h := range []string{"Via", "From", "To", "Call-ID", "CSeq"} {
		for _, v := range m.Values(h) {
			fmt.Fprintf(&b, "%s: %s\r\n", h, v)
		}
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	if err := c.Send([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
}

// TestVoicemailOff: with bob's mailbox off again, a call to bob (not
// registered) fails with 480 as before voicemail.
func TestVoicemailOff(t *testing.T) {
	srv := vmServer(t)
	cli(t, srv, "voicemail", "off", "bob")
	r := callGroup(t, srv, failingCaller(t, 480), "1002")
	mustExit0(t, "caller", r, "480: not registered, no mailbox")
	if c := lastCDR(t, srv); c.Cause != 480 || strings.Contains(c.Flags, "voicemail") {
		t.Errorf("CDR %+v: want cause 480, no voicemail", c)
	}
	if rows := messages(t, srv, "bob"); len(rows) != 0 {
		t.Errorf("messages %q, want none", rows)
	}
}

// TestVoicemailGroupFallback: ring group 600 (carol, 2 s) falls back to
// voicemail:bob: carol rings and is cancelled, bob's mailbox answers the
// still-ringing caller and keeps the message; the record names bob.
func TestVoicemailGroupFallback(t *testing.T) {
	srv := vmServer(t)
	cli(t, srv, "group", "add", "600", "--members", "carol", "--ring-time", "2s", "--fallback", "voicemail:bob")
	time.Sleep(1500 * time.Millisecond) // the server reloads groups within a second
	waitCarol := rings(t, srv, "carol", mpCarol)
	leaveMessage(t, srv, "600", 1500*time.Millisecond)
	mustExit0(t, "carol", waitCarol(), "rang, then CANCEL")
	if _, err := srv.WaitLog(5*time.Second, `group not answered: fallback`, `group=600`, `fallback=voicemail:bob`); err != nil {
		t.Error(err)
	}
	rows := waitMessages(t, srv, "bob", 1)
	checkMessageTone(t, srv, rows[0][0], time.Second)
	if c := lastCDR(t, srv); c.Disposition != "ANSWERED" || c.Dialed != "600" || c.Callee != "bob" || !strings.Contains(c.Flags, "voicemail") {
		t.Errorf("CDR %+v: want ANSWERED, dialed 600, callee bob, flagged voicemail", c)
	}
}
