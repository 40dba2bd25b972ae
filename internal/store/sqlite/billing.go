package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/kaopu/kaopu/internal/money"
	"github.com/kaopu/kaopu/internal/store"
)

// Accounts, the ledger and rate decks live in the tables of migration
// 0004. Amounts are INTEGER micro-units (money.Amount).

const accountCols = `name, type, balance, credit_limit, plan, currency, created_unix`

func scanAccount(r scanner) (store.Account, error) {
	var a store.Account
	var created int64
	err := r.Scan(&a.Name, &a.Type, &a.Balance, &a.CreditLimit, &a.Plan, &a.Currency, &created)
	a.Created = time.Unix(created, 0)
	return a, err
}

// AddAccount inserts an account; an opening balance is recorded in the ledger.
func (s *Store) AddAccount(ctx context.Context, a store.Account) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, `INSERT INTO accounts (`+accountCols+`) VALUES (?, ?, 0, ?, ?, ?, ?)`,
		a.Name, a.Type, a.CreditLimit, a.Plan, a.Currency, a.Created.Unix())
	if isUnique(err) {
		return fmt.Errorf("account %s: %w", a.Name, store.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("account %s: %w", a.Name, err)
	}
	if a.Balance != 0 {
		if _, err := postLedger(ctx, tx, store.LedgerEntry{At: a.Created, Account: a.Name, Amount: a.Balance, Reason: "opening balance"}); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// UpdateAccount replaces an account's type, credit limit, plan and currency.
func (s *Store) UpdateAccount(ctx context.Context, a store.Account) error {
	res, err := s.db.ExecContext(ctx, `UPDATE accounts SET type = ?, credit_limit = ?, plan = ?, currency = ? WHERE name = ?`,
		a.Type, a.CreditLimit, a.Plan, a.Currency, a.Name)
	if err != nil {
		return fmt.Errorf("account %s: %w", a.Name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("account %s: %w", a.Name, store.ErrNotFound)
	}
	return nil
}

// GetAccount returns one account.
func (s *Store) GetAccount(ctx context.Context, name string) (store.Account, error) {
	a, err := scanAccount(s.db.QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("account %s: %w", name, store.ErrNotFound)
	}
	return a, err
}

// ListAccounts returns every account by name.
func (s *Store) ListAccounts(ctx context.Context) ([]store.Account, error) {
	return queryAll(ctx, s.db, scanAccount, `SELECT `+accountCols+` FROM accounts ORDER BY name`)
}

// PostLedger changes a balance and records the change, in one transaction.
func (s *Store) PostLedger(ctx context.Context, e store.LedgerEntry) (store.LedgerEntry, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return e, err
	}
	defer tx.Rollback()
	if e, err = postLedger(ctx, tx, e); err != nil {
		return e, err
	}
	return e, tx.Commit()
}

func postLedger(ctx context.Context, tx *sql.Tx, e store.LedgerEntry) (store.LedgerEntry, error) {
	var after int64
	err := tx.QueryRowContext(ctx, `UPDATE accounts SET balance = balance + ? WHERE name = ? RETURNING balance`,
		e.Amount, e.Account).Scan(&after)
	if errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("account %s: %w", e.Account, store.ErrNotFound)
	}
	if err != nil {
		// SQLite integers overflow into an error, not a wrap.
		return e, fmt.Errorf("account %s: %w", e.Account, err)
	}
	e.BalanceAfter = money.Amount(after)
	var cdrID any
	if e.CDRID != 0 {
		cdrID = e.CDRID
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO ledger (at_ms, account, amount, balance_after, reason, cdr_id, call_id)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, e.At.UnixMilli(), e.Account, e.Amount, after, e.Reason, cdrID, e.CallID)
	if err != nil {
		return e, fmt.Errorf("ledger %s: %w", e.Account, err)
	}
	e.ID, err = res.LastInsertId()
	return e, err
}

// ListLedger returns an account's latest entries, newest first.
func (s *Store) ListLedger(ctx context.Context, account string, limit int) ([]store.LedgerEntry, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, at_ms, account, amount, balance_after, reason, COALESCE(cdr_id, 0), call_id
		FROM ledger WHERE account = ? ORDER BY id DESC LIMIT ?`, account, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.LedgerEntry
	for rows.Next() {
		var e store.LedgerEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Account, &e.Amount, &e.BalanceAfter, &e.Reason, &e.CDRID, &e.CallID); err != nil {
			return nil, err
		}
		e.At = time.UnixMilli(at).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// SetUserAccount attaches a user to an account, or detaches it ("").
func (s *Store) SetUserAccount(ctx context.Context, user, account string) error {
	if account != "" {
		if _, err := s.GetAccount(ctx, account); err != nil {
			return err
		}
	}
	res, err := s.db.ExecContext(ctx, `UPDATE users SET account = ? WHERE name = ?`, nullable(account), user)
	if err != nil {
		return fmt.Errorf("user %s: %w", user, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("user %s: %w", user, store.ErrNotFound)
	}
	return nil
}

const userAccountQuery = `SELECT a.name, a.type, a.balance, a.credit_limit, a.plan, a.currency, a.created_unix
	FROM users u JOIN accounts a ON a.name = u.account WHERE u.name = ?`

// UserAccount returns the account a user's calls are charged to, in one
// query (it runs at call setup).
func (s *Store) UserAccount(ctx context.Context, user string) (store.Account, error) {
	st, err := s.prepared(ctx, userAccountQuery)
	if err != nil {
		return store.Account{}, err
	}
	a, err := scanAccount(st.QueryRowContext(ctx, user))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("account of user %s: %w", user, store.ErrNotFound)
	}
	return a, err
}

// AccountUsers lists the users of an account.
func (s *Store) AccountUsers(ctx context.Context, account string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name FROM users WHERE account = ? ORDER BY name`, account)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

func effectiveUnix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func fromEffective(u int64) time.Time {
	if u == 0 {
		return time.Time{}
	}
	return time.Unix(u, 0).UTC()
}

// ImportRates adds (or with replace, substitutes) the rows of a deck.
func (s *Store) ImportRates(ctx context.Context, deck store.RateDeck, rates []store.Rate, replace bool) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var cur string
	err = tx.QueryRowContext(ctx, `SELECT currency FROM rate_decks WHERE name = ?`, deck.Name).Scan(&cur)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, `INSERT INTO rate_decks (name, currency, created_unix) VALUES (?, ?, ?)`,
			deck.Name, deck.Currency, deck.Created.Unix()); err != nil {
			return fmt.Errorf("deck %s: %w", deck.Name, err)
		}
	case err != nil:
		return err
	case cur != deck.Currency && !replace:
		return fmt.Errorf("deck %s is in %s, not %s (import with replace to change it)", deck.Name, cur, deck.Currency)
	case cur != deck.Currency:
		if _, err := tx.ExecContext(ctx, `UPDATE rate_decks SET currency = ? WHERE name = ?`, deck.Currency, deck.Name); err != nil {
			return err
		}
	}
	if replace {
		if _, err := tx.ExecContext(ctx, `DELETE FROM rates WHERE deck = ?`, deck.Name); err != nil {
			return err
		}
	}
	st, err := tx.PrepareContext(ctx, `INSERT INTO rates (deck, prefix, destination, per_minute, connect_fee, initial, increment, effective_unix)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (deck, prefix, effective_unix) DO UPDATE SET
		destination = excluded.destination, per_minute = excluded.per_minute, connect_fee = excluded.connect_fee,
		initial = excluded.initial, increment = excluded.increment`)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, r := range rates {
		if _, err := st.ExecContext(ctx, deck.Name, r.Prefix, r.Destination, r.PerMinute, r.ConnectFee, r.Initial, r.Increment,
			effectiveUnix(r.EffectiveFrom)); err != nil {
			return fmt.Errorf("deck %s prefix %s: %w", deck.Name, r.Prefix, err)
		}
	}
	if err := bumpRates(ctx, tx); err != nil {
		return err
	}
	return tx.Commit()
}

