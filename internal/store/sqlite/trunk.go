package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kaopu/kaopu/internal/store"
)

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

const trunkCols = `name, address, transport, auth, username, password, networks, channels, codecs, caller_id,
	send_pai, honour_privacy, number_format, qualify_seconds, expires_seconds, enabled, created_unix, media, tls_verify, tls_ca`

func trunkArgs(t store.Trunk) []any {
	return []any{t.Name, t.Address, t.Transport, t.Auth, t.Username, t.Password, strings.Join(t.Networks, ","),
		t.Channels, strings.Join(t.Codecs, ","), t.CallerID, boolInt(t.SendPAI), boolInt(t.HonourPrivacy),
		t.NumberFormat, int64(t.Qualify / time.Second), int64(t.Expires / time.Second), boolInt(t.Enabled), t.Created.Unix(), t.Media, boolInt(t.TLSVerify), t.TLSCA}
}

func scanTrunk(r scanner) (store.Trunk, error) {
	var t store.Trunk
	var networks, codecs string
	var pai, privacy, enabled, verify int
	var qualify, expires, created int64
	err := r.Scan(&t.Name, &t.Address, &t.Transport, &t.Auth, &t.Username, &t.Password, &networks, &t.Channels, &codecs,
		&t.CallerID, &pai, &privacy, &t.NumberFormat, &qualify, &expires, &enabled, &created, &t.Media, &verify, &t.TLSCA)
	t.TLSVerify = verify != 0
	t.Networks, t.Codecs = splitList(networks), splitList(codecs)
	t.SendPAI, t.HonourPrivacy, t.Enabled = pai != 0, privacy != 0, enabled != 0
	t.Qualify, t.Expires = time.Duration(qualify)*time.Second, time.Duration(expires)*time.Second
	t.Created = time.Unix(created, 0)
	return t, err
}

// AddTrunk inserts a trunk; store.ErrExists when the name is taken.
func (s *Store) AddTrunk(ctx context.Context, t store.Trunk) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO trunks (`+trunkCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`, trunkArgs(t)...)
	if isUnique(err) {
		return fmt.Errorf("trunk %s: %w", t.Name, store.ErrExists)
	}
	return err
}

// UpdateTrunk replaces every field of trunk t.Name but its creation time.
func (s *Store) UpdateTrunk(ctx context.Context, t store.Trunk) error {
	a := trunkArgs(t)
	res, err := s.db.ExecContext(ctx, `UPDATE trunks SET address=?, transport=?, auth=?, username=?, password=?, networks=?,
		channels=?, codecs=?, caller_id=?, send_pai=?, honour_privacy=?, number_format=?, qualify_seconds=?, expires_seconds=?,
		enabled=?, media=?, tls_verify=?, tls_ca=? WHERE name=?`, append(append(a[1:16], t.Media, boolInt(t.TLSVerify), t.TLSCA), t.Name)...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("trunk %s: %w", t.Name, store.ErrNotFound)
	}
	return nil
}

// DeleteTrunk removes a trunk no route or DID names (store.ErrInUse).
func (s *Store) DeleteTrunk(ctx context.Context, name string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT name, trunks FROM routes`)
	if err != nil {
		return err
	}
	var users []string
	for rows.Next() {
		var route, trunks string
		if err := rows.Scan(&route, &trunks); err != nil {
			rows.Close()
			return err
		}
		for _, t := range splitList(trunks) {
			if t == name {
				users = append(users, "route "+route)
			}
		}
	}
	rows.Close()
	var dids int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM dids WHERE trunk = ?`, name).Scan(&dids); err != nil {
		return err
	}
	if dids > 0 {
		users = append(users, fmt.Sprintf("%d DID(s)", dids))
	}
	if len(users) > 0 {
		return fmt.Errorf("trunk %s is used by %s: %w", name, strings.Join(users, ", "), store.ErrInUse)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM trunks WHERE name = ?`, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("trunk %s: %w", name, store.ErrNotFound)
	}
	return tx.Commit()
}

// GetTrunk returns one trunk.
func (s *Store) GetTrunk(ctx context.Context, name string) (store.Trunk, error) {
	t, err := scanTrunk(s.db.QueryRowContext(ctx, `SELECT `+trunkCols+` FROM trunks WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("trunk %s: %w", name, store.ErrNotFound)
	}
	return t, err
}

