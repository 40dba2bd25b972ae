package billing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kaopu/kaopu/internal/money"
	"github.com/kaopu/kaopu/internal/rating"
	"github.com/kaopu/kaopu/internal/store"
)

// Refusals and misuse.
var (
	ErrNoAccount         = errors.New("user has no billing account")
	ErrNoPlan            = errors.New("account has no rate deck")
	ErrNoRate            = errors.New("destination not in the rate deck")
	ErrCurrency          = errors.New("account and rate deck currencies differ")
	ErrInsufficientFunds = errors.New("insufficient funds")
	ErrEnded             = errors.New("reservation already ended")
)

// Defaults of Config.
const (
	DefaultMaxDuration = 4 * time.Hour
	DefaultWarning     = time.Minute
	DefaultReload      = time.Second
)

// Store is what billing needs of the store.
type Store interface {
	UserAccount(ctx context.Context, user string) (store.Account, error)
	GetAccount(ctx context.Context, name string) (store.Account, error)
	PostLedger(ctx context.Context, e store.LedgerEntry) (store.LedgerEntry, error)
	GetDeck(ctx context.Context, name string) (store.RateDeck, error)
	ListDecks(ctx context.Context) ([]store.RateDeck, error)
	ListAccounts(ctx context.Context) ([]store.Account, error)
	AccountUsers(ctx context.Context, account string) ([]string, error)
	EachRate(ctx context.Context, deck string, fn func(store.Rate) error) error
	RatesVersion(ctx context.Context) (int64, error)
	UsersVersion(ctx context.Context) (int64, error)
	AccountsVersion(ctx context.Context) (meta, ledger int64, err error)
}

// Config is what a Biller needs.
type Config struct {
	Store Store
	// Now is the clock (effective-from dates, ledger times); nil: time.Now.
	Now func() time.Time
	// MaxDuration caps every call, however much money there is, so one
	// call does not reserve a whole balance; 0: DefaultMaxDuration.
	MaxDuration time.Duration
	// Warning is how long before the cut the warning plays; 0: DefaultWarning.
	Warning time.Duration
	// Reload is how often the rate decks', users' and accounts' versions
	// are checked (what another process changed is seen that late at
	// most); 0: DefaultReload.
	Reload time.Duration
}

// Biller rates calls and holds the reservations of live calls. Safe for
// concurrent use.
type Biller struct {
	cfg Config

	// Call setup takes only read locks and atomics when nothing changes:
	// under load, a goroutine parked on a lock may wait milliseconds to
	// run again.
	mu    sync.RWMutex
	accts map[string]*acct

	deckMu    sync.RWMutex
	decks     map[string]*rating.Deck
	version   int64
	checked   time.Time
	checkMu   sync.Mutex // one deck version check at a time
	loadMu    sync.Mutex // one deck load at a time
	deckLoads int        // how many times a deck was read from the store (tests)

	// The cache of users' accounts and account rows (cache.go).
	syncMu     sync.Mutex   // one version check at a time; guards the versions
	synced     atomic.Int64 // last version check, Unix ns; 0: never
	usersVer   int64
	acctVer    int64
	usersMu    sync.RWMutex
	users      map[string]string  // user -> account name, "" for none
	usersEpoch int64              // bumped whenever users is emptied
	ledgerMu   sync.Mutex         // guards the ledger fields below
	ledgerSeen int64              // ledger ids up to this one are accounted for
	ledgerPrev int64              // the newest ledger id at the previous check
	own        map[int64]struct{} // ledger ids above ledgerSeen written by End
	inflight   atomic.Int64       // debits being written by End
	gen        atomic.Int64       // account rows read under an older gen are stale
	reads      atomic.Int64       // account and user rows read from the store (tests)
}

