package callingcard

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/billing"
	"github.com/kaopu/kaopu/internal/money"
	"github.com/kaopu/kaopu/internal/store"
	"github.com/kaopu/kaopu/internal/store/sqlite"
)

// TestAccountBilling: a card is a prepaid account: a call is reserved on
// the card's rate deck and balance, and its talk is debited from the
// card's ledger.
func TestAccountBilling(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := st.ImportRates(ctx, store.RateDeck{Name: "cards", Currency: "EUR", Created: t0},
		[]store.Rate{{Prefix: "49", Destination: "Germany", PerMinute: money.MustParse("0.10"), Initial: 60, Increment: 60}}, false); err != nil {
		t.Fatal(err)
	}
	gen, err := Generate(GenerateOptions{Count: 2, Value: money.MustParse("1.00"), Currency: "EUR", Plan: "cards"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	gen[1].Plan = "" // a card without a rate deck
	if err := st.AddCards(ctx, []store.Card{gen[0].Card, gen[1].Card}); err != nil {
		t.Fatal(err)
	}
	card, err := StoreCards{Store: st}.Check(ctx, gen[0].Number, gen[0].PIN)
	if err != nil || card.Account != store.CardAccount(gen[0].Number) || card.Balance != money.MustParse("1.00") {
		t.Fatalf("check %+v %v", card, err)
	}
	ab := AccountBilling{Biller: billing.New(billing.Config{Store: st, Now: func() time.Time { return t0 }})}
	r, err := ab.Reserve(ctx, card, "+4930123456", "call-1")
	if err != nil || r.Max() != 10*time.Minute {
		t.Fatalf("reserve: %v %v", r, err)
	}
	// The same card in a second call at once has nothing left.
	if _, err := ab.Reserve(ctx, card, "+4930123456", "call-2"); !errors.Is(err, ErrNoCredit) {
		t.Fatalf("second call: %v", err)
	}
	// 61.2 s: 62 billed seconds, two minutes at 60/60.
	if rt, err := r.End(ctx, 61200*time.Millisecond, 42); err != nil || rt.Cost != money.MustParse("0.20") || rt.Billed != 120 ||
		rt.Account != card.Account || rt.Rate != money.MustParse("0.10") {
		t.Fatalf("end: %+v %v", rt, err)
	}
	if c, _ := st.GetCard(ctx, gen[0].Number); c.Balance != money.MustParse("0.80") {
		t.Fatalf("balance after the call: %s", c.Balance)
	}
	led, _ := st.ListLedger(ctx, card.Account, 1)
	if len(led) != 1 || led[0].CallID != "call-1" || led[0].Amount != money.MustParse("-0.20") || led[0].CDRID != 42 {
		t.Fatalf("ledger %+v", led)
	}
	if _, err := ab.Reserve(ctx, card, "+3312345", "call-3"); !errors.Is(err, ErrNoRate) {
		t.Fatalf("no rate: %v", err)
	}
	other, _ := StoreCards{Store: st}.Check(ctx, gen[1].Number, gen[1].PIN)
	if _, err := ab.Reserve(ctx, other, "+4930123456", "call-4"); !errors.Is(err, ErrNoRate) {
		t.Fatalf("no deck: %v", err)
	}
}
