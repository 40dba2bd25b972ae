package billing

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/money"
	"github.com/kaopu/kaopu/internal/store"
)

// Once a user's account and the account's row are cached, Start reads
// neither from the store, and End keeps the cached balance exact: the
// reservations computed from it are the ones the database's balance gives.
func TestCacheServesStartWithoutReads(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	setup(t, s)
	addAccount(t, s, "acme", store.Prepaid, "1.00", "0", "retail", "EUR", "alice", "bob")
	clk := &clock{t: t0}
	b := New(Config{Store: s, Now: clk.Now})

	// France per second, 0.01/s: 1.00 buys 100 s.
	r, err := b.Start(ctx, "alice", "33123", "c1")
	if err != nil || r.Max != 100*time.Second {
		t.Fatalf("first: %+v %v", r, err)
	}
	cold := b.reads.Load() // alice's account, the account's row
	if cold != 2 {
		t.Fatalf("%d store reads for the first call, want 2", cold)
	}
	if _, err := r.End(ctx, 30, 0); err != nil { // 0.30
		t.Fatal(err)
	}
	for i, want := range []int{70, 70, 70} { // 0.70 left each time
		r, err := b.Start(ctx, "alice", "33123", "c")
		if err != nil || r.Max != time.Duration(want)*time.Second {
			t.Fatalf("call %d: %+v %v; want %d s", i, r, err, want)
		}
		r.End(ctx, 0, 0)
	}
	// bob shares the account: one read for his mapping, none for the row.
	r, err = b.Start(ctx, "bob", "33123", "c5")
	if err != nil || r.Max != 70*time.Second {
		t.Fatalf("bob: %+v %v", r, err)
	}
	if _, err := r.End(ctx, 10, 0); err != nil { // 0.10
		t.Fatal(err)
	}
	if got := b.reads.Load() - cold; got != 1 {
		t.Errorf("%d store reads after the first call, want 1 (bob's account)", got)
	}
	// Our own debits are not taken for other processes' changes.
	clk.Advance(DefaultReload)
	r, err = b.Start(ctx, "alice", "33123", "c6")
	if err != nil || r.Max != 60*time.Second {
		t.Fatalf("after the check: %+v %v; want 60 s", r, err)
	}
	r.End(ctx, 0, 0)
	if got := b.reads.Load() - cold; got != 1 {
		t.Errorf("the version check dropped the cache after our own debits (%d reads)", got)
	}
	if bal := balance(t, s, "acme"); bal != money.MustParse("0.60") {
		t.Errorf("database balance %s, want 0.60", bal)
	}
}

// What another process changes — a top-up, an account's plan, a user
// moved to another account, a user detached — is seen by the first Start
// after the reload interval.
func TestCacheSeesOtherProcesses(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	setup(t, s)
	addAccount(t, s, "acme", store.Prepaid, "1.00", "0", "retail", "EUR", "alice")
	addAccount(t, s, "corp", store.Prepaid, "3.00", "0", "retail", "EUR")
	clk := &clock{t: t0}
	b := New(Config{Store: s, Now: clk.Now})
	start := func(user string) *Reservation {
		t.Helper()
		r, err := b.Start(ctx, user, "33123", "c")
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		r.End(ctx, 0, 0)
		return r
	}
	if r := start("alice"); r.Max != 100*time.Second {
		t.Fatalf("before: %v", r.Max)
	}

	// A top-up (kaopu account credit): 2.00 buys 200 s.
	if _, err := s.PostLedger(ctx, store.LedgerEntry{At: t0, Account: "acme", Amount: money.MustParse("1.00"), Reason: "top-up"}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(DefaultReload)
	if r := start("alice"); r.Max != 200*time.Second {
		t.Fatalf("after a top-up: %v, want 200 s", r.Max)
	}

	// A debit from outside, between two of our own debits.
	r, _ := b.Start(ctx, "alice", "33123", "c")
	r.End(ctx, 10, 0) // 0.10 -> 1.90
	s.PostLedger(ctx, store.LedgerEntry{At: t0, Account: "acme", Amount: money.MustParse("-1.50"), Reason: "adjust"})
	r, _ = b.Start(ctx, "alice", "33123", "c")
	r.End(ctx, 10, 0) // 0.10 -> 0.30
	clk.Advance(DefaultReload)
	if r := start("alice"); r.Max != 30*time.Second {
		t.Fatalf("after an outside debit: %v, want 30 s", r.Max)
	}

	// The account's plan changes (kaopu account set --plan): the US deck
	// is in USD, the account in EUR.
	a, _ := s.GetAccount(ctx, "acme")
	a.Plan = "us"
	if err := s.UpdateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	clk.Advance(DefaultReload)
	if _, err := b.Start(ctx, "alice", "4930", "c"); !errors.Is(err, ErrCurrency) {
		t.Fatalf("after the plan change: %v, want ErrCurrency", err)
	}

	// alice moves to corp (3.00: 300 s), then leaves every account.
	if err := s.SetUserAccount(ctx, "alice", "corp"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(DefaultReload)
	if r := start("alice"); r.Account != "corp" || r.Max != 300*time.Second {
		t.Fatalf("after the move: %s %v", r.Account, r.Max)
	}
	if err := s.SetUserAccount(ctx, "alice", ""); err != nil {
		t.Fatal(err)
	}
	clk.Advance(DefaultReload)
	if _, err := b.Start(ctx, "alice", "33123", "c"); !errors.Is(err, ErrNoAccount) {
		t.Fatalf("after detaching: %v, want ErrNoAccount", err)
	}
}
