package billing

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/money"
	"github.com/kaopu/kaopu/internal/store"
	"github.com/kaopu/kaopu/internal/store/sqlite"
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

// slowLedger holds every PostLedger until release is closed, before its
// write or (committed) after it.
type slowLedger struct {
	*sqlite.Store
	entered     chan struct{}
	release     chan struct{}
	commitFirst bool
}

func (s slowLedger) PostLedger(ctx context.Context, e store.LedgerEntry) (store.LedgerEntry, error) {
	if s.commitFirst {
		e, err := s.Store.PostLedger(ctx, e)
		s.entered <- struct{}{}
		<-s.release
		return e, err
	}
	s.entered <- struct{}{}
	<-s.release
	return s.Store.PostLedger(ctx, e)
}

// End writes its debit without the account's lock: the account's next
// call is set up while the write is slow, on what is left after the
// ending call's cost; and a row read during the write is read again after.
func TestEndDoesNotBlockStart(t *testing.T) {
	ctx := context.Background()
	db := openStore(t)
	setup(t, db)
	addAccount(t, db, "acme", store.Prepaid, "1.00", "0", "retail", "EUR", "alice")
	s := slowLedger{db, make(chan struct{}), make(chan struct{}), false}
	b := New(Config{Store: s, Now: (&clock{t: t0}).Now})

	r1, err := b.Start(ctx, "alice", "33123", "c1") // reserves 1.00 (100 s)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := r1.End(ctx, 40, 0); done <- err }() // 0.40
	<-s.entered
	// While the debit is being written: 0.60 is left.
	r2, err := b.Start(ctx, "alice", "33123", "c2")
	if err != nil || r2.Max != 60*time.Second {
		t.Fatalf("during the write: %+v %v; want 60 s", r2, err)
	}
	r2.End(ctx, 0, 0)
	// A row read now (the cache dropped) is from before the debit ...
	b.gen.Add(1)
	r3, err := b.Start(ctx, "alice", "33123", "c3")
	if err != nil || r3.Max != 60*time.Second {
		t.Fatalf("re-read during the write: %+v %v; want 60 s", r3, err)
	}
	r3.End(ctx, 0, 0)
	close(s.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// ... and is not debited twice: 0.60 left.
	r4, err := b.Start(ctx, "alice", "33123", "c4")
	if err != nil || r4.Max != 60*time.Second {
		t.Fatalf("after the write: %+v %v; want 60 s", r4, err)
	}
	r4.End(ctx, 0, 0)
	if res, live := b.Reserved("acme"); res != 0 || live != 0 {
		t.Errorf("reserved %s live %d after every call ended", res, live)
	}
}

// A row read after the debit was committed but before End settled it
// already holds the debit: End must not take the cost off it again.
func TestEndAfterRereadOfCommittedDebit(t *testing.T) {
	ctx := context.Background()
	db := openStore(t)
	setup(t, db)
	addAccount(t, db, "acme", store.Prepaid, "1.00", "0", "retail", "EUR", "alice")
	s := slowLedger{db, make(chan struct{}), make(chan struct{}), true}
	b := New(Config{Store: s, Now: (&clock{t: t0}).Now})
	r1, err := b.Start(ctx, "alice", "33123", "c1")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := r1.End(ctx, 40, 0); done <- err }() // 0.40
	<-s.entered
	b.gen.Add(1) // the next Start reads the row: 0.60, the debit in it
	r2, err := b.Start(ctx, "alice", "33123", "c2")
	// The cost is still held too until End settles: 0.20, on the safe side.
	if err != nil || r2.Max != 20*time.Second {
		t.Fatalf("during the write: %+v %v; want 20 s", r2, err)
	}
	r2.End(ctx, 0, 0)
	close(s.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r3, err := b.Start(ctx, "alice", "33123", "c3")
	if err != nil || r3.Max != 60*time.Second {
		t.Fatalf("after End: %+v %v; want 60 s (0.60 left)", r3, err)
	}
	r3.End(ctx, 0, 0)
}

// Preload reads every deck, account and its users once; the first call
// after it reads nothing.
func TestPreload(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	setup(t, s)
	addAccount(t, s, "acme", store.Prepaid, "1.00", "0", "retail", "EUR", "alice")
	b := New(Config{Store: s, Now: (&clock{t: t0}).Now})
	if err := b.Preload(ctx); err != nil {
		t.Fatal(err)
	}
	if b.deckLoads != 2 { // retail and us
		t.Fatalf("%d decks loaded, want 2", b.deckLoads)
	}
	if b.reads.Load() != 1 { // acme's row; alice's account came with acme's users
		t.Fatalf("%d rows read by Preload, want 1", b.reads.Load())
	}
	r, err := b.Start(ctx, "alice", "4930", "c")
	if err != nil || r.Account != "acme" {
		t.Fatalf("%+v %v", r, err)
	}
	r.End(ctx, 0, 0)
	if b.deckLoads != 2 || b.reads.Load() != 1 {
		t.Errorf("the first call after Preload read from the store (%d deck loads, %d rows)", b.deckLoads, b.reads.Load())
	}
}