// ListTrunks returns every trunk ordered by name.
func (s *Store) ListTrunks(ctx context.Context) ([]store.Trunk, error) {
	return queryAll(ctx, s.db, scanTrunk, `SELECT `+trunkCols+` FROM trunks ORDER BY name`)
}

// AddRoute inserts a route whose trunks all exist (store.ErrNotFound
// otherwise); store.ErrExists when the name is taken.
func (s *Store) AddRoute(ctx context.Context, r store.Route) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, t := range r.Trunks {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM trunks WHERE name = ?`, t).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("trunk %s: %w", t, store.ErrNotFound)
		}
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO routes (name, pattern, trunks, strip, prepend, priority, created_unix) VALUES (?,?,?,?,?,?,?)`,
		r.Name, r.Pattern, strings.Join(r.Trunks, ","), r.Strip, r.Prepend, r.Priority, r.Created.Unix())
	if isUnique(err) {
		return fmt.Errorf("route %s: %w", r.Name, store.ErrExists)
	}
	if err != nil {
		return err
	}
	return tx.Commit()
}

// DeleteRoute removes a route.
func (s *Store) DeleteRoute(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM routes WHERE name = ?`, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("route %s: %w", name, store.ErrNotFound)
	}
	return nil
}

// ListRoutes returns routes by priority, then name: the order they are tried.
func (s *Store) ListRoutes(ctx context.Context) ([]store.Route, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, pattern, trunks, strip, prepend, priority, created_unix FROM routes ORDER BY priority, name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Route
	for rows.Next() {
		var r store.Route
		var trunks string
		var created int64
		if err := rows.Scan(&r.Name, &r.Pattern, &trunks, &r.Strip, &r.Prepend, &r.Priority, &created); err != nil {
			return nil, err
		}
		r.Trunks, r.Created = splitList(trunks), time.Unix(created, 0)
		out = append(out, r)
	}
	return out, rows.Err()
}

// AddDID inserts a DID; store.ErrExists when the number is taken,
// store.ErrNotFound when its trunk does not exist.
func (s *Store) AddDID(ctx context.Context, d store.DID) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if d.Trunk != "" {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM trunks WHERE name = ?`, d.Trunk).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("trunk %s: %w", d.Trunk, store.ErrNotFound)
		}
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO dids (number, target, trunk, created_unix) VALUES (?,?,?,?)`,
		d.Number, d.Target, d.Trunk, d.Created.Unix())
	if isUnique(err) {
		return fmt.Errorf("DID %s: %w", d.Number, store.ErrExists)
	}
	if err != nil {
		return err
	}
	return tx.Commit()
}

// DeleteDID removes a DID.
func (s *Store) DeleteDID(ctx context.Context, number string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM dids WHERE number = ?`, number)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("DID %s: %w", number, store.ErrNotFound)
	}
	return nil
}

// ListDIDs returns every DID ordered by number.
func (s *Store) ListDIDs(ctx context.Context) ([]store.DID, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT number, target, trunk, created_unix FROM dids ORDER BY number`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.DID
	for rows.Next() {
		var d store.DID
		var created int64
		if err := rows.Scan(&d.Number, &d.Target, &d.Trunk, &created); err != nil {
			return nil, err
		}
		d.Created = time.Unix(created, 0)
		out = append(out, d)
	}
	return out, rows.Err()
}

// TrunksVersion returns a counter bumped by every change to trunks,
// routes and DIDs.
func (s *Store) TrunksVersion(ctx context.Context) (int64, error) {
	var v int64
	err := s.db.QueryRowContext(ctx, `SELECT version FROM trunks_version WHERE id = 1`).Scan(&v)
	return v, err
}