// acct is the live state of one account.
type acct struct {
	mu       sync.Mutex
	reserved money.Amount
	live     int
	// The account's row, valid while rowGen is the Biller's gen; its
	// balance is kept current by End, under mu.
	row      store.Account
	rowGen   int64
	hasRow   bool
	rowReads int64 // rows read from the store
}

// New returns a Biller.
func New(cfg Config) *Biller {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxDuration <= 0 {
		cfg.MaxDuration = DefaultMaxDuration
	}
	if cfg.Warning <= 0 {
		cfg.Warning = DefaultWarning
	}
	if cfg.Reload <= 0 {
		cfg.Reload = DefaultReload
	}
	return &Biller{cfg: cfg, accts: map[string]*acct{}, decks: map[string]*rating.Deck{}, users: map[string]string{}, own: map[int64]struct{}{}}
}

func (b *Biller) account(name string) *acct {
	b.mu.RLock()
	a := b.accts[name]
	b.mu.RUnlock()
	if a != nil {
		return a
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	a = b.accts[name]
	if a == nil {
		a = &acct{}
		b.accts[name] = a
	}
	return a
}

// Reserved returns what an account's live calls hold and how many they are.
func (b *Biller) Reserved(account string) (money.Amount, int) {
	a := b.account(account)
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reserved, a.live
}

// Reservation is the money held for one live call.
type Reservation struct {
	b *Biller
	a *acct

	Account  string
	Currency string
	Deck     string
	Dialed   string
	CallID   string
	Rate     store.Rate // the matched row: prefix, destination, rate, increments
	// Max is the longest the call may last from answer, Warn when the
	// warning plays (from answer; 0: at once).
	Max, Warn time.Duration
	// Reserved is the cost of a call of Max, held until End.
	Reserved money.Amount

	mu    sync.Mutex
	ended bool
}

// Charge is what End charged.
type Charge struct {
	Billed  int          // seconds billed
	Cost    money.Amount // debited
	Capped  bool         // the call overran its reservation; Cost is capped
	Balance money.Amount // the account's balance after the debit
	Ledger  int64        // the ledger row, 0 when nothing was charged
	Rating  store.CDRRating
}

// Start reserves money for a call of user to dialed (E.164 digits, with or
// without '+'). See the package documentation for the errors.
func (b *Biller) Start(ctx context.Context, user, dialed, callID string) (*Reservation, error) {
	if err := b.sync(ctx); err != nil {
		return nil, err
	}
	name, err := b.userAccount(ctx, user)
	if err != nil {
		return nil, err
	}
	if name == "" {
		return nil, fmt.Errorf("%s: %w", user, ErrNoAccount)
	}
	return b.start(ctx, name, dialed, callID)
}

// StartAccount is Start for a call paid by an account directly, not
// through a user: a prepaid calling card is an account of its own
// (internal/callingcard). ErrNoAccount when there is no such account.
func (b *Biller) StartAccount(ctx context.Context, account, dialed, callID string) (*Reservation, error) {
	if err := b.sync(ctx); err != nil {
		return nil, err
	}
	return b.start(ctx, account, dialed, callID)
}

func (b *Biller) start(ctx context.Context, name, dialed, callID string) (*Reservation, error) {
	a := b.account(name)
	a.mu.Lock()
	acc, err := b.rowLocked(ctx, a, name)
	a.mu.Unlock()
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%s: %w", name, ErrNoAccount)
	}
	if err != nil {
		return nil, err
	}
	if acc.Plan == "" {
		return nil, fmt.Errorf("account %s: %w", acc.Name, ErrNoPlan)
	}
	deck, err := b.deck(ctx, acc.Plan)
	if err != nil {
		return nil, err
	}
	if deck.Currency != acc.Currency {
		return nil, fmt.Errorf("account %s in %s, deck %s in %s: %w", acc.Name, acc.Currency, deck.Name, deck.Currency, ErrCurrency)
	}
	now := b.cfg.Now()
	rt, ok := deck.Lookup(dialed, now)
	if !ok {
		return nil, fmt.Errorf("%s in deck %s: %w", dialed, deck.Name, ErrNoRate)
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	// The balance is read under the account's lock: End debits (and
	// updates the cached row) and releases under it too, so no debit can
	// slip between this read and the reservation below.
	cur, err := b.rowLocked(ctx, a, name)
	if err != nil {
		return nil, err
	}
	avail := cur.Balance - a.reserved
	if cur.Type == store.Postpaid {
		avail += cur.CreditLimit
	}
	secs := rating.MaxSeconds(rt, avail)
	if secs <= 0 {
		return nil, fmt.Errorf("account %s: %s available, %s needed for the first %d s to %s: %w",
			acc.Name, avail, firstCost(rt), rating.Billed(rt, 1), rt.Destination, ErrInsufficientFunds)
	}
	capSec := int(b.cfg.MaxDuration / time.Second)
	maxSec := min(secs, capSec)
	_, reserve, err := rating.Cost(rt, maxSec)
	if err != nil {
		return nil, err
	}
	a.reserved += reserve
	a.live++
	r := &Reservation{b: b, a: a, Account: acc.Name, Currency: acc.Currency, Deck: deck.Name, Dialed: dialed, CallID: callID,
		Rate: rt, Max: time.Duration(maxSec) * time.Second, Reserved: reserve}
	r.Warn = max(0, r.Max-b.cfg.Warning)
	return r, nil
}

func firstCost(r store.Rate) money.Amount {
	_, c, _ := rating.Cost(r, 1)
	return c
}

// End charges the call for billsec answered seconds (0: not answered,
// nothing charged) and releases its reservation. cdrID links the ledger
// row to the call's record (0: none).
func (r *Reservation) End(ctx context.Context, billsec int, cdrID int64) (Charge, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return Charge{}, ErrEnded
	}
	ch := Charge{Rating: store.CDRRating{Account: r.Account, Destination: r.Rate.Destination, Rate: r.Rate.PerMinute, Currency: r.Currency}}
	billed, cost, err := rating.Cost(r.Rate, billsec)
	if err != nil {
		return ch, err
	}
	if maxSec := int(r.Max / time.Second); billsec > maxSec {
		// Overran the reservation: at most one increment more.
		capBilled, capCost, err := rating.Cost(r.Rate, maxSec+1)
		if err != nil {
			return ch, err
		}
		if cost > capCost {
			billed, cost, ch.Capped = capBilled, capCost, true
		}
	}
	ch.Billed, ch.Cost = billed, cost
	ch.Rating.Billed, ch.Rating.Cost = billed, cost

	a := r.a
	if cost == 0 {
		a.mu.Lock()
		a.reserved -= r.Reserved
		a.live--
		a.mu.Unlock()
		r.ended = true
		return ch, nil
	}
	// The debit is written without the account's lock, so that the
	// account's other calls are not set up behind a database write.
	// Meanwhile the account holds the cost instead of the reservation:
	// what Start sees available is already what is left after this call.
	b := r.b
	a.mu.Lock()
	a.reserved += cost - r.Reserved
	reads := a.rowReads
	a.mu.Unlock()
	b.inflight.Add(1)
	e, err := b.cfg.Store.PostLedger(ctx, store.LedgerEntry{At: b.cfg.Now(), Account: r.Account, Amount: -cost,
		Reason: "call to " + r.Dialed + " (" + r.Rate.Destination + ")", CDRID: cdrID, CallID: r.CallID})
	if err == nil {
		b.ownLedger(e.ID)
	}
	b.inflight.Add(-1)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.reserved -= cost - r.Reserved // the reservation is held again
		return ch, fmt.Errorf("debit %s of account %s: %w", cost, r.Account, err)
	}
	ch.Balance, ch.Ledger = e.BalanceAfter, e.ID
	if a.hasRow {
		if a.rowReads == reads {
			a.row.Balance -= cost // the cached row was read before the debit
		} else {
			a.hasRow = false // read while the debit was written: with it or without? Read it again.
		}
	}
	a.reserved -= cost
	a.live--
	r.ended = true
	return ch, nil
}

