package billing

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/money"
	"github.com/kaopu/kaopu/internal/store"
	"github.com/kaopu/kaopu/internal/store/sqlite"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openStore(tb testing.TB) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "k.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// deckRows: Germany 60/60 at 0.10/min, German mobiles 30/6 at 0.20/min
// with a 0.05 connect fee, France per second at 0.60/min (0.01/s), a free
// service number, and a USD deck.
func setup(t *testing.T, s *sqlite.Store) {
	t.Helper()
	ctx := context.Background()
	rows := []store.Rate{
		{Prefix: "49", Destination: "Germany", PerMinute: money.MustParse("0.10"), Initial: 60, Increment: 60},
		{Prefix: "4915", Destination: "Germany mobile", PerMinute: money.MustParse("0.20"), ConnectFee: money.MustParse("0.05"), Initial: 30, Increment: 6},
		{Prefix: "33", Destination: "France", PerMinute: money.MustParse("0.60"), Initial: 1, Increment: 1},
		{Prefix: "800", Destination: "Freephone", Initial: 60, Increment: 60},
	}
	if err := s.ImportRates(ctx, store.RateDeck{Name: "retail", Currency: "EUR", Created: t0}, rows, false); err != nil {
		t.Fatal(err)
	}
	if err := s.ImportRates(ctx, store.RateDeck{Name: "us", Currency: "USD", Created: t0}, rows[:1], false); err != nil {
		t.Fatal(err)
	}
}

func addAccount(t testing.TB, s *sqlite.Store, name, typ, balance, limit, plan, currency string, users ...string) {
	t.Helper()
	ctx := context.Background()
	a := store.Account{Name: name, Type: typ, Balance: money.MustParse(balance), CreditLimit: money.MustParse(limit), Plan: plan, Currency: currency, Created: t0}
	if err := s.AddAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if err := s.AddUser(ctx, store.User{Name: u, Realm: "r", Created: t0}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetUserAccount(ctx, u, name); err != nil {
			t.Fatal(err)
		}
	}
}

