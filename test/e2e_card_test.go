package test

// End-to-end tests of the calling-card service (issue 6, item 6): sipp
// calls the access number and keys in the card number, PIN and destination
// as RFC 4733 events played from pcap files the test writes.

import (
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/media/codec"
	"github.com/kaopu/kaopu/test/harness"
)

const cardConfig = sippConfig + `cards:
  access: ["8800"]
  digit_timeout: 4s
calls:
  country_code: "49"
security:
  ban_failures: 3
  ban_window: 60s
  ban_time: 60s
`

const (
	cardNumber = "555000111222"
	cardPIN    = "2468"
)

// cardRTPPorts is the card tests' server RTP range (kept apart from the
// other tests that may run at the same time).
const cardRTPPorts = "34500-34999"

// cardServer is a server with the service on 8800, caller alice, a rate
// deck "cards" (Germany 0.10 a minute, per minute) and one card worth
// 5.00 on it; calls are more keys of the config's calls section.
func cardServer(t *testing.T, calls ...string) *harness.Server {
	t.Helper()
	config := strings.Replace(cardConfig, "calls:\n", "calls:\n"+strings.Join(calls, ""), 1)
	srv := harness.StartServer(t, harness.ServerOptions{Config: config,
		Args: []string{"--rtp-ports", cardRTPPorts}})
	harness.AddUser(t, srv.DataDir, "alice", "alice-secret-1", "1001")
	dir := t.TempDir()
	deck := filepath.Join(dir, "deck.csv")
	os.WriteFile(deck, []byte("prefix,destination,rate,connect,initial,increment\n49,Germany,0.10,0,60,60\n"), 0o600)
	if out, code := harness.RunCLI(t, "rate", "import", "cards", deck, "--currency", "EUR", "--data", srv.DataDir); code != 0 {
		t.Fatalf("kaopu rate import: exit %d\n%s", code, out)
	}
	csv := filepath.Join(dir, "cards.csv")
	os.WriteFile(csv, []byte("number,pin,value,currency\n"+cardNumber+","+cardPIN+",5.00,EUR\n"), 0o600)
	if out, code := harness.RunCLI(t, "card", "import", csv, "--plan", "cards", "--data", srv.DataDir); code != 0 {
		t.Fatalf("kaopu card import: exit %d\n%s", code, out)
	}
	return srv
}

// cardCall runs uac_card.xml from source IP src, keying the three digit
// strings one after another; after each it waits for the file to play and
// then pause.
func cardCall(t *testing.T, srv *harness.Server, src string, keys [3]string, pause time.Duration) *harness.SippResult {
	t.Helper()
	scenario, timeout := cardScenario(t, "uac_card.xml", keys, pause)
	return harness.Sipp(t, srv.SIPAddr(), "-sf", scenario, "-s", "8800", "-i", src,
		"-au", "alice", "-ap", "alice-secret-1", "-key", "caller", "alice", "-auth_uri", srv.Domain, "-timeout", timeout)
}

