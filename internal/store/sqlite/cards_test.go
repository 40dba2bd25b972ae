package sqlite

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/store"
)

func TestCards(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	exp := time.Unix(1_900_000_000, 0)
	cs := []store.Card{
		{Number: "1002", PINHash: "h2", Balance: 5_000_000, Currency: "EUR", Expires: exp, Created: time.Unix(10, 0)},
		{Number: "1001", PINHash: "h1", Balance: 1_500_000, Currency: "USD", Plan: "retail", Created: time.Unix(10, 0)},
	}
	if err := s.AddCards(ctx, cs); err != nil {
		t.Fatal(err)
	}
	// All or none: a batch with one taken number adds nothing.
	err := s.AddCards(ctx, []store.Card{{Number: "1003", PINHash: "x", Currency: "EUR", Created: time.Unix(10, 0)}, cs[0]})
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := s.GetCard(ctx, "1003"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("half a batch was added: %v", err)
	}
	list, err := s.ListCards(ctx)
	if err != nil || len(list) != 2 || list[0].Number != "1001" || list[1].Number != "1002" {
		t.Fatalf("list %+v %v", list, err)
	}
	c, err := s.GetCard(ctx, "1002")
	if err != nil || c.PINHash != "h2" || c.Balance != 5_000_000 || !c.Expires.Equal(exp) || c.State != "active" || !c.Used.IsZero() {
		t.Fatalf("get %+v %v", c, err)
	}
	if c, _ := s.GetCard(ctx, "1001"); !c.Expires.IsZero() || c.Plan != "retail" {
		t.Fatalf("no expiry: %+v", c)
	}
	if err := s.SetCardState(ctx, "1001", "blocked"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCardState(ctx, "1001", "stolen"); err == nil {
		t.Fatal("state outside the CHECK accepted")
	}
	if err := s.SetCardState(ctx, "9", "blocked"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown card: %v", err)
	}

	e, err := s.DebitCard(ctx, "1002", 1_250_000, "call", "cid-1")
	if err != nil || e.Amount != -1_250_000 || e.BalanceAfter != 3_750_000 || e.ID == 0 {
		t.Fatalf("debit %+v %v", e, err)
	}
	// Never below zero: a debit larger than the balance takes the balance.
	e, err = s.DebitCard(ctx, "1002", 9_000_000, "call", "cid-2")
	if err != nil || e.Amount != -3_750_000 || e.BalanceAfter != 0 {
		t.Fatalf("overdraft %+v %v", e, err)
	}
	if _, err := s.DebitCard(ctx, "1002", -1, "x", ""); err == nil {
		t.Fatal("negative debit accepted")
	}
	led, err := s.CardLedger(ctx, "1002")
	if err != nil || len(led) != 3 || led[0].CallID != "cid-2" || led[2].Reason != "issued" || led[2].Amount != 5_000_000 {
		t.Fatalf("ledger %+v %v", led, err)
	}
	if c, _ := s.GetCard(ctx, "1002"); c.Balance != 0 || c.Used.IsZero() {
		t.Fatalf("after debits %+v", c)
	}
}

// TestDebitCardConcurrent: 40 concurrent debits of 0.03 (1.20 in all) on
// a balance of 1.00 take exactly the balance, never more (transactions
// are BEGIN IMMEDIATE: the balance read and the update are one step).
func TestDebitCardConcurrent(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	if err := s.AddCards(ctx, []store.Card{{Number: "7", PINHash: "h", Balance: 1_000_000, Currency: "EUR", Created: time.Unix(1, 0)}}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	taken := int64(0)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				e, err := s.DebitCard(ctx, "7", 30_000, "call", "")
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				taken -= e.Amount
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	c, _ := s.GetCard(ctx, "7")
	led, _ := s.CardLedger(ctx, "7")
	sum := int64(0)
	for _, e := range led {
		sum += e.Amount
	}
	if len(led) != 41 || sum != c.Balance {
		t.Fatalf("%d ledger entries summing to %d, balance %d", len(led), sum, c.Balance)
	}
	if taken != 1_000_000 || c.Balance != 0 {
		t.Fatalf("taken %d, balance %d", taken, c.Balance)
	}
}
