package store

import (
	"context"
	"time"

	"github.com/kaopu/kaopu/internal/money"
)

// Card is a prepaid calling card (internal/callingcard): a number and a
// PIN on a prepaid account of its own, which holds the balance, the
// currency and the rate deck, and whose ledger records every charge.
type Card struct {
	Number  string // the digits the caller keys in; unique
	PINHash string // "pbkdf2-sha256$ITER$SALT$HASH" (callingcard.HashPIN); never the PIN
	Account string // the card's prepaid account
	Expires time.Time
	State   string // "active" or "blocked"
	Created time.Time

	// From the account: read by GetCard and ListCards; AddCards opens
	// the account with them.
	Balance  money.Amount
	Currency string
	Plan     string
}

// CardAccount is the name of the account of card number.
func CardAccount(number string) string { return "card-" + number }

// Cards is calling-card storage.
type Cards interface {
	// AddCards inserts cards with their accounts (prepaid, opened with
	// Balance in Currency on Plan), all or none: ErrExists when a number
	// or an account name is taken.
	AddCards(ctx context.Context, cs []Card) error
	// GetCard returns a card by number; ErrNotFound.
	GetCard(ctx context.Context, number string) (Card, error)
	// ListCards returns every card ordered by number.
	ListCards(ctx context.Context) ([]Card, error)
	// SetCardState blocks or unblocks a card; ErrNotFound.
	SetCardState(ctx context.Context, number, state string) error
}
