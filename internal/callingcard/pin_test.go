package callingcard

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/store"
	"github.com/kaopu/kaopu/internal/store/sqlite"
)

func TestPINHash(t *testing.T) {
	h, err := HashPIN("123456789012", "4321")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(h, "4321") || !strings.HasPrefix(h, "pbkdf2-sha256$10000$") {
		t.Fatalf("hash %q", h)
	}
	h2, _ := HashPIN("123456789012", "4321")
	if h == h2 {
		t.Fatal("two hashes of one PIN are equal: no salt")
	}
	for _, c := range []struct {
		number, pin string
		ok          bool
	}{
		{"123456789012", "4321", true},
		{"123456789012", "4322", false},
		{"123456789012", "43210", false},
		{"123456789013", "4321", false}, // the hash is bound to its card
	} {
		if got := CheckPIN(h, c.number, c.pin); got != c.ok {
			t.Errorf("%s/%s: %v", c.number, c.pin, got)
		}
	}
	for _, bad := range []string{"", "x$1$AA$AA", "pbkdf2-sha256$0$AA$AA", "pbkdf2-sha256$99999999$AA$AA", "pbkdf2-sha256$10$!!$AA"} {
		if CheckPIN(bad, "1", "1") {
			t.Errorf("%q matched", bad)
		}
	}
}

func TestGenerateAndCheck(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	gen, err := Generate(GenerateOptions{Count: 20, Value: 5_000_000, Currency: "EUR", Plan: "retail", Prefix: "77", Expires: exp,
		Taken: func(n string) bool { return false }}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, g := range gen {
		if len(g.Number) != 12 || !strings.HasPrefix(g.Number, "77") || len(g.PIN) != 6 || CheckNumber(g.Number) != nil || seen[g.Number] {
			t.Fatalf("card %q pin %q", g.Number, g.PIN)
		}
		seen[g.Number] = true
		if !CheckPIN(g.PINHash, g.Number, g.PIN) {
			t.Fatal("PIN does not match its hash")
		}
	}
	storeCards := make([]store.Card, 0, len(gen))
	for _, g := range gen {
		storeCards = append(storeCards, g.Card)
	}
	if err := st.AddCards(ctx, storeCards); err != nil {
		t.Fatal(err)
	}
	sc := StoreCards{Store: st}
	c, err := sc.Check(ctx, gen[3].Number, gen[3].PIN)
	if err != nil || c.Number != gen[3].Number || c.Balance != 5_000_000 || c.Currency != "EUR" || !c.Expires.Equal(exp) || c.State != StateActive {
		t.Fatalf("check %+v %v", c, err)
	}
	if _, err := sc.Check(ctx, gen[3].Number, gen[4].PIN); !errors.Is(err, ErrInvalid) && gen[3].PIN != gen[4].PIN {
		t.Fatalf("wrong PIN: %v", err)
	}
	// An unknown number fails the same way, after the same work.
	start := time.Now()
	if _, err := sc.Check(ctx, "999999999999", "123456"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown number: %v", err)
	}
	unknown := time.Since(start)
	start = time.Now()
	sc.Check(ctx, gen[5].Number, "000000x")
	wrong := time.Since(start)
	if unknown < wrong/4 {
		t.Fatalf("unknown number took %v, wrong PIN %v: the difference tells numbers apart", unknown, wrong)
	}

	for _, bad := range []GenerateOptions{
		{Count: 0, Currency: "EUR"},
		{Count: 1, Prefix: "12345678", Digits: 12},
		{Count: 1, Prefix: "1a"},
		{Count: 1, PINDigits: 3},
		{Count: 1, Value: -1},
	} {
		if _, err := Generate(bad, time.Now()); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// BenchmarkCheckPIN is the cost of one PIN check (what a caller's attempt
// and an attacker's guess each cost).
func BenchmarkCheckPIN(b *testing.B) {
	h, _ := HashPIN("123456789012", "123456")
	for b.Loop() {
		CheckPIN(h, "123456789012", "123456")
	}
}
