package callingcard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/kaopu/kaopu/internal/ivr"
	"github.com/kaopu/kaopu/internal/money"
	"github.com/kaopu/kaopu/internal/store"
)

// Errors the interfaces return.
var (
	// ErrInvalid: no card with that number and PIN.
	ErrInvalid = errors.New("callingcard: invalid card number or PIN")
	// ErrNoRate: the card's rate deck has no rate for the destination
	// (or the card has no rate deck).
	ErrNoRate = errors.New("callingcard: no rate for the destination")
	// ErrNoCredit: the balance does not pay for the first increment to
	// the destination.
	ErrNoCredit = errors.New("callingcard: not enough credit")
)

// Card states.
const (
	StateActive  = "active"
	StateBlocked = "blocked"
)

// Card is what the service knows of a card after its PIN was checked.
type Card struct {
	Number   string
	Account  string       // the card's prepaid billing account
	Balance  money.Amount // the account's balance
	Currency string
	Expires  time.Time // zero: never
	State    string
}

// Cards checks a card number and PIN.
type Cards interface {
	// Check returns the card when number and PIN match one, ErrInvalid
	// otherwise, taking about the same time either way.
	Check(ctx context.Context, number, pin string) (Card, error)
}

// Biller rates and reserves a card's calls (internal/billing, with the
// card's account).
type Biller interface {
	// Reserve holds the money for a call to e164 for as long as the
	// card's balance (less what its other live calls hold) pays for:
	// ErrNoRate when the destination has no rate, ErrNoCredit when the
	// balance does not pay for the first increment.
	Reserve(ctx context.Context, card Card, e164, callID string) (Reservation, error)
}

// Reservation is the money held for one call.
type Reservation interface {
	// Max is how long the call may last from answer.
	Max() time.Duration
	// End charges talk (0: nothing) and releases the rest; the debit
	// names the call's record cdrID (0: none). It returns the rating
	// (what was billed and cost) for the record.
	End(ctx context.Context, talk time.Duration, cdrID int64) (store.CDRRating, error)
}

// Record is the call's detail record, which the call layer keeps
// (*cdr.Call): the charge's rating goes into it, and the card's ledger
// debit names it by ID.
type Record interface {
	ID() int64
	Rate(store.CDRRating)
}

// BridgeRequest asks the call layer to connect the caller to a destination.
type BridgeRequest struct {
	CallID      string // the caller's Call-ID
	Card        Card
	Destination string // E.164, "+" and digits
	// MaxDuration is when the call layer must cut the call (the money
	// runs out); it plays a warning tone a minute before.
	MaxDuration time.Duration
	// Endpoint is the caller's media: the bridge keeps it playing (or
	// ringing) until the destination answers, then takes its port pair
	// with Endpoint.Release and relays it to the outbound leg.
	Endpoint *ivr.Endpoint
}

// BridgeResult is how the outbound call went.
type BridgeResult struct {
	// Status is the outbound leg's final SIP status: 200 when it was
	// answered, 486 busy, 404 or 484 a number that does not exist, 503 no
	// route or trunk.
	Status int
	// Talk is the answered duration (0 when not answered).
	Talk time.Duration
	// Released reports whether the caller's endpoint was taken over: no
	// prompt can be played after that.
	Released bool
}

// Bridger places the outbound leg of a card call (the call layer with the
// trunk routes implements it). Bridge returns when the outbound call has
// ended or failed, or ctx ends (the caller hung up).
type Bridger interface {
	Bridge(ctx context.Context, req BridgeRequest) (BridgeResult, error)
}

// Media is what the application does with the caller's media; *ivr.Endpoint
// implements it.
type Media interface {
	Play(ctx context.Context, prompts ...ivr.Audio) error
	PlayInterruptible(ctx context.Context, prompts ...ivr.Audio) (bool, error)
	CollectDigits(ctx context.Context, max int, terminator rune, timeout time.Duration) (string, error)
	ClearDigits()
}

