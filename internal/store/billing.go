package store

import (
	"context"
	"time"

	"github.com/kaopu/kaopu/internal/money"
)

// Account types.
const (
	// Prepaid accounts spend their balance, which calls never take below
	// zero (by more than one billing increment).
	Prepaid = "prepaid"
	// Postpaid accounts may go below zero down to -CreditLimit.
	Postpaid = "postpaid"
)

// Account is who pays for calls: a company, a family, a calling card. Users
// belong to at most one account.
type Account struct {
	Name        string
	Type        string       // Prepaid or Postpaid
	Balance     money.Amount // may be negative for postpaid
	CreditLimit money.Amount // postpaid: how far below zero the balance may go
	Plan        string       // the rate deck its calls are rated with
	Currency    string       // ISO 4217 code; must match the plan's deck
	Created     time.Time
}

// LedgerEntry is one change of an account's balance.
type LedgerEntry struct {
	ID           int64
	At           time.Time
	Account      string
	Amount       money.Amount // positive credits, negative debits
	BalanceAfter money.Amount
	Reason       string
	CDRID        int64  // the call's record, 0 when not a call
	CallID       string // the call's SIP Call-ID, "" when not a call
}

// Accounts is account and balance storage.
type Accounts interface {
	// AddAccount inserts a; a.Balance is the opening balance and is
	// recorded in the ledger when not zero. ErrExists when the name is taken.
	AddAccount(ctx context.Context, a Account) error
	// UpdateAccount replaces type, credit limit, plan and currency (never
	// the balance: that changes through PostLedger only).
	UpdateAccount(ctx context.Context, a Account) error
	GetAccount(ctx context.Context, name string) (Account, error)
	ListAccounts(ctx context.Context) ([]Account, error)
	// PostLedger adds e.Amount to the balance of e.Account and records e,
	// in one transaction, and returns e with its ID and BalanceAfter.
	PostLedger(ctx context.Context, e LedgerEntry) (LedgerEntry, error)
	// ListLedger returns the latest limit entries of an account (all when
	// limit <= 0), newest first.
	ListLedger(ctx context.Context, account string, limit int) ([]LedgerEntry, error)
	// SetUserAccount attaches a user to an account ("" detaches).
	// ErrNotFound when the user or the account does not exist.
	SetUserAccount(ctx context.Context, user, account string) error
	// UserAccount returns the account of a user: ErrNotFound when the user
	// does not exist or belongs to none.
	UserAccount(ctx context.Context, user string) (Account, error)
	// AccountUsers lists the users of an account by name.
	AccountUsers(ctx context.Context, account string) ([]string, error)
	// AccountsVersion tells, in any process, that accounts changed: meta
	// changes whenever an account is added or deleted or its type, credit
	// limit, plan or currency changes; ledger is the newest ledger row's
	// id (every balance change is one row, ids only grow).
	AccountsVersion(ctx context.Context) (meta, ledger int64, err error)
}

// RateDeck is a named table of rates (a plan) in one currency.
type RateDeck struct {
	Name     string
	Currency string
	Rates    int // rows, filled by ListDecks and GetDeck
	Created  time.Time
}

// Rate is one row of a rate deck: calls to numbers starting with Prefix
// cost ConnectFee once plus PerMinute for each minute billed, billed as
// Initial seconds and then by Increment seconds, from EffectiveFrom on.
type Rate struct {
	Prefix        string // E.164 digits without '+'
	Destination   string // a name such as "Germany mobile"
	PerMinute     money.Amount
	ConnectFee    money.Amount
	Initial       int       // seconds billed at least (the first block)
	Increment     int       // seconds of each further block, >= 1
	EffectiveFrom time.Time // zero: always
}

// Rates is rate deck storage.
type Rates interface {
	// ImportRates adds rates to a deck, creating it if needed; a row with
	// the prefix and effective time of an existing one replaces it. With
	// replace, the deck's old rows go first. All or nothing.
	ImportRates(ctx context.Context, deck RateDeck, rates []Rate, replace bool) error
	GetDeck(ctx context.Context, name string) (RateDeck, error)
	ListDecks(ctx context.Context) ([]RateDeck, error)
	DeleteDeck(ctx context.Context, name string) error
	// ListRates returns the rows of a deck whose prefix starts with
	// prefix, ordered by prefix and effective time; limit <= 0 is all.
	ListRates(ctx context.Context, deck, prefix string, limit int) ([]Rate, error)
	// EachRate streams every row of a deck to fn.
	EachRate(ctx context.Context, deck string, fn func(Rate) error) error
	// RatesVersion changes whenever any deck changes, in any process.
	RatesVersion(ctx context.Context) (int64, error)
}