func balance(t testing.TB, s *sqlite.Store, name string) money.Amount {
	t.Helper()
	a, err := s.GetAccount(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return a.Balance
}

func TestPrepaidCall(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	setup(t, s)
	addAccount(t, s, "acme", store.Prepaid, "1.00", "0", "retail", "EUR", "alice", "bob")
	b := New(Config{Store: s, Now: (&clock{t: t0}).Now})

	// 1.00 at 0.10/min, 60/60: ten whole minutes; warning a minute before.
	r, err := b.Start(ctx, "alice", "+4930123456", "call-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Max != 10*time.Minute || r.Warn != 9*time.Minute || r.Reserved != money.MustParse("1.00") ||
		r.Rate.Destination != "Germany" || r.Account != "acme" || r.Currency != "EUR" {
		t.Fatalf("reservation %+v", r)
	}
	// The other user of the account finds nothing left while it is up.
	if _, err := b.Start(ctx, "bob", "4930999", "call-2"); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("second call: %v, want ErrInsufficientFunds", err)
	}
	// 61 s bill two minutes: 0.20.
	ch, err := r.End(ctx, 61, 42)
	if err != nil {
		t.Fatal(err)
	}
	want := store.CDRRating{Account: "acme", Destination: "Germany", Rate: money.MustParse("0.10"), Billed: 120, Cost: money.MustParse("0.20"), Currency: "EUR"}
	if ch.Cost != money.MustParse("0.20") || ch.Billed != 120 || ch.Capped || ch.Balance != money.MustParse("0.80") || ch.Rating != want {
		t.Fatalf("charge %+v", ch)
	}
	if _, err := r.End(ctx, 61, 42); !errors.Is(err, ErrEnded) {
		t.Fatalf("second End: %v", err)
	}
	led, _ := s.ListLedger(ctx, "acme", 1)
	if len(led) != 1 || led[0].Amount != money.MustParse("-0.20") || led[0].CDRID != 42 || led[0].CallID != "call-1" || led[0].ID != ch.Ledger {
		t.Fatalf("ledger %+v", led)
	}
	if res, live := b.Reserved("acme"); res != 0 || live != 0 {
		t.Fatalf("after end: reserved %s live %d", res, live)
	}

	// 0.80 left: German mobiles, 0.05 fee then 0.20/min in 30/6: 0.75
	// buys 225 s, on the 6 s grid from 30 s: 222 s (30 + 32 × 6).
	r, err = b.Start(ctx, "bob", "4915112345", "call-3")
	if err != nil {
		t.Fatal(err)
	}
	if r.Max != 222*time.Second || r.Warn != 162*time.Second || r.Reserved != money.MustParse("0.79") { // 0.05 + 0.20 × 222/60 = 0.05 + 0.74
		t.Fatalf("mobile reservation: max %v warn %v reserved %s", r.Max, r.Warn, r.Reserved)
	}
	// Not answered: nothing charged, no ledger row.
	ch, err = r.End(ctx, 0, 43)
	if err != nil || ch.Cost != 0 || ch.Ledger != 0 || ch.Rating.Destination != "Germany mobile" {
		t.Fatalf("unanswered: %+v %v", ch, err)
	}
	if led, _ := s.ListLedger(ctx, "acme", 0); len(led) != 2 { // opening balance + the one call
		t.Fatalf("ledger rows %d", len(led))
	}
	// A free number: the cap bounds it.
	r, err = b.Start(ctx, "bob", "800123", "call-4")
	if err != nil || r.Max != DefaultMaxDuration || r.Reserved != 0 {
		t.Fatalf("freephone: %+v %v", r, err)
	}
	r.End(ctx, 100, 0)
	if got := balance(t, s, "acme"); got != money.MustParse("0.80") {
		t.Fatalf("balance %s", got)
	}
}

func TestPostpaidAndOverrun(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	setup(t, s)
	addAccount(t, s, "corp", store.Postpaid, "0", "0.50", "retail", "EUR", "carol")
	addAccount(t, s, "tiny", store.Prepaid, "0.25", "0", "retail", "EUR", "dave")
	clk := &clock{t: t0}
	b := New(Config{Store: s, Now: clk.Now})

	// Postpaid: balance 0 + credit limit 0.50 buys 5 minutes.
	r, err := b.Start(ctx, "carol", "4930", "c1")
	if err != nil || r.Max != 5*time.Minute {
		t.Fatalf("postpaid: %+v %v", r, err)
	}
	ch, err := r.End(ctx, 300, 0)
	if err != nil || ch.Balance != money.MustParse("-0.50") {
		t.Fatalf("postpaid charge: %+v %v", ch, err)
	}
	if _, err := b.Start(ctx, "carol", "4930", "c2"); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("at the credit limit: %v", err)
	}

	// Prepaid 0.25 buys 2 minutes (0.20). A call layer that cuts too
	// late is charged at most one increment more: 3 minutes, 0.30.
	r, err = b.Start(ctx, "dave", "4930", "d1")
	if err != nil || r.Max != 2*time.Minute || r.Warn != time.Minute {
		t.Fatalf("tiny: %+v %v", r, err)
	}
	ch, err = r.End(ctx, 1000, 0)
	if err != nil || !ch.Capped || ch.Cost != money.MustParse("0.30") || ch.Billed != 180 || ch.Balance != money.MustParse("-0.05") {
		t.Fatalf("overrun: %+v %v", ch, err)
	}
	// Within a reservation's increment, nothing is capped: 121 s on a
	// 120 s reservation bills 180 s.
	// A top-up from outside (the CLI) is seen after the reload interval.
	s.PostLedger(ctx, store.LedgerEntry{At: t0, Account: "tiny", Amount: money.MustParse("0.25"), Reason: "top-up"})
	clk.Advance(DefaultReload)
	r, _ = b.Start(ctx, "dave", "4930", "d2") // 0.20 buys 2 minutes
	if ch, _ := r.End(ctx, 121, 0); ch.Capped || ch.Cost != money.MustParse("0.30") {
		t.Fatalf("one increment over: %+v", ch)
	}
}