// Config wires the service.
type Config struct {
	Prompts *ivr.Library
	Cards   Cards
	Billing Biller
	Bridge  Bridger // nil: every destination is unreachable
	// Normalize turns what the caller dialed into E.164 ("+" and digits);
	// false when it is not a number that can be called.
	Normalize func(dialed string) (string, bool)
	// OnFailure is told the source of each wrong card number or PIN (the
	// server counts it toward a ban).
	OnFailure func(src netip.Addr)
	// MaxAttempts is how many wrong card numbers or PINs end the call
	// (default 3).
	MaxAttempts int
	// DigitTimeout is how long the caller may take for each digit
	// (default 8 s).
	DigitTimeout time.Duration
	Now          func() time.Time // nil: time.Now
	Log          *slog.Logger     // nil: discard
}

// Limits on what the caller enters.
const (
	maxCardDigits = 20
	maxPINDigits  = 12
	maxDestDigits = 20
)

// App is the calling-card service; one App serves every call.
type App struct {
	cfg Config

	mu   sync.Mutex
	live map[string]bool // cards in a call now
}

// New checks cfg and makes the service.
func New(cfg Config) (*App, error) {
	if cfg.Prompts == nil || cfg.Cards == nil || cfg.Billing == nil || cfg.Normalize == nil {
		return nil, errors.New("callingcard: Prompts, Cards, Billing and Normalize are required")
	}
	for _, n := range promptNames {
		if _, err := cfg.Prompts.Get(n); err != nil {
			return nil, err
		}
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.DigitTimeout <= 0 {
		cfg.DigitTimeout = 8 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &App{cfg: cfg, live: map[string]bool{}}, nil
}

var promptNames = []string{"welcome", "enter_card", "enter_pin", "invalid", "too_many", "expired", "unusable",
	"empty", "balance", "enter_destination", "no_rate", "minutes_to", "minute", "minutes", "connecting",
	"unreachable", "busy", "goodbye"}

// Call is one caller of the service.
type Call struct {
	ID     string       // SIP Call-ID
	Source netip.Addr   // where the call came from (counted toward bans)
	Media  Media        // the caller's media
	Log    *slog.Logger // the call's logger; nil: the App's
	// Endpoint is the caller's media endpoint handed to the Bridger; nil
	// in tests that drive Media alone.
	Endpoint *ivr.Endpoint
	// Record is the call's detail record; nil: none kept.
	Record Record
}

// Outcomes of a call to the service.
const (
	OutcomeConnected    = "connected"     // the destination answered
	OutcomeNotConnected = "not_connected" // busy, unreachable, no route
	OutcomeBadPIN       = "bad_pin"       // MaxAttempts wrong numbers or PINs
	OutcomeNoInput      = "no_input"      // the caller entered nothing
	OutcomeRefused      = "refused"       // expired, blocked, no credit, no rate
	OutcomeHangup       = "hangup"        // the caller hung up on the way
)

// Result says how the call went, for the log and the tests.
type Result struct {
	Outcome     string
	Card        string        // the card's number once checked
	Destination string        // E.164
	Max         time.Duration // the longest call the balance paid for (said in minutes)
	Status      int           // the outbound leg's status
	Talk        time.Duration
	Cost        money.Amount // charged
	Failures    int          // wrong card numbers or PINs
}

// errStop ends the flow after a final prompt.
type errStop struct{ outcome string }

func (e errStop) Error() string { return e.outcome }

// Serve runs the service for one call until it ends; the caller of Serve
// then hangs up (when the caller has not).
func (a *App) Serve(ctx context.Context, c Call) Result {
	log := c.Log
	if log == nil {
		log = a.cfg.Log
	}
	s := &session{app: a, c: c, log: log}
	_, err := s.run(ctx)
	res := s.res // after run's deferred charge
	var stop errStop
	switch {
	case err == nil:
	case errors.As(err, &stop):
		res.Outcome = stop.outcome
	case ctx.Err() != nil || errors.Is(err, ivr.ErrClosed):
		res.Outcome = OutcomeHangup
	default:
		log.Warn("calling card: failed", "error", err)
		res.Outcome = OutcomeNotConnected
	}
	log.Info("calling card call", "outcome", res.Outcome, "card", res.Card, "destination", res.Destination,
		"max", res.Max.String(), "status", res.Status, "talk", res.Talk.String(), "cost", res.Cost.String(), "failures", res.Failures)
	return res
}

type session struct {
	app *App
	c   Call
	log *slog.Logger
	res Result
}

func (s *session) say(ctx context.Context, names ...string) error {
	a, err := s.app.cfg.Prompts.Say(names...)
	if err != nil {
		return err
	}
	return s.c.Media.Play(ctx, a)
}

// ask plays a prompt (the caller may type over it) and collects digits
// up to max, ended by #.
func (s *session) ask(ctx context.Context, prompt string, max int) (string, error) {
	a, err := s.app.cfg.Prompts.Get(prompt)
	if err != nil {
		return "", err
	}
	if _, err := s.c.Media.PlayInterruptible(ctx, a); err != nil {
		return "", err
	}
	got, err := s.c.Media.CollectDigits(ctx, max, '#', s.app.cfg.DigitTimeout)
	if errors.Is(err, ivr.ErrTimeout) {
		err = nil // what was typed before the pause counts; "" is no input
	}
	return got, err
}

// stop plays the final prompts and ends the flow with outcome.
func (s *session) stop(ctx context.Context, outcome string, prompts ...string) error {
	if err := s.say(ctx, append(prompts, "goodbye")...); err != nil {
		return err
	}
	return errStop{outcome}
}

func (s *session) run(ctx context.Context) (Result, error) {
	cfg := &s.app.cfg
	if err := s.sayInterruptible(ctx, "welcome"); err != nil {
		return s.res, err
	}
	card, err := s.login(ctx)
	if err != nil {
		return s.res, err
	}
	s.res.Card = card.Number
	// One call per card at a time: the balance quoted is then the whole
	// balance, and two calls can never spend it twice.
	if !s.app.take(card.Number) {
		return s.res, s.stop(ctx, OutcomeRefused, "unusable")
	}
	defer s.app.give(card.Number)
	switch {
	case card.State != StateActive:
		return s.res, s.stop(ctx, OutcomeRefused, "unusable")
	case !card.Expires.IsZero() && !cfg.Now().Before(card.Expires):
		return s.res, s.stop(ctx, OutcomeRefused, "expired")
	case card.Balance <= 0:
		return s.res, s.stop(ctx, OutcomeRefused, "empty")
	}
	if err := s.say(ctx, append([]string{"balance"}, ivr.MoneyWords(int64(card.Balance), card.Currency)...)...); err != nil {
		return s.res, err
	}
	dest, resv, err := s.destination(ctx, card)
	if err != nil {
		return s.res, err
	}
	s.res.Destination = dest
	// The reservation ends whatever happens next: the talk is charged,
	// or nothing is and the money held is released.
	var talk time.Duration
	defer func() {
		var cdrID int64
		if s.c.Record != nil {
			cdrID = s.c.Record.ID()
		}
		r, err := resv.End(context.WithoutCancel(ctx), talk, cdrID)
		s.res.Cost = r.Cost
		if s.c.Record != nil && err == nil {
			s.c.Record.Rate(r) // as a rated trunk call's, answered or not
		}
		if err != nil {
			s.log.Error("calling card: charging failed", "card", card.Number, "talk", talk.String(), "error", err)
		}
	}()
	s.res.Max = resv.Max()
	minutes := int64(resv.Max() / time.Minute)
	unit := "minutes"
	if minutes == 1 {
		unit = "minute"
	}
	words := append([]string{"minutes_to"}, ivr.NumberWords(minutes)...)
	if err := s.say(ctx, append(words, unit, "connecting")...); err != nil {
		return s.res, err
	}
	if cfg.Bridge == nil {
		s.res.Status = 503
		return s.res, s.stop(ctx, OutcomeNotConnected, "unreachable")
	}
	br, err := cfg.Bridge.Bridge(ctx, BridgeRequest{CallID: s.c.ID, Card: card, Destination: dest,
		MaxDuration: resv.Max(), Endpoint: s.c.Endpoint})
	s.res.Status, s.res.Talk = br.Status, br.Talk
	talk = br.Talk // charged whatever else happened: the call took place
	if err != nil && br.Status == 0 {
		s.log.Warn("calling card: bridge failed", "destination", dest, "error", err)
		s.res.Status = 503
	}
	switch {
	case br.Status >= 200 && br.Status < 300:
		s.res.Outcome = OutcomeConnected
		return s.res, nil
	case br.Released || ctx.Err() != nil:
		return s.res, errStop{OutcomeNotConnected}
	case br.Status == 486 || br.Status == 600:
		return s.res, s.stop(ctx, OutcomeNotConnected, "busy")
	}
	return s.res, s.stop(ctx, OutcomeNotConnected, "unreachable")
}

func (a *App) take(number string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.live[number] {
		return false
	}
	a.live[number] = true
	return true
}

func (a *App) give(number string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.live, number)
}

func (s *session) sayInterruptible(ctx context.Context, name string) error {
	a, err := s.app.cfg.Prompts.Get(name)
	if err != nil {
		return err
	}
	_, err = s.c.Media.PlayInterruptible(ctx, a)
	return err
}

// login asks for the card number and PIN until they match a card, at most
// MaxAttempts times.
func (s *session) login(ctx context.Context) (Card, error) {
	cfg := &s.app.cfg
	silent := 0
	for s.res.Failures < cfg.MaxAttempts {
		number, err := s.ask(ctx, "enter_card", maxCardDigits)
		if err != nil {
			return Card{}, err
		}
		if number == "" {
			if silent++; silent >= cfg.MaxAttempts {
				return Card{}, s.stop(ctx, OutcomeNoInput)
			}
			continue
		}
		pin, err := s.ask(ctx, "enter_pin", maxPINDigits)
		if err != nil {
			return Card{}, err
		}
		card, err := cfg.Cards.Check(ctx, number, pin)
		if err == nil {
			return card, nil
		}
		if !errors.Is(err, ErrInvalid) {
			return Card{}, fmt.Errorf("checking card: %w", err)
		}
		s.res.Failures++
		s.log.Warn("calling card: wrong card number or PIN", "source", s.c.Source, "attempt", s.res.Failures)
		if cfg.OnFailure != nil && s.c.Source.IsValid() {
			cfg.OnFailure(s.c.Source)
		}
		s.c.Media.ClearDigits() // nothing typed ahead of the failure counts
		if s.res.Failures >= cfg.MaxAttempts {
			return Card{}, s.stop(ctx, OutcomeBadPIN, "invalid", "too_many")
		}
		if err := s.say(ctx, "invalid"); err != nil {
			return Card{}, err
		}
	}
	return Card{}, errStop{OutcomeBadPIN}
}

// destination asks for the number to call until it is one the card can
// pay for, at most MaxAttempts times.
func (s *session) destination(ctx context.Context, card Card) (string, Reservation, error) {
	cfg := &s.app.cfg
	for range cfg.MaxAttempts {
		dialed, err := s.ask(ctx, "enter_destination", maxDestDigits)
		if err != nil {
			return "", nil, err
		}
		if dialed == "" {
			continue
		}
		e164, ok := cfg.Normalize(dialed)
		if !ok {
			if err := s.say(ctx, "unreachable"); err != nil {
				return "", nil, err
			}
			continue
		}
		r, err := cfg.Billing.Reserve(ctx, card, e164, s.c.ID)
		switch {
		case errors.Is(err, ErrNoRate):
			if err := s.say(ctx, "no_rate"); err != nil {
				return "", nil, err
			}
			continue
		case errors.Is(err, ErrNoCredit):
			s.res.Destination = e164
			return "", nil, s.stop(ctx, OutcomeRefused, "empty")
		case err != nil:
			return "", nil, fmt.Errorf("rating %s: %w", e164, err)
		}
		return e164, r, nil
	}
	return "", nil, s.stop(ctx, OutcomeNoInput)
}
