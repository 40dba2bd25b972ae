package callingcard

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kaopu/kaopu/internal/billing"
	"github.com/kaopu/kaopu/internal/money"
	"github.com/kaopu/kaopu/internal/store"
)

// StoreCards checks cards against the store (Cards).
type StoreCards struct {
	Store store.Cards
}

// Check finds the card and compares the PIN hash; an unknown number is
// compared against a dummy hash, so both failures take the same time.
func (s StoreCards) Check(ctx context.Context, number, pin string) (Card, error) {
	c, err := s.Store.GetCard(ctx, number)
	if errors.Is(err, store.ErrNotFound) {
		CheckPIN(dummyHash, number, pin)
		return Card{}, ErrInvalid
	}
	if err != nil {
		return Card{}, err
	}
	if !CheckPIN(c.PINHash, number, pin) {
		return Card{}, ErrInvalid
	}
	return Card{Number: c.Number, Account: c.Account, Balance: c.Balance, Currency: c.Currency, Expires: c.Expires, State: c.State}, nil
}

// Generated is a card just made by Generate, with its PIN in clear (to
// print once).
type Generated struct {
	store.Card
	PIN string
}

// GenerateOptions say what cards Generate makes.
type GenerateOptions struct {
	Count     int
	Value     money.Amount
	Currency  string
	Plan      string // the rate deck of the cards' accounts
	Expires   time.Time
	Prefix    string // digits every number starts with
	Digits    int    // number length, prefix included (default 12)
	PINDigits int    // default 6
	Taken     func(number string) bool
}

// Generate makes cards with random numbers and PINs (crypto/rand).
// Numbers already taken (opts.Taken) or drawn twice are drawn again.
func Generate(opts GenerateOptions, now time.Time) ([]Generated, error) {
	if opts.Digits == 0 {
		opts.Digits = 12
	}
	if opts.PINDigits == 0 {
		opts.PINDigits = 6
	}
	free := opts.Digits - len(opts.Prefix)
	switch {
	case opts.Count < 1 || opts.Count > 100_000:
		return nil, errors.New("count: 1 to 100000")
	case CheckNumber(opts.Prefix+RandomDigits(max(free, 0))) != nil:
		return nil, errors.New("number length: 6 to 20 digits, prefix included, and the prefix digits only")
	case free < 6:
		return nil, errors.New("numbers need at least 6 random digits after the prefix")
	case opts.PINDigits < MinPINDigits || opts.PINDigits > MaxPINDigits:
		return nil, errors.New("PIN length: 4 to 12 digits")
	case opts.Value < 0:
		return nil, errors.New("value: not negative")
	}
	seen := map[string]bool{}
	out := make([]Generated, 0, opts.Count)
	for len(out) < opts.Count {
		n := opts.Prefix + RandomDigits(free)
		if seen[n] || (opts.Taken != nil && opts.Taken(n)) {
			continue
		}
		seen[n] = true
		pin := RandomDigits(opts.PINDigits)
		h, err := HashPIN(n, pin)
		if err != nil {
			return nil, err
		}
		out = append(out, Generated{PIN: pin, Card: store.Card{Number: n, PINHash: h, Account: store.CardAccount(n), Balance: opts.Value,
			Currency: opts.Currency, Plan: opts.Plan, Expires: opts.Expires, State: StateActive, Created: now}})
	}
	return out, nil
}

// AccountBilling rates and reserves card calls with internal/billing on
// each card's prepaid account: the account's rate deck prices the
// destination, its balance less its other live calls' reservations gives
// the longest call, and End debits the ledger.
type AccountBilling struct {
	Biller *billing.Biller
}

// Reserve starts billing the card's account for a call to e164.
func (a AccountBilling) Reserve(ctx context.Context, card Card, e164, callID string) (Reservation, error) {
	r, err := a.Biller.StartAccount(ctx, card.Account, e164, callID)
	switch {
	case errors.Is(err, billing.ErrNoRate), errors.Is(err, billing.ErrNoPlan), errors.Is(err, billing.ErrCurrency):
		return nil, fmt.Errorf("%w: %w", ErrNoRate, err)
	case errors.Is(err, billing.ErrInsufficientFunds):
		return nil, fmt.Errorf("%w: %w", ErrNoCredit, err)
	case err != nil:
		return nil, err
	}
	return accountReservation{r}, nil
}

type accountReservation struct{ r *billing.Reservation }

func (r accountReservation) Max() time.Duration { return r.r.Max }

// End bills the talk in whole seconds, a started second counted; the
// ledger row names the call's record cdrID.
func (r accountReservation) End(ctx context.Context, talk time.Duration, cdrID int64) (store.CDRRating, error) {
	billsec := int((talk + time.Second - 1) / time.Second)
	ch, err := r.r.End(ctx, billsec, cdrID)
	return ch.Rating, err
}