func TestCapAndWarning(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	setup(t, s)
	addAccount(t, s, "rich", store.Prepaid, "10", "0", "retail", "EUR", "erin")
	clk := &clock{t: t0}
	b := New(Config{Store: s, Now: clk.Now, MaxDuration: 10 * time.Minute, Warning: 30 * time.Second})
	// France per second at 0.01/s: 10.00 would buy 1000 s; the cap is 600 s.
	r1, err := b.Start(ctx, "erin", "33123", "e1")
	if err != nil || r1.Max != 10*time.Minute || r1.Warn != 570*time.Second || r1.Reserved != money.MustParse("6") {
		t.Fatalf("capped: %+v %v", r1, err)
	}
	// The second call gets what is left: 4.00, 400 s.
	r2, err := b.Start(ctx, "erin", "33123", "e2")
	if err != nil || r2.Max != 400*time.Second || r2.Reserved != money.MustParse("4") {
		t.Fatalf("rest: %+v %v", r2, err)
	}
	if _, err := b.Start(ctx, "erin", "33123", "e3"); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("third: %v", err)
	}
	r1.End(ctx, 10, 0) // 0.10
	// r1's 6.00 is free again, less its 0.10: 5.90 buys 590 s.
	r3, err := b.Start(ctx, "erin", "33123", "e3")
	if err != nil || r3.Max != 590*time.Second {
		t.Fatalf("after release: %+v %v", r3, err)
	}
	r2.End(ctx, 0, 0)
	r3.End(ctx, 0, 0)
	// Less than the warning bought: warn at once.
	s.PostLedger(ctx, store.LedgerEntry{At: t0, Account: "rich", Amount: money.MustParse("-9.70"), Reason: "adjust"})
	clk.Advance(DefaultReload)
	r4, err := b.Start(ctx, "erin", "33123", "e4")
	if err != nil || r4.Max != 20*time.Second || r4.Warn != 0 {
		t.Fatalf("short: %+v %v", r4, err)
	}
}

func TestRefusals(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	setup(t, s)
	addAccount(t, s, "noplan", store.Prepaid, "5", "0", "", "EUR", "u1")
	addAccount(t, s, "usd", store.Prepaid, "5", "0", "us", "EUR", "u2")
	addAccount(t, s, "gone", store.Prepaid, "5", "0", "missing", "EUR", "u3")
	addAccount(t, s, "ok", store.Prepaid, "5", "0", "retail", "EUR", "u4")
	addAccount(t, s, "empty", store.Prepaid, "0", "0", "retail", "EUR", "u5")
	s.AddUser(ctx, store.User{Name: "loner", Realm: "r", Created: t0})
	b := New(Config{Store: s, Now: (&clock{t: t0}).Now})
	tests := []struct {
		user, dialed string
		err          error
	}{
		{"loner", "4930", ErrNoAccount},
		{"ghost", "4930", ErrNoAccount},
		{"u1", "4930", ErrNoPlan},
		{"u2", "4930", ErrCurrency},
		{"u3", "4930", ErrNoPlan},
		{"u4", "1212555", ErrNoRate},
		{"u4", "49abc", ErrNoRate},
		{"u5", "4930", ErrInsufficientFunds},
	}
	for _, tc := range tests {
		if r, err := b.Start(ctx, tc.user, tc.dialed, "x"); !errors.Is(err, tc.err) || r != nil {
			t.Errorf("Start(%s, %s) = %v, %v; want %v", tc.user, tc.dialed, r, err, tc.err)
		}
	}
	// No refusal holds anything.
	for _, a := range []string{"noplan", "usd", "gone", "ok", "empty"} {
		if res, live := b.Reserved(a); res != 0 || live != 0 {
			t.Errorf("%s: reserved %s live %d", a, res, live)
		}
	}
}

