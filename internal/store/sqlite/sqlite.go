package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kaopu/kaopu/internal/store"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a store.Store on one SQLite file.
type Store struct {
	db *sql.DB

	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt // prepared once, see prepared
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database at path and migrates it.
func Open(ctx context.Context, path string) (*Store, error) {
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)" +
		"&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	s := &Store{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.stmtMu.Lock()
	for _, st := range s.stmts {
		st.Close()
	}
	s.stmts = nil
	s.stmtMu.Unlock()
	return s.db.Close()
}

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_unix INTEGER NOT NULL)`); err != nil {
		return err
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: bad name", name)
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, v).Scan(&n); err != nil {
			tx.Rollback()
			return err
		}
		if n > 0 {
			tx.Rollback()
			continue
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", base, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_unix) VALUES (?, ?)`, v, time.Now().Unix()); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// AddUser inserts a new user; store.ErrExists when the name or extension is taken.
func (s *Store) AddUser(ctx context.Context, u store.User) error {
	// A login name is a user name or an extension: neither may shadow the other.
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE ext = ? OR (? <> '' AND name = ?)`,
		u.Name, u.Ext, u.Ext).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("user %s / extension %s: %w", u.Name, u.Ext, store.ErrExists)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO users (name, ext, realm, ha1_md5, ha1_sha256, ext_ha1_md5, ext_ha1_sha256, created_unix,
		media_encryption, signalling, allow, max_concurrent, max_per_minute)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, u.Name, nullable(u.Ext), u.Realm, u.HA1MD5, u.HA1SHA256, u.ExtHA1MD5, u.ExtHA1SHA256, u.Created.Unix(),
		u.Policy.MediaEncryption, u.Policy.Signalling, strings.Join(u.Policy.Allow, ","), u.Policy.MaxConcurrent, u.Policy.MaxPerMinute)
	if isUnique(err) {
		return fmt.Errorf("user %s: %w", u.Name, store.ErrExists)
	}
	return err
}

// UpdateUser replaces a user's extension, realm, HA1 values and policy.
func (s *Store) UpdateUser(ctx context.Context, u store.User) error {
	res, err := s.db.ExecContext(ctx, `UPDATE users SET ext = ?, realm = ?, ha1_md5 = ?, ha1_sha256 = ?, ext_ha1_md5 = ?, ext_ha1_sha256 = ?,
		media_encryption = ?, signalling = ?, allow = ?, max_concurrent = ?, max_per_minute = ? WHERE name = ?`,
		nullable(u.Ext), u.Realm, u.HA1MD5, u.HA1SHA256, u.ExtHA1MD5, u.ExtHA1SHA256,
		u.Policy.MediaEncryption, u.Policy.Signalling, strings.Join(u.Policy.Allow, ","), u.Policy.MaxConcurrent, u.Policy.MaxPerMinute, u.Name)
	if isUnique(err) {
		return fmt.Errorf("extension %s: %w", u.Ext, store.ErrExists)
	}
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("user %s: %w", u.Name, store.ErrNotFound)
	}
	return nil
}

// DeleteUser removes a user and its bindings.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE name = ?`, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("user %s: %w", name, store.ErrNotFound)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM bindings WHERE aor = ?`, name); err != nil {
		return err
	}
	return tx.Commit()
}

const userCols = `name, COALESCE(ext, ''), realm, ha1_md5, ha1_sha256, ext_ha1_md5, ext_ha1_sha256, created_unix,
	media_encryption, signalling, allow, max_concurrent, max_per_minute`

type scanner interface{ Scan(...any) error }

func scanUser(r scanner) (store.User, error) {
	var u store.User
	var created int64
	var allow string
	p := &u.Policy
	err := r.Scan(&u.Name, &u.Ext, &u.Realm, &u.HA1MD5, &u.HA1SHA256, &u.ExtHA1MD5, &u.ExtHA1SHA256, &created,
		&p.MediaEncryption, &p.Signalling, &allow, &p.MaxConcurrent, &p.MaxPerMinute)
	u.Created = time.Unix(created, 0)
	if allow != "" {
		p.Allow = strings.Split(allow, ",")
	}
	return u, err
}

// GetUser returns one user by name.
func (s *Store) GetUser(ctx context.Context, name string) (store.User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("user %s: %w", name, store.ErrNotFound)
	}
	return u, err
}

// ListUsers returns all users ordered by name.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	return queryAll(ctx, s.db, scanUser, `SELECT `+userCols+` FROM users ORDER BY name`)
}

// EachUser streams all users to fn.
func (s *Store) EachUser(ctx context.Context, fn func(store.User) error) error {
	rows, err := s.db.QueryContext(ctx, `SELECT `+userCols+` FROM users`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return err
		}
		if err := fn(u); err != nil {
			return err
		}
	}
	return rows.Err()
}

// UsersVersion returns a counter bumped by every change to users.
func (s *Store) UsersVersion(ctx context.Context) (int64, error) {
	var v int64
	err := s.db.QueryRowContext(ctx, `SELECT version FROM users_version WHERE id = 1`).Scan(&v)
	return v, err
}

// AddUsers inserts many users in one transaction (bulk import).
func (s *Store) AddUsers(ctx context.Context, us []store.User) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT INTO users (name, ext, realm, ha1_md5, ha1_sha256, ext_ha1_md5, ext_ha1_sha256, created_unix,
		media_encryption, signalling, allow, max_concurrent, max_per_minute)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, u := range us {
		if _, err := st.ExecContext(ctx, u.Name, nullable(u.Ext), u.Realm, u.HA1MD5, u.HA1SHA256, u.ExtHA1MD5, u.ExtHA1SHA256, u.Created.Unix(),
			u.Policy.MediaEncryption, u.Policy.Signalling, strings.Join(u.Policy.Allow, ","), u.Policy.MaxConcurrent, u.Policy.MaxPerMinute); err != nil {
			if isUnique(err) {
				return fmt.Errorf("user %s: %w", u.Name, store.ErrExists)
			}
			return err
		}
	}
	return tx.Commit()
}

// LoadBindings returns every binding that has not expired at now.
func (s *Store) LoadBindings(ctx context.Context, now time.Time) ([]store.Binding, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT aor, contact, source, transport, local_addr, call_id, cseq, q,
		expires_unix, user_agent, instance, reg_id, updated_unix FROM bindings WHERE expires_unix > ?`, now.Unix())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Binding
	for rows.Next() {
		var b store.Binding
		var exp, upd int64
		if err := rows.Scan(&b.AOR, &b.Contact, &b.Source, &b.Transport, &b.LocalAddr, &b.CallID, &b.CSeq, &b.Q,
			&exp, &b.UserAgent, &b.Instance, &b.RegID, &upd); err != nil {
			return nil, err
		}
		b.Expires = time.Unix(exp, 0)
		b.Updated = time.Unix(upd, 0)
		out = append(out, b)
	}
	return out, rows.Err()
}

