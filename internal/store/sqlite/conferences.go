package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/kaopu/kaopu/internal/store"
)

const conferenceCols = `number, name, pin, max_members, created_unix`

// AddConference inserts a room; store.ErrExists when the number is taken.
func (s *Store) AddConference(ctx context.Context, c store.Conference) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO conferences (`+conferenceCols+`) VALUES (?, ?, ?, ?, ?)`,
		c.Number, c.Name, c.PIN, c.Max, c.Created.Unix())
	if isUnique(err) {
		return fmt.Errorf("conference %s: %w", c.Number, store.ErrExists)
	}
	return err
}

// DeleteConference removes a room; store.ErrNotFound.
func (s *Store) DeleteConference(ctx context.Context, number string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM conferences WHERE number = ?`, number)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("conference %s: %w", number, store.ErrNotFound)
	}
	return nil
}

func scanConference(r scanner) (store.Conference, error) {
	var c store.Conference
	var created int64
	err := r.Scan(&c.Number, &c.Name, &c.PIN, &c.Max, &created)
	c.Created = time.Unix(created, 0)
	return c, err
}

// GetConference returns a room by number; store.ErrNotFound.
func (s *Store) GetConference(ctx context.Context, number string) (store.Conference, error) {
	c, err := scanConference(s.db.QueryRowContext(ctx, `SELECT `+conferenceCols+` FROM conferences WHERE number = ?`, number))
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("conference %s: %w", number, store.ErrNotFound)
	}
	return c, err
}

// ListConferences returns every room ordered by number.
func (s *Store) ListConferences(ctx context.Context) ([]store.Conference, error) {
	return queryAll(ctx, s.db, scanConference, `SELECT `+conferenceCols+` FROM conferences ORDER BY number`)
}

// ConferencesVersion returns a counter bumped by every change to rooms.
func (s *Store) ConferencesVersion(ctx context.Context) (int64, error) {
	var v int64
	err := s.db.QueryRowContext(ctx, `SELECT version FROM conferences_version WHERE id = 1`).Scan(&v)
	return v, err
}