// Preload fills the cache with every account, its users and every rate
// deck, so that the first calls after a server starts do not wait for
// them to be read (about a second for a deck of 100,000 prefixes). The
// server runs it in the background at start.
func (b *Biller) Preload(ctx context.Context) error {
	if err := b.sync(ctx); err != nil { // first: a later first check would drop what is loaded here
		return err
	}
	b.usersMu.RLock()
	epoch := b.usersEpoch
	b.usersMu.RUnlock()
	accts, err := b.cfg.Store.ListAccounts(ctx)
	if err != nil {
		return err
	}
	users := map[string]string{}
	for _, row := range accts {
		if strings.HasPrefix(row.Name, store.CardAccount("")) {
			continue // a calling card's: read at its first call
		}
		us, err := b.cfg.Store.AccountUsers(ctx, row.Name)
		if err != nil {
			return err
		}
		if len(us) == 0 {
			continue
		}
		for _, u := range us {
			users[u] = row.Name
		}
		// The row is read as Start reads it, under the account's lock.
		a := b.account(row.Name)
		a.mu.Lock()
		_, err = b.rowLocked(ctx, a, row.Name)
		a.mu.Unlock()
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	b.usersMu.Lock()
	if epoch == b.usersEpoch { // no user changed meanwhile
		for u, name := range users {
			if _, ok := b.users[u]; !ok {
				b.users[u] = name
			}
		}
	}
	b.usersMu.Unlock()
	ds, err := b.cfg.Store.ListDecks(ctx)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if _, err := b.deck(ctx, d.Name); err != nil {
			return fmt.Errorf("rate deck %s: %w", d.Name, err)
		}
	}
	return nil
}

