package test

// End-to-end tests of the calling-card service (issue 6, item 6): sipp
// calls the access number and keys in the card number, PIN and destination
// as RFC 4733 events played from pcap files the test writes.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

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

// cardServer is a server with the service on 8800, caller alice, a rate
// deck "cards" (Germany 0.10 a minute, per minute) and one card worth
// 5.00 on it.
func cardServer(t *testing.T) *harness.Server {
	t.Helper()
	srv := harness.StartServer(t, harness.ServerOptions{Config: cardConfig})
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