func bumpRates(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `UPDATE rates_version SET version = version + 1 WHERE id = 1`)
	return err
}

const deckQuery = `SELECT d.name, d.currency, d.created_unix, (SELECT COUNT(*) FROM rates r WHERE r.deck = d.name) FROM rate_decks d`

func scanDeck(r scanner) (store.RateDeck, error) {
	var d store.RateDeck
	var created int64
	err := r.Scan(&d.Name, &d.Currency, &created, &d.Rates)
	d.Created = time.Unix(created, 0)
	return d, err
}

// GetDeck returns one deck with its row count.
func (s *Store) GetDeck(ctx context.Context, name string) (store.RateDeck, error) {
	d, err := scanDeck(s.db.QueryRowContext(ctx, deckQuery+` WHERE d.name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("rate deck %s: %w", name, store.ErrNotFound)
	}
	return d, err
}

// ListDecks returns every deck by name.
func (s *Store) ListDecks(ctx context.Context) ([]store.RateDeck, error) {
	return queryAll(ctx, s.db, scanDeck, deckQuery+` ORDER BY d.name`)
}

// DeleteDeck removes a deck and its rates.
func (s *Store) DeleteDeck(ctx context.Context, name string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM rate_decks WHERE name = ?`, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("rate deck %s: %w", name, store.ErrNotFound)
	}
	if err := bumpRates(ctx, tx); err != nil {
		return err
	}
	return tx.Commit()
}

const rateCols = `prefix, destination, per_minute, connect_fee, initial, increment, effective_unix`

func scanRate(r scanner) (store.Rate, error) {
	var x store.Rate
	var eff int64
	err := r.Scan(&x.Prefix, &x.Destination, &x.PerMinute, &x.ConnectFee, &x.Initial, &x.Increment, &eff)
	x.EffectiveFrom = fromEffective(eff)
	return x, err
}

// ListRates returns a deck's rows under a prefix.
func (s *Store) ListRates(ctx context.Context, deck, prefix string, limit int) ([]store.Rate, error) {
	if limit <= 0 {
		limit = -1
	}
	// Every string starting with prefix sorts in [prefix, prefix+U+10FFFF).
	return queryAll(ctx, s.db, scanRate, `SELECT `+rateCols+` FROM rates WHERE deck = ? AND prefix >= ? AND prefix < ?
		ORDER BY prefix, effective_unix LIMIT ?`, deck, prefix, prefix+"\U0010FFFF", limit)
}

// EachRate streams a deck's rows.
func (s *Store) EachRate(ctx context.Context, deck string, fn func(store.Rate) error) error {
	rows, err := s.db.QueryContext(ctx, `SELECT `+rateCols+` FROM rates WHERE deck = ?`, deck)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRate(rows)
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// RatesVersion returns a counter bumped by every deck change.
func (s *Store) RatesVersion(ctx context.Context) (int64, error) {
	var v int64
	err := s.db.QueryRowContext(ctx, `SELECT version FROM rates_version WHERE id = 1`).Scan(&v)
	return v, err
}

// AccountsVersion returns accounts_version (0008) and the newest ledger id.
func (s *Store) AccountsVersion(ctx context.Context) (meta, ledger int64, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT (SELECT version FROM accounts_version WHERE id = 1), (SELECT COALESCE(MAX(id), 0) FROM ledger)`).Scan(&meta, &ledger)
	return meta, ledger, err
}
