package callingcard

import (
	"context"
	"errors"
	"time"

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
	return Card{Number: c.Number, Balance: c.Balance, Currency: c.Currency, Expires: c.Expires, State: c.State}, nil
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
	Value     int64 // micro-units
	Currency  string
	Plan      string
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
		out = append(out, Generated{PIN: pin, Card: store.Card{Number: n, PINHash: h, Balance: opts.Value,
			Currency: opts.Currency, Plan: opts.Plan, Expires: opts.Expires, State: StateActive, Created: now}})
	}
	return out, nil
}
