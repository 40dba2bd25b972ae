package sqlite

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/money"
	"github.com/kaopu/kaopu/internal/store"
)

func TestAccountsAndLedger(t *testing.T) {
	ctx := context.Background()
	s, path := open(t)
	a := store.Account{Name: "acme", Type: store.Prepaid, Balance: money.MustParse("10"), Plan: "retail", Currency: "EUR", Created: time.Unix(100, 0)}
	if err := s.AddAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.AddAccount(ctx, a); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := s.AddAccount(ctx, store.Account{Name: "bad", Type: "free", Currency: "EUR"}); err == nil {
		t.Fatal("account type outside prepaid|postpaid accepted")
	}
	got, err := s.GetAccount(ctx, "acme")
	if err != nil || !reflect.DeepEqual(got, a) {
		t.Fatalf("get = %+v, %v; want %+v", got, err, a)
	}
	// Balance changes go through the ledger only.
	a.Balance = money.MustParse("999")
	a.CreditLimit = money.MustParse("5")
	a.Type = store.Postpaid
	if err := s.UpdateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetAccount(ctx, "acme")
	if got.Balance != money.MustParse("10") || got.Type != store.Postpaid || got.CreditLimit != money.MustParse("5") {
		t.Fatalf("after update: %+v", got)
	}
	e, err := s.PostLedger(ctx, store.LedgerEntry{At: time.UnixMilli(200_000), Account: "acme", Amount: money.MustParse("-0.0125"),
		Reason: "call", CDRID: 7, CallID: "c@h"})
	if err != nil || e.BalanceAfter != money.MustParse("9.9875") || e.ID == 0 {
		t.Fatalf("debit: %+v, %v", e, err)
	}
	if _, err := s.PostLedger(ctx, store.LedgerEntry{Account: "nobody", Amount: 1}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown account: %v", err)
	}
	led, err := s.ListLedger(ctx, "acme", 0)
	if err != nil || len(led) != 2 {
		t.Fatalf("ledger: %+v, %v", led, err)
	}
	if led[0].Reason != "call" || led[0].CDRID != 7 || led[0].CallID != "c@h" || led[0].Amount != -12_500 ||
		led[1].Reason != "opening balance" || led[1].Amount != money.MustParse("10") || led[1].BalanceAfter != money.MustParse("10") {
		t.Fatalf("ledger rows: %+v", led)
	}
	if led, _ := s.ListLedger(ctx, "acme", 1); len(led) != 1 || led[0].Reason != "call" {
		t.Fatalf("limit 1: %+v", led)
	}

	// Users belong to an account.
	if err := s.AddUser(ctx, store.User{Name: "alice", Realm: "r", Created: time.Unix(1, 0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UserAccount(ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("no account yet: %v", err)
	}
	if err := s.SetUserAccount(ctx, "alice", "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown account: %v", err)
	}
	if err := s.SetUserAccount(ctx, "ghost", "acme"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	if err := s.SetUserAccount(ctx, "alice", "acme"); err != nil {
		t.Fatal(err)
	}
	// A user update (password, policy) keeps the account.
	u, _ := s.GetUser(ctx, "alice")
	u.HA1MD5 = "new"
	if err := s.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	// Persisted: reopen.
	s.Close()
	s2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	ua, err := s2.UserAccount(ctx, "alice")
	if err != nil || ua.Name != "acme" || ua.Balance != money.MustParse("9.9875") {
		t.Fatalf("user account: %+v, %v", ua, err)
	}
	if us, _ := s2.AccountUsers(ctx, "acme"); !reflect.DeepEqual(us, []string{"alice"}) {
		t.Fatalf("account users: %q", us)
	}
	if err := s2.SetUserAccount(ctx, "alice", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.UserAccount(ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("detached: %v", err)
	}
	// A user with an account can still be deleted.
	s2.SetUserAccount(ctx, "alice", "acme")
	if err := s2.DeleteUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
}

func TestRateDecks(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	v0, _ := s.RatesVersion(ctx)
	jan := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	rates := []store.Rate{
		{Prefix: "49", Destination: "Germany", PerMinute: money.MustParse("0.02"), Initial: 60, Increment: 60},
		{Prefix: "4915", Destination: "Germany mobile", PerMinute: money.MustParse("0.1"), ConnectFee: money.MustParse("0.05"), Initial: 30, Increment: 6},
		{Prefix: "4915", Destination: "Germany mobile", PerMinute: money.MustParse("0.08"), Initial: 30, Increment: 6, EffectiveFrom: jan},
		{Prefix: "33", Destination: "France", PerMinute: money.MustParse("0.015"), Initial: 1, Increment: 1},
	}
	deck := store.RateDeck{Name: "retail", Currency: "EUR", Created: time.Unix(5, 0)}
	if err := s.ImportRates(ctx, deck, rates, false); err != nil {
		t.Fatal(err)
	}
	if v1, _ := s.RatesVersion(ctx); v1 == v0 {
		t.Fatal("version not bumped by import")
	}
	d, err := s.GetDeck(ctx, "retail")
	if err != nil || d.Rates != 4 || d.Currency != "EUR" {
		t.Fatalf("deck: %+v, %v", d, err)
	}
	got, err := s.ListRates(ctx, "retail", "49", 0)
	if err != nil || !reflect.DeepEqual(got, []store.Rate{rates[0], rates[1], rates[2]}) {
		t.Fatalf("list 49:\n got %+v\nwant %+v (%v)", got, rates[:3], err)
	}
	if got, _ := s.ListRates(ctx, "retail", "", 2); len(got) != 2 || got[0].Prefix != "33" {
		t.Fatalf("list limit 2: %+v", got)
	}
	// Same prefix and effective time: replaced; replace drops the rest.
	upd := store.Rate{Prefix: "33", Destination: "France", PerMinute: money.MustParse("0.017"), Initial: 1, Increment: 1}
	if err := s.ImportRates(ctx, deck, []store.Rate{upd}, false); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ListRates(ctx, "retail", "33", 0); len(got) != 1 || got[0].PerMinute != money.MustParse("0.017") {
		t.Fatalf("upsert: %+v", got)
	}
	if err := s.ImportRates(ctx, store.RateDeck{Name: "retail", Currency: "USD"}, nil, false); err == nil {
		t.Fatal("currency change without replace accepted")
	}
	if err := s.ImportRates(ctx, deck, []store.Rate{upd}, true); err != nil {
		t.Fatal(err)
	}
	var n int
	s.EachRate(ctx, "retail", func(store.Rate) error { n++; return nil })
	if n != 1 {
		t.Fatalf("after replace: %d rows", n)
	}
	// A bad row aborts the whole import.
	bad := []store.Rate{{Prefix: "1", Initial: 60, Increment: 60}, {Prefix: "2", Initial: 60, Increment: 0}}
	if err := s.ImportRates(ctx, deck, bad, false); err == nil {
		t.Fatal("increment 0 accepted")
	}
	if got, _ := s.ListRates(ctx, "retail", "1", 0); len(got) != 0 {
		t.Fatalf("partial import: %+v", got)
	}
	if decks, _ := s.ListDecks(ctx); len(decks) != 1 {
		t.Fatalf("decks: %+v", decks)
	}
	if err := s.DeleteDeck(ctx, "retail"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetDeck(ctx, "retail"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted deck: %v", err)
	}
	if got, _ := s.ListRates(ctx, "retail", "", 0); len(got) != 0 {
		t.Fatalf("rates of a deleted deck: %+v", got)
	}
}

func TestCDRRating(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	t0 := time.UnixMilli(1_700_000_000_000).UTC()
	id, err := s.StartCDR(ctx, store.CDR{CallID: "x", Start: t0})
	if err != nil {
		t.Fatal(err)
	}
	r := store.CDRRating{Account: "acme", Destination: "Germany mobile", Rate: money.MustParse("0.1"), Billed: 36,
		Cost: money.MustParse("0.11"), Currency: "EUR"}
	if err := s.RateCDR(ctx, id, r); err != nil {
		t.Fatal(err)
	}
	if err := s.RateCDR(ctx, id+1, r); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	// A record inserted whole (its start write was lost) keeps its rating.
	id2, _ := s.StartCDR(ctx, store.CDR{CallID: "y", Start: t0.Add(time.Second), Rating: r})
	cs, err := s.ListCDRs(ctx, store.CDRFilter{})
	if err != nil || len(cs) != 2 || cs[0].Rating != r || cs[1].Rating != r || cs[1].ID != id2 {
		t.Fatalf("cdrs: %+v, %v", cs, err)
	}
}

// AccountsVersion: meta moves with an account's settings, not with its
// balance; ledger is the newest ledger id, which every balance change moves.
func TestAccountsVersion(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	m0, l0, err := s.AccountsVersion(ctx)
	if err != nil || l0 != 0 {
		t.Fatalf("empty: %d %d %v", m0, l0, err)
	}
	a := store.Account{Name: "acme", Type: store.Prepaid, Balance: money.MustParse("10"), Plan: "retail", Currency: "EUR", Created: time.Unix(100, 0)}
	if err := s.AddAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	m1, l1, _ := s.AccountsVersion(ctx)
	if m1 <= m0 || l1 == 0 {
		t.Fatalf("after add (opening balance in the ledger): meta %d -> %d, ledger %d", m0, m1, l1)
	}
	e, err := s.PostLedger(ctx, store.LedgerEntry{At: time.Unix(200, 0), Account: "acme", Amount: money.MustParse("-1")})
	if err != nil {
		t.Fatal(err)
	}
	m2, l2, _ := s.AccountsVersion(ctx)
	if m2 != m1 || l2 != e.ID || l2 <= l1 {
		t.Fatalf("after a debit: meta %d -> %d (want unchanged), ledger %d (want %d)", m1, m2, l2, e.ID)
	}
	a.Plan = "wholesale"
	if err := s.UpdateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	m3, l3, _ := s.AccountsVersion(ctx)
	if m3 <= m2 || l3 != l2 {
		t.Fatalf("after a plan change: meta %d -> %d, ledger %d -> %d", m2, m3, l2, l3)
	}
}
