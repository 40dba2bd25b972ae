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

// AddCards inserts cards, their prepaid accounts and opening balances in
// one transaction.
func (s *Store) AddCards(ctx context.Context, cs []store.Card) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	acct, err := tx.PrepareContext(ctx, `INSERT INTO accounts (`+accountCols+`) VALUES (?, ?, 0, 0, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer acct.Close()
	card, err := tx.PrepareContext(ctx, `INSERT INTO cards (number, pin_hash, account, expires_unix, state, created_unix)
		VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer card.Close()
	for _, c := range cs {
		if c.State == "" {
			c.State = "active"
		}
		if c.Account == "" {
			c.Account = store.CardAccount(c.Number)
		}
		if _, err := acct.ExecContext(ctx, c.Account, store.Prepaid, c.Plan, c.Currency, c.Created.Unix()); err != nil {
			if isUnique(err) {
				return fmt.Errorf("account %s of card %s: %w", c.Account, c.Number, store.ErrExists)
			}
			return fmt.Errorf("card %s: %w", c.Number, err)
		}
		if _, err := card.ExecContext(ctx, c.Number, c.PINHash, c.Account, unixOrZero(c.Expires), c.State, c.Created.Unix()); err != nil {
			if isUnique(err) {
				return fmt.Errorf("card %s: %w", c.Number, store.ErrExists)
			}
			return fmt.Errorf("card %s: %w", c.Number, err)
		}
		if c.Balance != 0 {
			if _, err := postLedger(ctx, tx, store.LedgerEntry{At: c.Created, Account: c.Account, Amount: c.Balance, Reason: "card issued"}); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}

const cardSelect = `SELECT c.number, c.pin_hash, c.account, c.expires_unix, c.state, c.created_unix, a.balance, a.currency, a.plan
	FROM cards c JOIN accounts a ON a.name = c.account`

func scanCard(sc scanner) (store.Card, error) {
	var c store.Card
	var exp, created int64
	if err := sc.Scan(&c.Number, &c.PINHash, &c.Account, &exp, &c.State, &created, &c.Balance, &c.Currency, &c.Plan); err != nil {
		return c, err
	}
	c.Expires, c.Created = timeOrZero(exp), time.Unix(created, 0)
	return c, nil
}

// GetCard returns one card with its account's balance.
func (s *Store) GetCard(ctx context.Context, number string) (store.Card, error) {
	c, err := scanCard(s.db.QueryRowContext(ctx, cardSelect+` WHERE c.number = ?`, number))
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("card: %w", store.ErrNotFound)
	}
	return c, err
}

// ListCards returns every card by number.
func (s *Store) ListCards(ctx context.Context) ([]store.Card, error) {
	return queryAll(ctx, s.db, scanCard, cardSelect+` ORDER BY c.number`)
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
