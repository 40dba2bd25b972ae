package test

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kaopu/kaopu/test/harness"
)

// TestPrepaidCallThroughTrunk: alice's prepaid account holds 0.50 and the
// deck charges calls to +44 6.00 a minute by the second (0.10 a second):
// her call through the carrier is cut at 5 s, a second call while the
// first is up is refused (the first one reserved everything), the
// record carries the cost, and the balance ends at zero, never below.
func TestPrepaidCallThroughTrunk(t *testing.T) {
	srv := harness.StartServer(t, harness.ServerOptions{Config: trunkConfig})
	harness.AddUser(t, srv.DataDir, "alice", "alice-secret-1", "1001")
	port := harness.FreePort(t, "udp")
	cli(t, srv, "trunk", "add", "carrier", "--address", fmt.Sprintf("127.0.0.2:%d", port), "--qualify", "0")
	cli(t, srv, "route", "add", "uk", "--pattern", "_0[1-9]X.", "--trunks", "carrier")
	deck := filepath.Join(t.TempDir(), "deck.csv")
	// 44: 6.00/min, no connect fee, 1/1; 447: mobiles, dearer, 30/6.
	if err := os.WriteFile(deck, []byte("prefix,destination,rate,connect,initial,increment\n"+
		"44,UK,6.00,0,1,1\n447,UK mobile,12.00,0.05,30,6\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cli(t, srv, "rate", "import", "retail", deck, "--currency", "EUR")
	cli(t, srv, "account", "add", "acme", "--prepaid", "--plan", "retail", "--currency", "EUR")
	cli(t, srv, "account", "credit", "acme", "0.50")
	cli(t, srv, "user", "set", "alice", "--account", "acme")
	if out := cli(t, srv, "rate", "lookup", "retail", "+447700900123"); !strings.Contains(out, "UK mobile") {
		t.Fatalf("rate lookup: longest prefix not chosen:\n%s", out)
	}
	time.Sleep(1500 * time.Millisecond) // trunks are reloaded every second

	wait := carrier(t, "127.0.0.2", port, "-sn", "uas")
	first := make(chan *harness.SippResult, 1)
	go func() {
		first <- harness.Sipp(t, srv.SIPAddr(), "-sf", harness.Scenario(t, "uac_wait_bye.xml"), "-s", "02079460000",
			"-au", "alice", "-ap", "alice-secret-1", "-key", "caller", "alice", "-auth_uri", srv.Domain, "-timeout", "30s")
	}()
	if _, err := srv.WaitLog(10*time.Second, `msg="rated call".*account=acme.*max=5s`); err != nil {
		t.Fatalf("the call was not rated for 5 s: %v", err)
	}
	if _, err := srv.WaitLog(10*time.Second, `msg="call answered"`); err != nil {
		t.Fatal(err)
	}
	// A second call on the same balance while the first holds it all.
	r := harness.Sipp(t, srv.SIPAddr(), "-sf", failingCaller(t, 403), "-s", "02079460001",
		"-au", "alice", "-ap", "alice-secret-1", "-key", "caller", "alice", "-auth_uri", srv.Domain, "-timeout", "20s")
	if got := r.LastResponse(); r.ExitCode != 0 || got == nil || got.Reason() != "Insufficient Funds" {
		t.Fatalf("second call: exit %d, %v; want 403 Insufficient Funds\n%s", r.ExitCode, got, r.Errors)
	}
	if res := <-first; res.ExitCode != 0 {
		t.Fatalf("first call: exit %d (the server must end it with BYE)\n%s", res.ExitCode, res.Errors)
	}
	if u := wait(); u.ExitCode != 0 {
		t.Fatalf("carrier: exit %d\n%s", u.ExitCode, u.Errors)
	}
	// Less than the warning's minute was bought: the beeps play at once.
	for _, line := range []string{`msg="credit running out: warning tone"`, `msg="credit exhausted, hanging up"`} {
		if _, err := srv.WaitLog(5*time.Second, line); err != nil {
			t.Fatal(err)
		}
	}

	// The record: billed 5 s (± 1: the cut is timed from the answer),
	// cost 0.10 a second; the balance never below zero by more than one
	// increment (0.10).
	out := cli(t, srv, "cdr", "export", "--format", "csv")
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("cdr export: %v\n%s", err, out)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	var rated []string
	for _, row := range rows[1:] {
		if row[col["cost"]] != "" && row[col["billsec"]] != "0" {
			rated = row
		}
	}
	if rated == nil {
		t.Fatalf("no rated record:\n%s", out)
	}
	billsec, _ := strconv.Atoi(rated[col["billsec"]])
	if billsec < 4 || billsec > 6 {
		t.Errorf("billed %d s, want 5 ± 1 (cut when the money ran out)", billsec)
	}
	// Cost by hand: 0.10 a second, at most the reservation (0.50) plus
	// one increment.
	want := fmt.Sprintf("%.2f", min(0.10*float64(billsec), 0.60))
	if cost, err := strconv.ParseFloat(rated[col["cost"]], 64); err != nil || fmt.Sprintf("%.2f", cost) != want {
		t.Errorf("cost %q for %d s at 0.10/s, want %s", rated[col["cost"]], billsec, want)
	}
	if rated[col["destination"]] != "UK" || rated[col["account"]] != "acme" {
		t.Errorf("record destination %q account %q, want UK acme", rated[col["destination"]], rated[col["account"]])
	}
	show := cli(t, srv, "account", "show", "acme")
	var balance float64
	for _, line := range strings.Split(show, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "balance" {
			balance, err = strconv.ParseFloat(f[1], 64)
		}
	}
	if err != nil || balance < -0.10 || balance > 0.0001 {
		t.Errorf("balance after the call %v (%v), want 0.00 (never below -0.10, one increment)\n%s", balance, err, show)
	}
	t.Logf("record: billsec %d cost %s\n%s", billsec, rated[col["cost"]], show)
}

// TestRatedCallsTable: calls of known length to destinations of a deck
// with different rates, connect fees and increments; each record's cost
// is what the deck says, computed by hand below, and the account's
// ledger adds up to it.
func TestRatedCallsTable(t *testing.T) {
	srv := harness.StartServer(t, harness.ServerOptions{Config: trunkConfig})
	harness.AddUser(t, srv.DataDir, "alice", "alice-secret-1", "1001")
	port := harness.FreePort(t, "udp")
	cli(t, srv, "trunk", "add", "carrier", "--address", fmt.Sprintf("127.0.0.2:%d", port), "--qualify", "0")
	cli(t, srv, "route", "add", "uk", "--pattern", "_0[1-9]X.", "--trunks", "carrier")
	deck := filepath.Join(t.TempDir(), "deck.csv")
	if err := os.WriteFile(deck, []byte(
		"44,UK,6.00,0,1,1\n"+ // 0.10 a second, by the second
			"447,UK mobile,12.00,0.05,30,6\n"+ // 30 s at least, then 6 s blocks, 0.05 to connect
			"4420,London,1.20,0,60,60\n"), 0o644); err != nil { // by the minute
		t.Fatal(err)
	}
	cli(t, srv, "rate", "import", "retail", deck, "--currency", "EUR")
	cli(t, srv, "account", "add", "acme", "--prepaid", "--plan", "retail", "--currency", "EUR")
	cli(t, srv, "account", "credit", "acme", "20")
	cli(t, srv, "user", "set", "alice", "--account", "acme")
	time.Sleep(1500 * time.Millisecond) // trunks are reloaded every second

	calls := []struct {
		dialed  string
		holdMS  int    // the caller hangs up this long after the answer: billsec is its whole seconds
		billsec int    // expected
		cost    string // by hand
	}{
		{"07700900123", 2500, 2, "6.050000"}, // 2 s -> 30 s billed: 0.05 + 12.00 * 30/60
		{"02079460000", 2500, 2, "1.200000"}, // 2 s -> 60 s billed: 1.20 * 60/60
		{"01614960000", 3500, 3, "0.300000"}, // 3 s -> 3 s billed: 6.00 * 3/60
	}
	for _, c := range calls {
		wait := carrier(t, "127.0.0.2", port, "-sn", "uas")
		r := harness.Sipp(t, srv.SIPAddr(), "-sf", harness.Scenario(t, "uac_talk.xml"), "-d", strconv.Itoa(c.holdMS), "-s", c.dialed,
			"-au", "alice", "-ap", "alice-secret-1", "-key", "caller", "alice", "-auth_uri", srv.Domain, "-timeout", "20s")
		if r.ExitCode != 0 {
			t.Fatalf("call to %s: exit %d\n%s", c.dialed, r.ExitCode, r.Errors)
		}
		if u := wait(); u.ExitCode != 0 {
			t.Fatalf("carrier for %s: exit %d\n%s", c.dialed, u.ExitCode, u.Errors)
		}
	}
	// The charge is written right after the record's end.
	var rows [][]string
	col := map[string]int{}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out := cli(t, srv, "cdr", "export", "--format", "csv")
		var err error
		if rows, err = csv.NewReader(strings.NewReader(out)).ReadAll(); err != nil {
			t.Fatal(err)
		}
		for i, h := range rows[0] {
			col[h] = i
		}
		n := 0
		for _, row := range rows[1:] {
			if row[col["cost"]] != "" {
				n++
			}
		}
		if n == len(calls) || time.Now().After(deadline) {
			break
		}
	}
	got := map[string][]string{}
	for _, row := range rows[1:] {
		got[row[col["dialed"]]] = row
	}
	for _, c := range calls {
		row := got[c.dialed]
		if row == nil {
			t.Errorf("no record for %s", c.dialed)
			continue
		}
		if b, _ := strconv.Atoi(row[col["billsec"]]); b != c.billsec {
			t.Errorf("%s: billsec %d, want %d (the test's timing is off, not the rating)", c.dialed, b, c.billsec)
			continue
		}
		if row[col["cost"]] != c.cost && row[col["cost"]] != strings.TrimRight(strings.TrimRight(c.cost, "0"), ".") {
			t.Errorf("%s: cost %q, want %s", c.dialed, row[col["cost"]], c.cost)
		}
	}
	// Every rated call's Start was timed for kaopu_billing_start_seconds.
	if n := srv.Metric(t, "kaopu_billing_start_seconds_count"); n != float64(len(calls)) {
		t.Errorf("kaopu_billing_start_seconds_count %v, want %d", n, len(calls))
	}
	if n := srv.Metric(t, `kaopu_billing_start_seconds_bucket{le="+Inf"}`); n != float64(len(calls)) {
		t.Errorf("kaopu_billing_start_seconds +Inf bucket %v, want %d", n, len(calls))
	}
	// 20 - 6.05 - 1.20 - 0.30
	if show := cli(t, srv, "account", "show", "acme"); !strings.Contains(show, "12.45") {
		t.Errorf("balance after the table, want 12.45:\n%s", show)
	}
}