func TestDeckReload(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	setup(t, s)
	addAccount(t, s, "ok", store.Prepaid, "5", "0", "retail", "EUR", "u")
	clk := &clock{t: t0}
	b := New(Config{Store: s, Now: clk.Now})
	if _, err := b.Start(ctx, "u", "441234", "x"); !errors.Is(err, ErrNoRate) {
		t.Fatalf("before import: %v", err)
	}
	uk := []store.Rate{{Prefix: "44", Destination: "UK", PerMinute: money.MustParse("0.05"), Initial: 60, Increment: 60}}
	if err := s.ImportRates(ctx, store.RateDeck{Name: "retail", Currency: "EUR"}, uk, false); err != nil {
		t.Fatal(err)
	}
	// Within the reload interval the cached deck answers.
	if _, err := b.Start(ctx, "u", "441234", "x"); !errors.Is(err, ErrNoRate) {
		t.Fatalf("cached: %v", err)
	}
	clk.Advance(DefaultReload)
	r, err := b.Start(ctx, "u", "441234", "x")
	if err != nil || r.Rate.Destination != "UK" {
		t.Fatalf("after reload: %+v %v", r, err)
	}
	r.End(ctx, 0, 0)
	if b.deckLoads != 2 {
		t.Fatalf("deck loaded %d times, want 2", b.deckLoads)
	}
}

// TestConcurrentCallsNeverOverspend runs many calls at once on one
// balance, each lasting at most what its reservation allows, until the
// money is gone: the balance never goes below zero and the ledger adds up.
func TestConcurrentCallsNeverOverspend(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	setup(t, s)
	var users []string
	for i := range 8 {
		users = append(users, fmt.Sprintf("u%d", i))
	}
	addAccount(t, s, "shared", store.Prepaid, "3.00", "0", "retail", "EUR", users...)
	b := New(Config{Store: s, Now: (&clock{t: t0}).Now, MaxDuration: 40 * time.Second})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var charged money.Amount
	refused, calls := 0, 0
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 9))
			dests := []string{"33123", "4930", "4915123"}
			for range 40 { // bounded
				r, err := b.Start(ctx, u, dests[rng.IntN(len(dests))], "c")
				if errors.Is(err, ErrInsufficientFunds) {
					mu.Lock()
					refused++
					mu.Unlock()
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				// The call layer cuts at Max at the latest.
				billsec := rng.IntN(int(r.Max/time.Second) + 1)
				ch, err := r.End(ctx, billsec, 0)
				if err != nil {
					t.Error(err)
					return
				}
				if ch.Capped {
					t.Errorf("capped within the reservation: %+v", ch)
				}
				mu.Lock()
				charged += ch.Cost
				calls++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	bal := balance(t, s, "shared")
	if bal < 0 {
		t.Fatalf("balance went below zero: %s", bal)
	}
	if bal != money.MustParse("3.00")-charged {
		t.Fatalf("balance %s, but 3.00 - charged %s = %s", bal, charged, money.MustParse("3.00")-charged)
	}
	var sum money.Amount
	led, _ := s.ListLedger(ctx, "shared", 0)
	for _, e := range led {
		sum += e.Amount
	}
	if sum != bal {
		t.Fatalf("ledger sums to %s, balance %s", sum, bal)
	}
	if res, live := b.Reserved("shared"); res != 0 || live != 0 {
		t.Fatalf("left reserved %s live %d", res, live)
	}
	if refused == 0 || calls == 0 {
		t.Fatalf("the money never ran out (refused %d, calls %d): the test proves nothing", refused, calls)
	}
	t.Logf("%d calls charged %s, %d refused, balance %s", calls, charged, refused, bal)
}

// TestStartAccount: a call paid by an account directly (a calling card)
// is rated and reserved like a user's, and an unknown account is
// ErrNoAccount.
func TestStartAccount(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	setup(t, s)
	addAccount(t, s, "card-1", store.Prepaid, "0.50", "0", "retail", "EUR")
	b := New(Config{Store: s, Now: (&clock{t: t0}).Now})
	r, err := b.StartAccount(ctx, "card-1", "+4930123456", "call-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Max != 5*time.Minute || r.Account != "card-1" {
		t.Fatalf("reservation %+v", r)
	}
	if _, err := b.StartAccount(ctx, "card-1", "+4930123456", "call-2"); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("second call on the same card: %v", err)
	}
	if ch, err := r.End(ctx, 30, 0); err != nil || ch.Cost != money.MustParse("0.10") || ch.Balance != money.MustParse("0.40") {
		t.Fatalf("end %+v %v", ch, err)
	}
	if _, err := b.StartAccount(ctx, "nobody", "+4930123456", "call-3"); !errors.Is(err, ErrNoAccount) {
		t.Fatalf("unknown account: %v", err)
	}
}
