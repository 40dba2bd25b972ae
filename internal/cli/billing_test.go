package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/billing"
	"github.com/kaopu/kaopu/internal/store/sqlite"
)

const deckCSV = `prefix,destination,rate,connect,initial,increment,effective
49,Germany,0.10,0,60,60
4915,Germany mobile,0.20,0.05,30,6
4915,Germany mobile,0.30,0.05,30,6,2999-01-01
33,France,0.0125,0,1,1
`

func TestRateAndAccountCommands(t *testing.T) {
	data := filepath.Join(t.TempDir(), "d")
	csvPath := filepath.Join(t.TempDir(), "deck.csv")
	if err := os.WriteFile(csvPath, []byte(deckCSV), 0o600); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		args []string
		code int
		out  []string // substrings of stdout (or stderr when code != 0)
	}{
		{[]string{"rate", "import", "retail", csvPath}, 0, []string{"imported 4 rates into deck retail (EUR, 4 rates in all)"}},
		{[]string{"rate", "import", "bad", "-"}, 1, []string{"line 1", "rate \"ten\""}}, // stdin below
		{[]string{"rate", "import", "empty", os.DevNull}, 1, []string{"no rates"}},
		{[]string{"rate", "list"}, 0, []string{"retail", "EUR", "4"}},
		{[]string{"rate", "list", "retail", "--prefix", "+4915"}, 0, []string{"Germany mobile", "0.20", "0.30", "30/6", "2999-01-01T00:00:00Z"}},
		// Hand-computed: 61 s on 30/6 bill 66 s: 0.05 + 0.20 × 66/60 = 0.05 + 0.22 = 0.27.
		{[]string{"rate", "lookup", "retail", "+4915112345"}, 0, []string{"prefix 4915", "Germany mobile", "0.20 EUR/min",
			"61 s -> billed   66 s, cost 0.27 EUR", "1 s -> billed   30 s, cost 0.15 EUR"}},
		// France per second: 61 s cost 0.0125 × 61/60 = 0.01270833… → 0.012708.
		{[]string{"rate", "lookup", "retail", "33612345678"}, 0, []string{"61 s -> billed   61 s, cost 0.012708 EUR"}},
		{[]string{"rate", "lookup", "retail", "4915112345", "--at", "2999-06-01"}, 0, []string{"0.30 EUR/min"}},
		{[]string{"rate", "lookup", "retail", "1212555"}, 1, []string{"no rate for 1212555"}},
		{[]string{"account", "add", "acme", "--prepaid", "--plan", "nope"}, 1, []string{"rate deck nope", "kaopu rate import nope"}},
		{[]string{"account", "add", "acme", "--prepaid", "--plan", "retail", "--currency", "USD"}, 1, []string{"deck retail is in EUR"}},
		{[]string{"account", "add", "acme"}, 2, []string{"--prepaid or --postpaid is required"}},
		{[]string{"account", "add", "acme", "--prepaid", "--postpaid"}, 2, []string{"exclude"}},
		{[]string{"account", "add", "acme", "--prepaid", "--plan", "retail"}, 0, []string{"added prepaid account acme (EUR, balance 0.00, plan retail)"}},
		{[]string{"account", "add", "corp", "--postpaid", "--credit-limit", "50", "--plan", "retail"}, 0, []string{"added postpaid account corp"}},
		{[]string{"account", "add", "acme", "--prepaid"}, 1, []string{"already exists"}},
		{[]string{"account", "credit", "acme", "5.50", "--reason", "top-up by card"}, 0, []string{"account acme: +5.50, balance 5.50"}},
		{[]string{"account", "credit", "acme", "-0.25"}, 0, []string{"account acme: -0.25, balance 5.25"}},
		{[]string{"account", "credit", "acme", "1e3"}, 2, []string{"want a decimal amount"}},
		{[]string{"account", "credit", "nobody", "1"}, 1, []string{"not found"}},
		{[]string{"user", "add", "alice", "--password", "secret1", "--domain", "kaopu.test"}, 0, []string{"added user alice"}},
		{[]string{"user", "set", "alice", "--account", "acme"}, 0, []string{"account of alice: acme (prepaid)"}},
		{[]string{"user", "set", "alice", "--account", "ghost"}, 1, []string{"not found"}},
		{[]string{"account", "list"}, 0, []string{"acme", "prepaid", "5.25", "corp", "postpaid", "50.00"}},
		{[]string{"account", "set", "corp", "--credit-limit", "75"}, 0, []string{"credit limit 75.00"}},
	}
	for _, s := range steps {
		code, out, errOut := run(t, "49,Germany,ten,0,60,60\n", append(s.args, "--data", data)...)
		text := out
		if s.code != 0 {
			text = errOut
		}
		ok := code == s.code
		for _, w := range s.out {
			ok = ok && strings.Contains(text, w)
		}
		if !ok {
			t.Fatalf("kaopu %s: exit %d, output %q / %q; want exit %d and %q", strings.Join(s.args, " "), code, out, errOut, s.code, s.out)
		}
	}

	// What the CLI set up is what billing charges: alice calls a German
	// mobile for 61 s (0.27, as above).
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(data, "kaopu.db"))
	if err != nil {
		t.Fatal(err)
	}
	b := billing.New(billing.Config{Store: st})
	r, err := b.Start(ctx, "alice", "+4915112345", "call-1")
	if err != nil {
		t.Fatal(err)
	}
	// 5.25 - 0.05 = 5.20 buys 1560 s at 0.20/min: on the 6 s grid from 30 s, 1560 s.
	if r.Max != 1560*time.Second {
		t.Fatalf("max %v", r.Max)
	}
	if _, err := r.End(ctx, 61, 0); err != nil {
		t.Fatal(err)
	}
	st.Close()
	code, out, errOut := run(t, "", "account", "show", "acme", "--data", data)
	for _, w := range []string{"balance  4.98 EUR", "users    alice", "-0.27", "call to +4915112345 (Germany mobile)", "top-up by card", "+5.50"} {
		if code != 0 || !strings.Contains(out, w) {
			t.Fatalf("account show: exit %d, %q / %q; want %q", code, out, errOut, w)
		}
	}
	if _, out, _ := run(t, "", "user", "set", "alice", "--account", "none", "--data", data); !strings.Contains(out, "account of alice: none") {
		t.Fatalf("detach: %q", out)
	}
}