// cardScenario writes the named scenario with the pcap files of keys and
// the pauses filled in, and returns it with a sipp -timeout to match.
func cardScenario(t *testing.T, name string, keys [3]string, pause time.Duration) (path, timeout string) {
	t.Helper()
	b, err := os.ReadFile(harness.Scenario(t, name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	dir := t.TempDir()
	total := time.Duration(0)
	for i, k := range keys {
		pcap := filepath.Join(dir, fmt.Sprintf("keys%d.pcap", i+1))
		// Each file's events get their own timestamps (see DTMFPcap).
		d, err := harness.DTMFPcap(pcap, k, 101, uint32(100000*(i+1)), uint16(1000*(i+1)))
		if err != nil {
			t.Fatal(err)
		}
		total += d + pause
		s = strings.ReplaceAll(s, fmt.Sprintf("@PCAP%d@", i+1), pcap)
		s = strings.ReplaceAll(s, fmt.Sprintf("@PAUSE%d@", i+1), fmt.Sprint((d + pause).Milliseconds()))
	}
	scenario := filepath.Join(dir, name)
	if err := os.WriteFile(scenario, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	// The prompts after the last digits take about 15 s at most.
	return scenario, fmt.Sprintf("%ds", int((total + 40*time.Second).Seconds()))
}

// TestCallingCardSipp: the caller keys the card number, the PIN and a
// national number; the service checks the card, says the balance,
// normalizes the number to E.164 with the configured country, reserves
// the call on the card's account (5.00 at 0.10 a minute: 50 minutes,
// said), and, with no trunk route for the number (none configured), says the
// number cannot be reached and hangs up (BYE). The reservation is
// released without a charge, and the call's CDR is an answered call to
// 8800.
func TestCallingCardSipp(t *testing.T) {
	srv := cardServer(t)
	start := time.Now()
	r := cardCall(t, srv, "127.0.0.1", [3]string{cardNumber + "#", cardPIN + "#", "030123456#"}, 300*time.Millisecond)
	if r.ExitCode != 0 {
		t.Fatalf("sipp: exit %d, want 0 (answered, then a BYE from the service)\n%s", r.ExitCode, r.Errors)
	}
	took := time.Since(start)
	if _, err := srv.WaitLog(5*time.Second, `calling card call`, `outcome=not_connected`, `card=`+cardNumber,
		`destination=\+4930123456`, `max=50m0s`, `status=503`, `cost=0 `, `failures=0`); err != nil {
		t.Fatalf("service log: %v", err)
	}
	// The prompts were played, paced: welcome to goodbye takes seconds, not
	// the moment a service that skipped them would take.
	if took < 10*time.Second {
		t.Errorf("the whole call took %v: the prompts cannot have played", took)
	}
	out, code := harness.RunCLI(t, "card", "list", "--data", srv.DataDir)
	if code != 0 || !strings.Contains(strings.Join(strings.Fields(out), " "), cardNumber+" 5.00 EUR") || strings.Contains(out, cardPIN) {
		t.Errorf("kaopu card list: %q", out)
	}
	out, code = harness.RunCLI(t, "cdr", "export", "--format", "csv", "--data", srv.DataDir)
	if code != 0 || !strings.Contains(out, "8800") || !strings.Contains(strings.ToLower(out), "answered") {
		t.Errorf("CDR of the service call: %q", out)
	}
}

// TestCallingCardWrongPINs: three wrong PINs in a call end it (the service
// hangs up) and, with security.ban_failures 3, ban the caller's source
// address, as `kaopu ban list` shows.
func TestCallingCardWrongPINs(t *testing.T) {
	srv := cardServer(t)
	const src = "127.0.0.2" // the banned address: not the harness's own
	r := cardCall(t, srv, src, [3]string{cardNumber + "#1111#", cardNumber + "#2222#", cardNumber + "#3333#"}, 2500*time.Millisecond)
	if r.ExitCode != 0 {
		t.Fatalf("sipp: exit %d, want 0 (answered, then a BYE from the service)\n%s", r.ExitCode, r.Errors)
	}
	if _, err := srv.WaitLog(5*time.Second, `calling card call`, `outcome=bad_pin`, `failures=3`); err != nil {
		t.Fatalf("service log: %v", err)
	}
	if n := strings.Count(srv.Log(), "wrong card number or PIN"); n != 3 {
		t.Errorf("%d wrong-PIN log lines, want 3", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, _ := harness.RunCLI(t, "ban", "list", "--data", srv.DataDir)
		if strings.Contains(out, src) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not banned after three wrong PINs: %q", src, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if strings.Contains(srv.Log(), "1111") || strings.Contains(srv.Log(), "2222") {
		t.Error("a PIN entered appears in the server log")
	}
}

// TestCallingCardDID: a carrier's call to a DID mapped to the access
// number (kaopu did add NUMBER --to 8800) reaches the service without
// digest auth. Three wrong PINs end it, but the carrier's address, which
// carries every caller's calls, is not counted toward a ban.
func TestCallingCardDID(t *testing.T) {
	srv := cardServer(t)
	cli(t, srv, "trunk", "add", "carrier", "--address", "127.0.0.4:5060", "--qualify", "0")
	cli(t, srv, "did", "add", "030 5550 100", "--to", "8800", "--trunk", "carrier", "--config", srv.ConfigFile)
	time.Sleep(1500 * time.Millisecond) // the server reloads trunks and DIDs within a second
	scenario, timeout := cardScenario(t, "uac_card_did.xml",
		[3]string{cardNumber + "#1111#", cardNumber + "#2222#", cardNumber + "#3333#"}, 2500*time.Millisecond)
	r := harness.Sipp(t, srv.SIPAddr(), "-sf", scenario, "-s", "+49305550100", "-i", "127.0.0.4",
		"-key", "caller", "+4915112345", "-timeout", timeout)
	if r.ExitCode != 0 {
		t.Fatalf("carrier: exit %d, want 0 (answered without auth, then a BYE from the service)\n%s", r.ExitCode, r.Errors)
	}
	if _, err := srv.WaitLog(5*time.Second, `call answered by application`, `from=\+4915112345`); err != nil {
		t.Fatalf("service log: %v", err)
	}
	if _, err := srv.WaitLog(5*time.Second, `calling card call`, `outcome=bad_pin`, `failures=3`); err != nil {
		t.Fatalf("service log: %v", err)
	}
	time.Sleep(1500 * time.Millisecond) // bans are written behind, within a second
	if out, _ := harness.RunCLI(t, "ban", "list", "--data", srv.DataDir); strings.Contains(out, "127.0.0.4") {
		t.Fatalf("the carrier was banned for its callers' wrong PINs: %q", out)
	}
}

// cardTrunk adds trunk "carrier" at 127.0.0.5 on a free port, with a
// route for +49 to it, and returns the port.
func cardTrunk(t *testing.T, srv *harness.Server) int {
	t.Helper()
	port := harness.FreePort(t, "udp")
	cli(t, srv, "trunk", "add", "carrier", "--address", fmt.Sprintf("127.0.0.5:%d", port), "--qualify", "0")
	cli(t, srv, "route", "add", "de", "--pattern", "+49", "--trunks", "carrier")
	time.Sleep(1500 * time.Millisecond) // the server reloads trunks every second
	return port
}

// talkScenario is uac_card_talk.xml for keys: once the destination is
// keyed it waits talk, plays four digits (RTP for the relay) and hangs up
// after hangup; it returns the scenario and a sipp -timeout in seconds.
func talkScenario(t *testing.T, keys [3]string, talk, hangup time.Duration) (string, time.Duration) {
	t.Helper()
	scenario, timeout := cardScenario(t, "uac_card_talk.xml", keys, 300*time.Millisecond)
	pcap4 := filepath.Join(t.TempDir(), "talk.pcap")
	if _, err := harness.DTMFPcap(pcap4, "1234", 101, 900000, 9000); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(scenario)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer("@TALK@", fmt.Sprint(talk.Milliseconds()), "@PCAP4@", pcap4,
		"@HANGUP@", fmt.Sprint(hangup.Milliseconds())).Replace(string(b))
	if err := os.WriteFile(scenario, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	to, _ := time.ParseDuration(timeout)
	return scenario, to + talk + hangup
}

func secs(d time.Duration) string { return fmt.Sprintf("%ds", int(d.Seconds())) }

// cardCaller runs a card caller scenario as alice.
func cardCaller(t *testing.T, srv *harness.Server, scenario string, timeout time.Duration) *harness.SippResult {
	t.Helper()
	return harness.Sipp(t, srv.SIPAddr(), "-sf", scenario, "-s", "8800", "-i", "127.0.0.1",
		"-au", "alice", "-ap", "alice-secret-1", "-key", "caller", "alice", "-auth_uri", srv.Domain, "-timeout", secs(timeout))
}

// TestCallingCardConnected: the destination goes out through a trunk. A
// route for +49 sends it to a sipp carrier, which gets the INVITE for the
// number in E.164, answers with PCMU and telephone-event, and echoes the
// RTP it gets. The caller, connected without a re-INVITE, keys four digits
// (RTP the relay must carry to the carrier and back) and hangs up a few
// seconds later; the BYE reaches the carrier. The card is charged one
// increment of its rate (0.10 a minute, per minute: 5.00 - 0.10 = 4.90),
// which its account's ledger shows.
func TestCallingCardConnected(t *testing.T) {
	srv := cardServer(t)
	port := cardTrunk(t, srv)
	// The minutes and "connecting" take a few seconds after the number;
	// then the carrier answers at once.
	scenario, timeout := talkScenario(t, [3]string{cardNumber + "#", cardPIN + "#", "030123456#"}, 9*time.Second, 2500*time.Millisecond)
	wait := callee(t, port, "-i", "127.0.0.5", "-sf", harness.Scenario(t, "uas_carrier_dtmf.xml"), "-rtp_echo",
		"-timeout", secs(timeout+15*time.Second))
	r := cardCaller(t, srv, scenario, timeout)
	if r.ExitCode != 0 {
		t.Fatalf("caller: exit %d, want 0 (connected, then its own BYE answered)\n%s", r.ExitCode, r.Errors)
	}
	u := wait()
	if u.ExitCode != 0 {
		t.Fatalf("carrier: exit %d, want 0 (INVITE answered, then the caller's BYE)\n%s", u.ExitCode, u.Errors)
	}
	if inv := receivedInvite(t, u); inv.StartLine != fmt.Sprintf("INVITE sip:+4930123456@127.0.0.5:%d SIP/2.0", port) {
		t.Errorf("carrier got %q, want the destination in E.164", inv.StartLine)
	}
	if _, err := srv.WaitLog(5*time.Second, `calling card call`, `outcome=connected`, `card=`+cardNumber,
		`destination=\+4930123456`, `status=200`, `cost=0.10? `); err != nil {
		t.Fatalf("service log: %v", err)
	}
	line, err := srv.WaitLog(time.Second, `application call media`)
	if err != nil {
		t.Fatalf("service log: %v", err)
	}
	t.Log(line)
	// Every leg moved packets: the caller's digits went to the carrier,
	// and its echo came back to the caller.
	for _, k := range []string{"caller_packets_in", "carrier_packets_out", "carrier_packets_in", "caller_packets_out"} {
		m := regexp.MustCompile(k + `=(\d+)`).FindStringSubmatch(line)
		if m == nil || m[1] == "0" {
			t.Errorf("relay %s: %q", k, line)
		}
	}
	talk := regexp.MustCompile(`talk=([0-9.]+)s`).FindStringSubmatch(line)
	if talk == nil {
		t.Fatalf("no talk time: %q", line)
	}
	if sec, _ := strconv.ParseFloat(talk[1], 64); sec < 2 || sec > 12 {
		t.Errorf("talk %ss, want the few seconds between the answer and the caller's BYE", talk[1])
	}
	out := cli(t, srv, "card", "list")
	if !strings.Contains(strings.Join(strings.Fields(out), " "), cardNumber+" 4.90 EUR") {
		t.Errorf("kaopu card list after a call of under a minute at 0.10 a minute: %q", out)
	}
	out = cli(t, srv, "account", "show", "card-"+cardNumber)
	if !strings.Contains(out, "4.90 EUR") || !strings.Contains(out, "-0.10") || !strings.Contains(out, "call to +4930123456") {
		t.Errorf("kaopu account show card-%s: %q", cardNumber, out)
	}
	// The call's record carries the outbound leg as a rated trunk call's
	// does, and the card's debit names it.
	rec := cardCDR(t, srv)
	for k, want := range map[string]string{"dialed": "8800", "cause": "200", "trunk": "carrier", "number": "+4930123456",
		"account": "card-" + cardNumber, "destination": "Germany", "rate": "0.1", "billed": "60", "cost": "0.1", "currency": "EUR"} {
		if rec[k] != want {
			t.Errorf("CDR %s = %q, want %q", k, rec[k], want)
		}
	}
	answer, err1 := time.Parse(time.RFC3339, rec["answer"])
	trunkAnswer, err2 := time.Parse(time.RFC3339, rec["trunk_answer"])
	if err1 != nil || err2 != nil || trunkAnswer.Sub(answer) < 5*time.Second {
		t.Errorf("CDR answer %q, trunk_answer %q: the carrier answers after the prompts, seconds after the service", rec["answer"], rec["trunk_answer"])
	}
	if !regexp.MustCompile(`(?m)-0\.10\s+4\.90\s+call to \+4930123456 \(Germany\)\s+` + rec["id"] + `\s*$`).MatchString(out) {
		t.Errorf("the card's debit does not name CDR %s:\n%s", rec["id"], out)
	}
}

// cardCDR is the only record of the server's calls, by CSV column.
func cardCDR(t *testing.T, srv *harness.Server) map[string]string {
	t.Helper()
	out := cli(t, srv, "cdr", "export", "--format", "csv")
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) != 2 {
		t.Fatalf("cdr export: want one record: %v\n%s", err, out)
	}
	rec := map[string]string{}
	for i, h := range rows[0] {
		rec[h] = rows[1][i]
	}
	return rec
}

// TestCallingCardRingingHangup: the caller hangs up while the carrier
// still rings: the carrier gets a CANCEL, and the card is not charged.
func TestCallingCardRingingHangup(t *testing.T) {
	srv := cardServer(t)
	port := cardTrunk(t, srv)
	scenario, timeout := talkScenario(t, [3]string{cardNumber + "#", cardPIN + "#", "030123456#"}, 9*time.Second, 500*time.Millisecond)
	wait := callee(t, port, "-i", "127.0.0.5", "-sf", harness.Scenario(t, "uas_ring_until_cancel.xml"),
		"-timeout", secs(timeout+15*time.Second))
	r := cardCaller(t, srv, scenario, timeout)
	if r.ExitCode != 0 {
		t.Fatalf("caller: exit %d, want 0 (its BYE answered while the carrier rang)\n%s", r.ExitCode, r.Errors)
	}
	if u := wait(); u.ExitCode != 0 {
		t.Fatalf("carrier: exit %d, want 0 (rang, then CANCEL)\n%s", u.ExitCode, u.Errors)
	}
	if _, err := srv.WaitLog(5*time.Second, `calling card call`, `outcome=(hangup|not_connected)`, `status=487`, `talk=0s`, `cost=0 `); err != nil {
		t.Fatalf("service log: %v", err)
	}
	if out := cli(t, srv, "card", "list"); !strings.Contains(strings.Join(strings.Fields(out), " "), cardNumber+" 5.00 EUR") {
		t.Errorf("kaopu card list after an unanswered call: %q", out)
	}
}

// TestCallingCardCreditCut: a card worth 0.03 on a per-second rate of
// 0.60 a minute pays for 3 seconds: the service says so, the warning tone
// plays at once (less than a minute left), and at 3 s both the caller and
// the carrier get a BYE from the server. The card is charged the 3 s in
// full: balance 0.00.
func TestCallingCardCreditCut(t *testing.T) {
	srv := cardServer(t)
	port := cardTrunk(t, srv)
	dir := t.TempDir()
	deck := filepath.Join(dir, "fast.csv")
	os.WriteFile(deck, []byte("prefix,destination,rate,connect,initial,increment\n49,Germany,0.60,0,1,1\n"), 0o600)
	cli(t, srv, "rate", "import", "fast", deck, "--currency", "EUR")
	const number, pin = "555000999888", "1357"
	csv := filepath.Join(dir, "cards.csv")
	os.WriteFile(csv, []byte("number,pin,value,currency\n"+number+","+pin+",0.03,EUR\n"), 0o600)
	cli(t, srv, "card", "import", csv, "--plan", "fast")

	wait := callee(t, port, "-i", "127.0.0.5", "-sf", harness.Scenario(t, "uas_carrier_dtmf.xml"), "-timeout", "60s")
	scenario, timeout := cardScenario(t, "uac_card.xml", [3]string{number + "#", pin + "#", "030123456#"}, 300*time.Millisecond)
	r := harness.Sipp(t, srv.SIPAddr(), "-sf", scenario, "-s", "8800", "-i", "127.0.0.1",
		"-au", "alice", "-ap", "alice-secret-1", "-key", "caller", "alice", "-auth_uri", srv.Domain, "-timeout", timeout)
	if r.ExitCode != 0 {
		t.Fatalf("caller: exit %d, want 0 (connected, then the server's BYE)\n%s", r.ExitCode, r.Errors)
	}
	if u := wait(); u.ExitCode != 0 {
		t.Fatalf("carrier: exit %d, want 0 (answered, then the server's BYE)\n%s", u.ExitCode, u.Errors)
	}
	for _, want := range [][]string{{`credit running out: warning tone`}, {`credit exhausted, hanging up`, `after=3s`},
		{`calling card call`, `outcome=connected`, `max=3s`, `status=200`, `talk=3s`, `cost=0.03 `}} {
		if _, err := srv.WaitLog(5*time.Second, want...); err != nil {
			t.Errorf("service log: %v", err)
		}
	}
	out := cli(t, srv, "account", "show", "card-"+number)
	if !strings.Contains(out, "0.00 EUR") || !strings.Contains(out, "-0.03") {
		t.Errorf("kaopu account show card-%s: %q", number, out)
	}
}

// cardRTPCapture captures what the server's card RTP ports send to the
// caller (sipp at 127.0.0.1).
func cardRTPCapture(t *testing.T) *harness.Capture {
	return harness.StartCapture(t, "udp and src portrange "+cardRTPPorts+" and dst host 127.0.0.1")
}

// ringbackRun is the longest run of 20 ms PCMU frames the capture holds
// that are a 425 Hz tone (its Goertzel amplitude most of the frame's
// RMS), in frames.
func ringbackRun(t *testing.T, c *harness.Capture) (run, frames int) {
	t.Helper()
	c.Stop()
	bin := harness.RequireTool(t, "tshark", "tshark")
	out, err := exec.Command(bin, "-n", "-r", c.File, "-T", "fields", "-e", "udp.payload").Output()
	if err != nil {
		t.Fatalf("tshark -r: %v", err)
	}
	cur := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(line), ":", ""))
		if err != nil || len(b) < 12 || b[0]>>6 != 2 || b[1]&0x7f != 0 {
			continue // not PCMU RTP
		}
		payload := b[12+4*int(b[0]&0x0f):]
		samples := make([]float64, len(payload))
		energy := 0.0
		for i, u := range payload {
			samples[i] = float64(codec.DecodeUlaw(u))
			energy += samples[i] * samples[i]
		}
		frames++
		rms := math.Sqrt(energy / float64(max(len(samples), 1)))
		if tone := harness.Goertzel(samples, 8000, 425); rms > 1000 && tone > 0.8*math.Sqrt2*rms {
			cur++
			run = max(run, cur)
		} else {
			cur = 0
		}
	}
	return run, frames
}

// TestCallingCardRingbackReinvite: the carrier rings 3 s without early
// media: the caller hears the ringback tone (425 Hz, 1 s on: a run of
// tone frames in the RTP the server sends it). Once answered, the carrier
// refreshes the session with a re-INVITE: the server answers 200 with its
// relay's SDP (the carrier's scenario checks the port), and the call goes
// on: the caller's digits played after it reach the carrier and come back.
func TestCallingCardRingbackReinvite(t *testing.T) {
	srv := cardServer(t)
	port := cardTrunk(t, srv)
	capture := cardRTPCapture(t)
	scenario, timeout := talkScenario(t, [3]string{cardNumber + "#", cardPIN + "#", "030123456#"}, 14*time.Second, 3*time.Second)
	wait := callee(t, port, "-i", "127.0.0.5", "-sf", harness.Scenario(t, "uas_carrier_ring_reinvite.xml"), "-rtp_echo",
		"-timeout", secs(timeout+15*time.Second))
	r := cardCaller(t, srv, scenario, timeout)
	if r.ExitCode != 0 {
		t.Fatalf("caller: exit %d, want 0 (connected, then its own BYE answered)\n%s", r.ExitCode, r.Errors)
	}
	if u := wait(); u.ExitCode != 0 {
		t.Fatalf("carrier: exit %d, want 0 (rang, answered, its re-INVITE answered 200 with our SDP, then the BYE)\n%s", u.ExitCode, u.Errors)
	}
	if _, err := srv.WaitLog(5*time.Second, `in-dialog request answered by the application's side`, `method=INVITE`, `carrier=true`); err != nil {
		t.Fatalf("service log: %v", err)
	}
	if _, err := srv.WaitLog(5*time.Second, `calling card call`, `outcome=connected`, `status=200`); err != nil {
		t.Fatalf("service log: %v", err)
	}
	line, err := srv.WaitLog(time.Second, `application call media`)
	if err != nil {
		t.Fatalf("service log: %v", err)
	}
	for _, k := range []string{"caller_packets_in", "carrier_packets_out", "carrier_packets_in", "caller_packets_out"} {
		if m := regexp.MustCompile(k + `=(\d+)`).FindStringSubmatch(line); m == nil || m[1] == "0" {
			t.Errorf("relay %s after the carrier's re-INVITE: %q", k, line)
		}
	}
	// Ringback: 1 s on is 50 frames; some slack for the first and last.
	if run, frames := ringbackRun(t, capture); run < 40 {
		t.Errorf("longest 425 Hz run to the caller %d frames of %d, want about 50 (1 s of ringback)", run, frames)
	} else {
		t.Logf("ringback: %d tone frames in a row (of %d frames to the caller)", run, frames)
	}
}

// TestCallingCardEarlyMedia: a carrier that answers 183 with SDP and
// sends its early media (telephone-events here, so they can be told from
// anything the service itself sends) for 3 s before its 200: the caller
// hears them before the answer, and no ringback tone; the call then goes
// on through the same relay until the carrier hangs up.
func TestCallingCardEarlyMedia(t *testing.T) {
	srv := cardServer(t)
	port := cardTrunk(t, srv)
	capture := cardRTPCapture(t)
	dir := t.TempDir()
	pcap := filepath.Join(dir, "early.pcap")
	if _, err := harness.DTMFPcap(pcap, "5", 101, 700000, 7000); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(harness.Scenario(t, "uas_carrier_early.xml"))
	if err != nil {
		t.Fatal(err)
	}
	carrierScenario := filepath.Join(dir, "uas_carrier_early.xml")
	os.WriteFile(carrierScenario, []byte(strings.NewReplacer("@PCAP@", pcap, "@EARLY@", "3000").Replace(string(b))), 0o644)
	wait := callee(t, port, "-i", "127.0.0.5", "-sf", carrierScenario, "-timeout", "60s")
	scenario, timeout := cardScenario(t, "uac_card.xml", [3]string{cardNumber + "#", cardPIN + "#", "030123456#"}, 300*time.Millisecond)
	r := harness.Sipp(t, srv.SIPAddr(), "-sf", scenario, "-s", "8800", "-i", "127.0.0.1",
		"-au", "alice", "-ap", "alice-secret-1", "-key", "caller", "alice", "-auth_uri", srv.Domain, "-timeout", timeout)
	if r.ExitCode != 0 {
		t.Fatalf("caller: exit %d, want 0 (connected, then the server's BYE)\n%s", r.ExitCode, r.Errors)
	}
	if u := wait(); u.ExitCode != 0 {
		t.Fatalf("carrier: exit %d, want 0 (183, 200, then its BYE answered)\n%s", u.ExitCode, u.Errors)
	}
	if _, err := srv.WaitLog(5*time.Second, `carrier's early media relayed to the caller`); err != nil {
		t.Fatalf("service log: %v", err)
	}
	if _, err := srv.WaitLog(5*time.Second, `calling card call`, `outcome=connected`, `status=200`); err != nil {
		t.Fatalf("service log: %v", err)
	}
	capture.Stop()
	events := 0
	for _, p := range capture.RTP(cardCapturedPorts(t, capture)...) {
		if p.PayloadType == 101 {
			events++
		}
	}
	if events < 3 {
		t.Errorf("%d telephone-event packets reached the caller, want the carrier's early media", events)
	}
	if run, _ := ringbackRun(t, capture); run >= 10 {
		t.Errorf("a ringback tone (%d frames) played over the carrier's early media", run)
	}
}

// cardCapturedPorts are the server's source ports in the capture, to
// decode as RTP.
func cardCapturedPorts(t *testing.T, c *harness.Capture) []int {
	t.Helper()
	bin := harness.RequireTool(t, "tshark", "tshark")
	out, err := exec.Command(bin, "-n", "-r", c.File, "-T", "fields", "-e", "udp.srcport").Output()
	if err != nil {
		t.Fatalf("tshark -r: %v", err)
	}
	seen := map[int]bool{}
	var ports []int
	for _, f := range strings.Fields(string(out)) {
		if p, err := strconv.Atoi(f); err == nil && !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	return ports
}

// TestCallingCardRTPTimeout: with calls.rtp_timeout 3s, a card call
// whose carrier sends no RTP after its answer is hung up on both sides
// (the caller echoes what it gets, so it is not the silent one while the
// service talks to it) and its record is flagged rtp-timeout; the card is
// charged for the seconds it was up.
func TestCallingCardRTPTimeout(t *testing.T) {
	srv := cardServer(t, "  rtp_timeout: 3s\n")
	port := cardTrunk(t, srv)
	wait := callee(t, port, "-i", "127.0.0.5", "-sf", harness.Scenario(t, "uas_carrier_dtmf.xml"), "-timeout", "60s")
	scenario, timeout := cardScenario(t, "uac_card.xml", [3]string{cardNumber + "#", cardPIN + "#", "030123456#"}, 300*time.Millisecond)
	r := harness.Sipp(t, srv.SIPAddr(), "-sf", scenario, "-s", "8800", "-i", "127.0.0.1", "-rtp_echo",
		"-au", "alice", "-ap", "alice-secret-1", "-key", "caller", "alice", "-auth_uri", srv.Domain, "-timeout", timeout)
	if r.ExitCode != 0 {
		t.Fatalf("caller: exit %d, want 0 (connected, then the server's BYE)\n%s", r.ExitCode, r.Errors)
	}
	if u := wait(); u.ExitCode != 0 {
		t.Fatalf("carrier: exit %d, want 0 (answered, then the server's BYE)\n%s", u.ExitCode, u.Errors)
	}
	if _, err := srv.WaitLog(5*time.Second, `no media, hanging up`, `silent=(carrier|caller)`); err != nil {
		t.Fatalf("service log: %v", err)
	}
	if _, err := srv.WaitLog(5*time.Second, `calling card call`, `outcome=connected`, `status=200`); err != nil {
		t.Fatalf("service log: %v", err)
	}
	rec := cardCDR(t, srv)
	if !strings.Contains(rec["flags"], "rtp-timeout") || rec["trunk"] != "carrier" || rec["trunk_answer"] == "" || rec["cost"] != "0.1" {
		t.Errorf("CDR flags %q trunk %q trunk_answer %q cost %q, want rtp-timeout, carrier, answered, 0.1",
			rec["flags"], rec["trunk"], rec["trunk_answer"], rec["cost"])
	}
}

// TestCallingCardSilentCaller: a caller whose RTP stops at the service's
// prompts (sipp sends none: it keys nothing) is hung up after
// calls.rtp_timeout rather than after the digit timeouts, flagged so.
func TestCallingCardSilentCaller(t *testing.T) {
	srv := cardServer(t, "  rtp_timeout: 2s\n")
	start := time.Now()
	r := harness.Sipp(t, srv.SIPAddr(), "-sf", harness.Scenario(t, "uac_wait_bye.xml"), "-s", "8800",
		"-au", "alice", "-ap", "alice-secret-1", "-key", "caller", "alice", "-auth_uri", srv.Domain, "-timeout", "30s")
	if r.ExitCode != 0 {
		t.Fatalf("caller: exit %d, want 0 (answered, then the server's BYE)\n%s", r.ExitCode, r.Errors)
	}
	// Three silent 4 s digit timeouts would take 12 s and more.
	if took := time.Since(start); took > 9*time.Second {
		t.Errorf("hung up after %v, want about the 2 s RTP timeout", took)
	}
	if _, err := srv.WaitLog(5*time.Second, `no media, hanging up`, `silent=caller`); err != nil {
		t.Fatalf("service log: %v", err)
	}
	if rec := cardCDR(t, srv); !strings.Contains(rec["flags"], "rtp-timeout") || rec["cause"] != "200" || rec["disposition"] != "ANSWERED" {
		t.Errorf("CDR flags %q cause %q disposition %q, want rtp-timeout, 200, ANSWERED", rec["flags"], rec["cause"], rec["disposition"])
	}
}

// TestRefusedCallerByeCDR: a caller refused with 403 (its prepaid account
// is empty) that sends a BYE instead of only ACKing the 403 gets 481 for
// it, and the call's record says 403, what the caller got — not an
// answered call that "the caller hung up".
func TestRefusedCallerByeCDR(t *testing.T) {
	srv := cardServer(t)
	cardTrunk(t, srv)
	cli(t, srv, "route", "add", "national", "--pattern", "_0[1-9]X.", "--trunks", "carrier")
	cli(t, srv, "account", "add", "acme", "--prepaid", "--plan", "cards", "--currency", "EUR")
	cli(t, srv, "user", "set", "alice", "--account", "acme")
	time.Sleep(1500 * time.Millisecond) // the server reloads routes every second
	r := harness.Sipp(t, srv.SIPAddr(), "-sf", harness.Scenario(t, "uac_bye_after_403.xml"), "-s", "030123456",
		"-au", "alice", "-ap", "alice-secret-1", "-key", "caller", "alice", "-auth_uri", srv.Domain, "-timeout", "20s")
	if r.ExitCode != 0 {
		t.Fatalf("caller: exit %d, want 0 (403, then 481 for its BYE)\n%s", r.ExitCode, r.Errors)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		rec := cardCDR(t, srv)
		if rec["active"] == "false" {
			if rec["cause"] != "403" || rec["disposition"] != "FAILED" || rec["answer"] != "" {
				t.Errorf("CDR cause %q disposition %q answer %q, want 403 FAILED, never answered", rec["cause"], rec["disposition"], rec["answer"])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the record is still active: %v", rec)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
