package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/kaopu/kaopu/internal/store"
)

// pbxNumberTaken reports whether a group or a menu has number.
func pbxNumberTaken(ctx context.Context, tx *sql.Tx, number string) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM ring_groups WHERE number = ?1) +
		(SELECT COUNT(*) FROM ivr_menus WHERE number = ?1)`, number).Scan(&n)
	return n > 0, err
}

// AddGroup inserts a ring group; store.ErrExists when a group or a menu
// has its number.
func (s *Store) AddGroup(ctx context.Context, g store.Group) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if taken, err := pbxNumberTaken(ctx, tx, g.Number); err != nil {
		return err
	} else if taken {
		return fmt.Errorf("number %s: %w", g.Number, store.ErrExists)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO ring_groups (number, members, strategy, ring_seconds, fallback, created_unix)
		VALUES (?, ?, ?, ?, ?, ?)`, g.Number, strings.Join(g.Members, ","), g.Strategy, int64(g.RingTime/time.Second),
		g.Fallback, g.Created.Unix()); err != nil {
		return err
	}
	return tx.Commit()
}

// DeleteGroup removes a ring group.
func (s *Store) DeleteGroup(ctx context.Context, number string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM ring_groups WHERE number = ?`, number)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("group %s: %w", number, store.ErrNotFound)
	}
	return nil
}

// ListGroups returns every ring group ordered by number.
func (s *Store) ListGroups(ctx context.Context) ([]store.Group, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT number, members, strategy, ring_seconds, fallback, created_unix
		FROM ring_groups ORDER BY number`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Group
	for rows.Next() {
		var g store.Group
		var members string
		var ring, created int64
		if err := rows.Scan(&g.Number, &members, &g.Strategy, &ring, &g.Fallback, &created); err != nil {
			return nil, err
		}
		g.Members, g.RingTime, g.Created = splitList(members), time.Duration(ring)*time.Second, time.Unix(created, 0)
		out = append(out, g)
	}
	return out, rows.Err()
}

// AddMenu inserts an IVR menu; store.ErrExists when a group or a menu
// has its number.
func (s *Store) AddMenu(ctx context.Context, m store.Menu) error {
	opts, err := json.Marshal(m.Options)
	if err != nil {
		return err
	}
	if m.Options == nil {
		opts = []byte("{}")
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if taken, err := pbxNumberTaken(ctx, tx, m.Number); err != nil {
		return err
	} else if taken {
		return fmt.Errorf("number %s: %w", m.Number, store.ErrExists)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO ivr_menus (number, prompt, options, timeout_ms, retries, default_target,
		extension_dialing, created_unix) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, m.Number, m.Prompt, string(opts),
		m.Timeout.Milliseconds(), m.Retries, m.Default, boolInt(m.ExtensionDialing), m.Created.Unix()); err != nil {
		return err
	}
	return tx.Commit()
}

// DeleteMenu removes an IVR menu.
func (s *Store) DeleteMenu(ctx context.Context, number string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM ivr_menus WHERE number = ?`, number)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("menu %s: %w", number, store.ErrNotFound)
	}
	return nil
}

// ListMenus returns every IVR menu, prompts included, ordered by number.
func (s *Store) ListMenus(ctx context.Context) ([]store.Menu, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT number, prompt, options, timeout_ms, retries, default_target,
		extension_dialing, created_unix FROM ivr_menus ORDER BY number`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Menu
	for rows.Next() {
		var m store.Menu
		var opts string
		var timeout, created int64
		var ext int
		if err := rows.Scan(&m.Number, &m.Prompt, &opts, &timeout, &m.Retries, &m.Default, &ext, &created); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(opts), &m.Options); err != nil {
			return nil, fmt.Errorf("menu %s: options: %w", m.Number, err)
		}
		m.Timeout, m.ExtensionDialing, m.Created = time.Duration(timeout)*time.Millisecond, ext != 0, time.Unix(created, 0)
		out = append(out, m)
	}
	return out, rows.Err()
}

// PBXVersion returns a counter bumped by every change to groups and menus.
func (s *Store) PBXVersion(ctx context.Context) (int64, error) {
	var v int64
	err := s.db.QueryRowContext(ctx, `SELECT version FROM pbx_version WHERE id = 1`).Scan(&v)
	return v, err
}
