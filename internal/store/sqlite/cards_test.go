package sqlite

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/money"
	"github.com/kaopu/kaopu/internal/store"
)

func TestCards(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	exp := time.Unix(1_900_000_000, 0)
	cs := []store.Card{
		{Number: "1002", PINHash: "h2", Balance: money.MustParse("5"), Currency: "EUR", Plan: "retail", Expires: exp, Created: time.Unix(10, 0)},
		{Number: "1001", PINHash: "h1", Balance: money.MustParse("1.5"), Currency: "USD", Created: time.Unix(10, 0)},
	}
	if err := s.AddCards(ctx, cs); err != nil {
		t.Fatal(err)
	}
	// All or none: a batch with one taken number adds nothing, not even
	// the new card's account.
	err := s.AddCards(ctx, []store.Card{{Number: "1003", PINHash: "x", Currency: "EUR", Created: time.Unix(10, 0)}, cs[0]})
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := s.GetCard(ctx, "1003"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("half a batch was added: %v", err)
	}
	if _, err := s.GetAccount(ctx, store.CardAccount("1003")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("half a batch's account was added: %v", err)
	}
	list, err := s.ListCards(ctx)
	if err != nil || len(list) != 2 || list[0].Number != "1001" || list[1].Number != "1002" {
		t.Fatalf("list %+v %v", list, err)
	}
	c, err := s.GetCard(ctx, "1002")
	if err != nil || c.PINHash != "h2" || c.Account != "card-1002" || c.Balance != money.MustParse("5") || c.Plan != "retail" ||
		!c.Expires.Equal(exp) || c.State != "active" {
		t.Fatalf("get %+v %v", c, err)
	}
	// The card is a prepaid account: its opening balance is in the ledger,
	// and a charge through the ledger is the card's balance.
	a, err := s.GetAccount(ctx, "card-1002")
	if err != nil || a.Type != store.Prepaid || a.Currency != "EUR" || a.Plan != "retail" {
		t.Fatalf("account %+v %v", a, err)
	}
	if led, _ := s.ListLedger(ctx, "card-1002", 0); len(led) != 1 || led[0].Amount != money.MustParse("5") || led[0].Reason != "card issued" {
		t.Fatalf("opening ledger %+v", led)
	}
	if _, err := s.PostLedger(ctx, store.LedgerEntry{At: time.Unix(20, 0), Account: "card-1002", Amount: money.MustParse("-1.25"), Reason: "call"}); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.GetCard(ctx, "1002"); c.Balance != money.MustParse("3.75") {
		t.Fatalf("balance after a charge: %s", c.Balance)
	}
	if c, _ := s.GetCard(ctx, "1001"); !c.Expires.IsZero() || c.Plan != "" {
		t.Fatalf("no expiry: %+v", c)
	}
	if err := s.SetCardState(ctx, "1001", "blocked"); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.GetCard(ctx, "1001"); c.State != "blocked" {
		t.Fatalf("state %q", c.State)
	}
	if err := s.SetCardState(ctx, "1001", "stolen"); err == nil {
		t.Fatal("state outside the CHECK accepted")
	}
	if err := s.SetCardState(ctx, "9", "blocked"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown card: %v", err)
	}
}
