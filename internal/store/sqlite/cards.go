package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/kaopu/kaopu/internal/store"
)

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func timeOrZero(u int64) time.Time {
	if u == 0 {
		return time.Time{}
	}
	return time.Unix(u, 0)
}

// AddCards inserts cards and their opening balances in one transaction.
func (s *Store) AddCards(ctx context.Context, cs []store.Card) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ins, err := tx.PrepareContext(ctx, `INSERT INTO cards (number, pin_hash, balance, currency, plan, expires_unix, state, created_unix)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	led, err := tx.PrepareContext(ctx, `INSERT INTO card_ledger (at_ms, card, amount, balance_after, reason) VALUES (?, ?, ?, ?, 'issued')`)
	if err != nil {
		return err
	}
	defer led.Close()
	for _, c := range cs {
		if c.State == "" {
			c.State = "active"
		}
		if _, err := ins.ExecContext(ctx, c.Number, c.PINHash, c.Balance, c.Currency, c.Plan, unixOrZero(c.Expires), c.State, c.Created.Unix()); err != nil {
			if isUnique(err) {
				return fmt.Errorf("card %s: %w", c.Number, store.ErrExists)
			}
			return fmt.Errorf("card %s: %w", c.Number, err)
		}
		if _, err := led.ExecContext(ctx, c.Created.UnixMilli(), c.Number, c.Balance, c.Balance); err != nil {
			return err
		}
	}
	return tx.Commit()
}

const cardColumns = `number, pin_hash, balance, currency, plan, expires_unix, state, created_unix, used_unix`

func scanCard(sc interface{ Scan(...any) error }) (store.Card, error) {
	var c store.Card
	var exp, created, used int64
	if err := sc.Scan(&c.Number, &c.PINHash, &c.Balance, &c.Currency, &c.Plan, &exp, &c.State, &created, &used); err != nil {
		return c, err
	}
	c.Expires, c.Created, c.Used = timeOrZero(exp), time.Unix(created, 0), timeOrZero(used)
	return c, nil
}

// GetCard returns one card.
func (s *Store) GetCard(ctx context.Context, number string) (store.Card, error) {
	c, err := scanCard(s.db.QueryRowContext(ctx, `SELECT `+cardColumns+` FROM cards WHERE number = ?`, number))
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("card: %w", store.ErrNotFound)
	}
	return c, err
}

// ListCards returns every card by number.
func (s *Store) ListCards(ctx context.Context) ([]store.Card, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+cardColumns+` FROM cards ORDER BY number`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Card
	for rows.Next() {
		c, err := scanCard(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// SetCardState blocks or unblocks a card.
func (s *Store) SetCardState(ctx context.Context, number, state string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE cards SET state = ? WHERE number = ?`, state, number)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("card %s: %w", number, store.ErrNotFound)
	}
	return nil
}

// DebitCard takes up to amount from a card's balance with its ledger entry.
func (s *Store) DebitCard(ctx context.Context, number string, amount int64, reason, callID string) (store.CardEntry, error) {
	if amount < 0 {
		return store.CardEntry{}, fmt.Errorf("debit of %d: negative", amount)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return store.CardEntry{}, err
	}
	defer tx.Rollback()
	var bal int64
	if err := tx.QueryRowContext(ctx, `SELECT balance FROM cards WHERE number = ?`, number).Scan(&bal); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return store.CardEntry{}, fmt.Errorf("card %s: %w", number, store.ErrNotFound)
		}
		return store.CardEntry{}, err
	}
	take := min(amount, bal)
	now := time.Now()
	e := store.CardEntry{At: now, Card: number, Amount: -take, BalanceAfter: bal - take, Reason: reason, CallID: callID}
	if _, err := tx.ExecContext(ctx, `UPDATE cards SET balance = ?, used_unix = ? WHERE number = ?`, e.BalanceAfter, now.Unix(), number); err != nil {
		return store.CardEntry{}, err
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO card_ledger (at_ms, card, amount, balance_after, reason, call_id) VALUES (?, ?, ?, ?, ?, ?)`,
		now.UnixMilli(), number, e.Amount, e.BalanceAfter, reason, callID)
	if err != nil {
		return store.CardEntry{}, err
	}
	e.ID, _ = res.LastInsertId()
	return e, tx.Commit()
}

// CardLedger returns a card's entries, newest first.
func (s *Store) CardLedger(ctx context.Context, number string) ([]store.CardEntry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, at_ms, card, amount, balance_after, reason, call_id FROM card_ledger
		WHERE card = ? ORDER BY id DESC`, number)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.CardEntry
	for rows.Next() {
		var e store.CardEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Card, &e.Amount, &e.BalanceAfter, &e.Reason, &e.CallID); err != nil {
			return nil, err
		}
		e.At = time.UnixMilli(at)
		out = append(out, e)
	}
	return out, rows.Err()
}