// deck returns the named deck, loading it when needed.
func (b *Biller) deck(ctx context.Context, name string) (*rating.Deck, error) {
	now := b.cfg.Now()
	due := func() bool { return now.Sub(b.checked) >= b.cfg.Reload || now.Before(b.checked) }
	b.deckMu.RLock()
	check := due()
	d := b.decks[name]
	b.deckMu.RUnlock()
	// One call checks the version; the others go on with the deck they
	// have (one without a deck loads it below).
	if check && b.checkMu.TryLock() {
		b.deckMu.RLock()
		check = due()
		b.deckMu.RUnlock()
		if check {
			v, err := b.cfg.Store.RatesVersion(ctx)
			if err != nil {
				b.checkMu.Unlock()
				return nil, err
			}
			b.deckMu.Lock()
			b.checked = now
			if v != b.version {
				b.version = v
				b.decks = map[string]*rating.Deck{}
				d = nil
			}
			b.deckMu.Unlock()
		}
		b.checkMu.Unlock()
	}
	if d != nil {
		return d, nil
	}
	b.loadMu.Lock()
	defer b.loadMu.Unlock()
	b.deckMu.Lock()
	d = b.decks[name]
	v := b.version
	b.deckMu.Unlock()
	if d != nil {
		return d, nil // loaded while this call waited
	}
	info, err := b.cfg.Store.GetDeck(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("rate deck %s: %w", name, ErrNoPlan)
	}
	if err != nil {
		return nil, err
	}
	rows := make([]store.Rate, 0, info.Rates)
	if err := b.cfg.Store.EachRate(ctx, name, func(r store.Rate) error { rows = append(rows, r); return nil }); err != nil {
		return nil, err
	}
	if d, err = rating.NewDeck(name, info.Currency, rows); err != nil {
		return nil, err
	}
	b.deckMu.Lock()
	b.deckLoads++
	if b.version == v {
		b.decks[name] = d
	}
	b.deckMu.Unlock()
	return d, nil
}
