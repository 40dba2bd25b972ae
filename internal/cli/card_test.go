package cli

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kaopu/kaopu/internal/callingcard"
	"github.com/kaopu/kaopu/internal/store/sqlite"
)

func TestCardCommands(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "d")
	deck := filepath.Join(dir, "deck.csv")
	os.WriteFile(deck, []byte("49,Germany,0.10,0,60,60\n"), 0o600)
	for _, d := range [][]string{{"usd-cards", "USD"}, {"eur-cards", "EUR"}} {
		if code, _, errOut := run(t, "", "rate", "import", d[0], deck, "--currency", d[1], "--data", data); code != 0 {
			t.Fatalf("rate import: %s", errOut)
		}
	}
	// No deck, or a deck in another currency: refused, nothing stored.
	if code, _, errOut := run(t, "", "card", "generate", "--count", "1", "--value", "1", "--plan", "nope", "--data", data); code != 1 || !strings.Contains(errOut, "no rate deck") {
		t.Fatalf("unknown deck: %d %q", code, errOut)
	}
	if code, _, errOut := run(t, "", "card", "generate", "--count", "1", "--value", "1", "--plan", "usd-cards", "--data", data); code != 1 || !strings.Contains(errOut, "in EUR, rate deck usd-cards in USD") {
		t.Fatalf("currency mismatch: %d %q", code, errOut)
	}
	code, out, errOut := run(t, "", "card", "generate", "--count", "3", "--value", "10.5", "--currency", "usd", "--plan", "usd-cards",
		"--expires", "2030-12-31", "--prefix", "88", "--data", data)
	if code != 0 {
		t.Fatalf("generate: %d %s", code, errOut)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) != 4 || strings.Join(rows[0], ",") != "number,pin,value,currency,expires" {
		t.Fatalf("generate printed %q (%v)", out, err)
	}
	for _, r := range rows[1:] {
		if len(r[0]) != 12 || !strings.HasPrefix(r[0], "88") || len(r[1]) != 6 || r[2] != "10.50" || r[3] != "USD" || r[4] != "2031-01-01T00:00:00Z" {
			t.Fatalf("row %q", r)
		}
	}
	if !strings.Contains(errOut, "shown only this once") {
		t.Fatalf("stderr %q", errOut)
	}

	csvFile := filepath.Join(dir, "cards.csv")
	os.WriteFile(csvFile, []byte("number,pin,value,currency,expires\n555000111222,2468,5,EUR,2029-06-30\n555000111333, 1357 ,0.25\n"), 0o600)
	if code, _, errOut := run(t, "", "card", "import", csvFile, "--data", data); code != 1 || !strings.Contains(errOut, "no rate deck: give --plan") {
		t.Fatalf("import without a deck: %d %q", code, errOut)
	}
	if code, out, errOut := run(t, "", "card", "import", csvFile, "--plan", "eur-cards", "--data", data); code != 0 || !strings.Contains(out, "imported 2 cards") {
		t.Fatalf("import: %d %q %q", code, out, errOut)
	}
	// All or nothing: a bad row stores nothing.
	os.WriteFile(csvFile, []byte("555000111444,2468,5\n555000111555,12,5\n"), 0o600)
	if code, _, errOut := run(t, "", "card", "import", csvFile, "--plan", "eur-cards", "--data", data); code != 1 || !strings.Contains(errOut, "line 2") {
		t.Fatalf("bad import: %d %q", code, errOut)
	}
	os.WriteFile(csvFile, []byte("555000111222,2468,5\n"), 0o600)
	if code, _, errOut := run(t, "", "card", "import", csvFile, "--plan", "eur-cards", "--data", data); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Fatalf("duplicate import: %d %q", code, errOut)
	}
	if code, out, _ := run(t, "", "card", "block", "555000111333", "--data", data); code != 0 || !strings.Contains(out, "blocked") {
		t.Fatalf("block: %d %q", code, out)
	}

	code, out, _ = run(t, "", "card", "list", "--data", data)
	if code != 0 || strings.Count(out, "\n") != 6 || strings.Contains(out, "555000111444") {
		t.Fatalf("list: %q", out)
	}
	flat := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{"555000111222 5.00 EUR 2029-07-01T00:00:00Z active eur-cards card-555000111222", "555000111333 0.25", "blocked", rows[1][0] + " 10.50 USD"} {
		if !strings.Contains(flat, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	// The PINs are in the store only as hashes, and list never shows them.
	for _, r := range rows[1:] {
		if strings.Contains(out, r[1]) && !strings.Contains(r[0], r[1]) {
			t.Errorf("list shows PIN %s", r[1])
		}
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(data, "kaopu.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := (callingcard.StoreCards{Store: st}).Check(context.Background(), rows[2][0], rows[2][1])
	if err != nil || c.Balance != 10_500_000 || c.Currency != "USD" {
		t.Fatalf("generated card does not check: %+v %v", c, err)
	}
	if c, err := (callingcard.StoreCards{Store: st}).Check(context.Background(), "555000111222", "2468"); err != nil || c.Balance != 5_000_000 {
		t.Fatalf("imported card: %+v %v", c, err)
	}

	for _, bad := range [][]string{
		{"card", "generate", "--count", "0", "--value", "1", "--plan", "eur-cards"},
		{"card", "generate", "--count", "1", "--value", "1.1234567", "--plan", "eur-cards"},
		{"card", "generate", "--count", "1", "--value", "-1", "--plan", "eur-cards"},
		{"card", "generate", "--count", "1", "--value", "1", "--currency", "EURO", "--plan", "eur-cards"},
		{"card", "generate", "--count", "1", "--value", "1"},
		{"card", "frob"},
	} {
		if code, _, _ := run(t, "", append(bad, "--data", data)...); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
}