// ApplyBindings applies a batch of binding changes in one transaction.
func (s *Store) ApplyBindings(ctx context.Context, ops []store.BindingOp) error {
	if len(ops) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	up, err := tx.PrepareContext(ctx, `INSERT INTO bindings (aor, contact, source, transport, local_addr, call_id, cseq, q,
		expires_unix, user_agent, instance, reg_id, updated_unix) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT (aor, contact) DO UPDATE SET source=excluded.source, transport=excluded.transport,
		local_addr=excluded.local_addr, call_id=excluded.call_id, cseq=excluded.cseq, q=excluded.q,
		expires_unix=excluded.expires_unix, user_agent=excluded.user_agent, instance=excluded.instance,
		reg_id=excluded.reg_id, updated_unix=excluded.updated_unix`)
	if err != nil {
		return err
	}
	defer up.Close()
	for _, op := range ops {
		b := op.Binding
		switch {
		case op.Delete && b.Contact == "":
			_, err = tx.ExecContext(ctx, `DELETE FROM bindings WHERE aor = ?`, b.AOR)
		case op.Delete:
			_, err = tx.ExecContext(ctx, `DELETE FROM bindings WHERE aor = ? AND contact = ?`, b.AOR, b.Contact)
		default:
			_, err = up.ExecContext(ctx, b.AOR, b.Contact, b.Source, b.Transport, b.LocalAddr, b.CallID, b.CSeq, b.Q,
				b.Expires.Unix(), b.UserAgent, b.Instance, b.RegID, b.Updated.Unix())
		}
		if err != nil {
			return err
		}
	}
	return tx.Commit()
}

// DeleteExpiredBindings removes rows that expired before now.
func (s *Store) DeleteExpiredBindings(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM bindings WHERE expires_unix <= ?`, now.Unix())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// GetSetting returns a setting; store.ErrNotFound when unset.
func (s *Store) GetSetting(ctx context.Context, key string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("setting %s: %w", key, store.ErrNotFound)
	}
	return v, err
}

// PutSetting sets a setting.
func (s *Store) PutSetting(ctx context.Context, key, value string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	return err
}

// PutBan inserts or replaces the ban of b.Addr.
func (s *Store) PutBan(ctx context.Context, b store.Ban) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO bans (addr, until_unix, reason, offences, created_unix) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (addr) DO UPDATE SET until_unix = excluded.until_unix, reason = excluded.reason, offences = excluded.offences`,
		b.Addr, b.Until.Unix(), b.Reason, b.Offences, b.Created.Unix())
	return err
}

// DeleteBan lifts the ban of addr.
func (s *Store) DeleteBan(ctx context.Context, addr string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM bans WHERE addr = ?`, addr)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("ban of %s: %w", addr, store.ErrNotFound)
	}
	return nil
}

// ListBans returns every ban row ordered by address.
func (s *Store) ListBans(ctx context.Context) ([]store.Ban, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT addr, until_unix, reason, offences, created_unix FROM bans ORDER BY addr`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Ban
	for rows.Next() {
		var b store.Ban
		var until, created int64
		if err := rows.Scan(&b.Addr, &until, &b.Reason, &b.Offences, &created); err != nil {
			return nil, err
		}
		b.Until, b.Created = time.Unix(until, 0), time.Unix(created, 0)
		out = append(out, b)
	}
	return out, rows.Err()
}

// DeleteExpiredBans drops rows whose ban ended before the given time.
func (s *Store) DeleteExpiredBans(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM bans WHERE until_unix < ?`, before.Unix())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// BansVersion returns a counter bumped by every change to bans.
func (s *Store) BansVersion(ctx context.Context) (int64, error) {
	var v int64
	err := s.db.QueryRowContext(ctx, `SELECT version FROM bans_version WHERE id = 1`).Scan(&v)
	return v, err
}

// queryAll runs a query and scans every row it returns.
func queryAll[T any](ctx context.Context, db *sql.DB, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
