package store

import (
	"context"
	"time"
)

// Card is a prepaid calling card (internal/callingcard).
type Card struct {
	Number   string // the digits the caller keys in; unique
	PINHash  string // "pbkdf2-sha256$ITER$SALT$HASH" (callingcard.HashPIN); never the PIN
	Balance  int64  // micro-units (10^-6) of Currency, never negative
	Currency string // ISO 4217 code
	Plan     string // the rate deck its calls are rated with ("" the default)
	Expires  time.Time
	State    string // "active" or "blocked"
	Created  time.Time
	Used     time.Time // last charged call; zero: never
}

// CardEntry is one change of a card's balance.
type CardEntry struct {
	ID           int64
	At           time.Time
	Card         string
	Amount       int64 // negative: a debit
	BalanceAfter int64
	Reason       string
	CallID       string
}

// Cards is calling-card storage.
type Cards interface {
	// AddCards inserts cards, all or none (ErrExists when a number is
	// taken); each opening balance is written to the card ledger.
	AddCards(ctx context.Context, cs []Card) error
	// GetCard returns a card by number; ErrNotFound.
	GetCard(ctx context.Context, number string) (Card, error)
	// ListCards returns every card ordered by number.
	ListCards(ctx context.Context) ([]Card, error)
	// SetCardState blocks or unblocks a card; ErrNotFound.
	SetCardState(ctx context.Context, number, state string) error
	// DebitCard takes amount (>= 0) from the balance, down to zero at
	// most, in one transaction with its ledger entry, and returns the
	// entry (Amount is what was really taken).
	DebitCard(ctx context.Context, number string, amount int64, reason, callID string) (CardEntry, error)
	// CardLedger returns a card's entries, newest first.
	CardLedger(ctx context.Context, number string) ([]CardEntry, error)
}
