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

// FlatRate prices every destination the same: PerMinute micro-units a
// minute, billed in blocks of Increment seconds (60: per minute, 1: per
// second). It stands in until cards are rated with rate decks
// (internal/rating); the server wires it from cards.rate_per_minute.
type FlatRate struct {
	PerMinute int64
	Increment int
}

// Quote gives the time the whole balance buys, in whole blocks.
func (f FlatRate) Quote(_ context.Context, c Card, e164 string) (Quote, error) {
	if f.PerMinute <= 0 || f.Increment <= 0 {
		return Quote{}, ErrNoRate
	}
	// Blocks the balance pays for in full: balance / (PerMinute x
	// Increment / 60), without rounding the price of a block.
	blocks := c.Balance * 60 / (f.PerMinute * int64(f.Increment))
	return Quote{Destination: "flat", PerMinute: f.PerMinute, MaxSeconds: int(blocks) * f.Increment}, nil
}

// Cost is the price of talk: whole blocks, the last one started counted,
// rounded up to the micro-unit.
func (f FlatRate) Cost(talk time.Duration) int64 {
	secs := int64((talk + time.Second - 1) / time.Second)
	inc := int64(f.Increment)
	billed := (secs + inc - 1) / inc * inc
	return (billed*f.PerMinute + 59) / 60
}

// StoreCharger debits cards in the store at a FlatRate.
type StoreCharger struct {
	Store store.Cards
	Rate  FlatRate
}

// Charge debits the cost of talk (never below zero) with a ledger entry
// naming the call.
func (s StoreCharger) Charge(ctx context.Context, c Card, e164 string, talk time.Duration, callID string) (int64, error) {
	e, err := s.Store.DebitCard(ctx, c.Number, s.Rate.Cost(talk), "call to "+e164, callID)
	return -e.Amount, err
}
