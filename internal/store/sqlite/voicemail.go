package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/kaopu/kaopu/internal/store"
)

// PutMailbox inserts or replaces a user's mailbox; its messages stay.
func (s *Store) PutMailbox(ctx context.Context, m store.Mailbox) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO mailboxes (user_name, enabled, pin_hash, created_unix) VALUES (?, ?, ?, ?)
		ON CONFLICT (user_name) DO UPDATE SET enabled = excluded.enabled, pin_hash = excluded.pin_hash`,
		m.User, m.Enabled, m.PINHash, m.Created.Unix())
	return err
}

func scanMailbox(r scanner) (store.Mailbox, error) {
	var m store.Mailbox
	var created int64
	err := r.Scan(&m.User, &m.Enabled, &m.PINHash, &created)
	m.Created = time.Unix(created, 0)
	return m, err
}

// GetMailbox returns a user's mailbox; store.ErrNotFound.
func (s *Store) GetMailbox(ctx context.Context, user string) (store.Mailbox, error) {
	m, err := scanMailbox(s.db.QueryRowContext(ctx,
		`SELECT user_name, enabled, pin_hash, created_unix FROM mailboxes WHERE user_name = ?`, user))
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("mailbox %s: %w", user, store.ErrNotFound)
	}
	return m, err
}

// ListMailboxes returns every mailbox ordered by user.
func (s *Store) ListMailboxes(ctx context.Context) ([]store.Mailbox, error) {
	return queryAll(ctx, s.db, scanMailbox, `SELECT user_name, enabled, pin_hash, created_unix FROM mailboxes ORDER BY user_name`)
}

// AddMessage stores a message and returns its ID.
func (s *Store) AddMessage(ctx context.Context, m store.VoiceMessage) (int64, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO voice_messages (mailbox, caller_number, caller_name, received_unix,
		duration_ms, heard, wav) VALUES (?, ?, ?, ?, ?, ?, ?)`, m.Mailbox, m.CallerNumber, m.CallerName,
		m.Received.Unix(), m.Duration.Milliseconds(), m.Heard, m.WAV)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

const messageCols = `id, mailbox, caller_number, caller_name, received_unix, duration_ms, heard`

func scanMessage(r scanner, wav bool) (store.VoiceMessage, error) {
	var m store.VoiceMessage
	var received, ms int64
	dst := []any{&m.ID, &m.Mailbox, &m.CallerNumber, &m.CallerName, &received, &ms, &m.Heard}
	if wav {
		dst = append(dst, &m.WAV)
	}
	err := r.Scan(dst...)
	m.Received, m.Duration = time.Unix(received, 0), time.Duration(ms)*time.Millisecond
	return m, err
}

// ListMessages returns a mailbox's messages ("": all), oldest first,
// without their audio.
func (s *Store) ListMessages(ctx context.Context, mailbox string) ([]store.VoiceMessage, error) {
	list := func(r scanner) (store.VoiceMessage, error) { return scanMessage(r, false) }
	return queryAll(ctx, s.db, list, `SELECT `+messageCols+` FROM voice_messages
		WHERE ?1 = '' OR mailbox = ?1 ORDER BY received_unix, id`, mailbox)
}

// GetMessage returns a message with its audio; store.ErrNotFound.
func (s *Store) GetMessage(ctx context.Context, id int64) (store.VoiceMessage, error) {
	m, err := scanMessage(s.db.QueryRowContext(ctx, `SELECT `+messageCols+`, wav FROM voice_messages WHERE id = ?`, id), true)
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("message %d: %w", id, store.ErrNotFound)
	}
	return m, err
}

// SetHeard marks a message heard or new; store.ErrNotFound.
func (s *Store) SetHeard(ctx context.Context, id int64, heard bool) error {
	res, err := s.db.ExecContext(ctx, `UPDATE voice_messages SET heard = ? WHERE id = ?`, heard, id)
	return touched(res, err, fmt.Sprintf("message %d", id))
}

// DeleteMessage removes a message; store.ErrNotFound.
func (s *Store) DeleteMessage(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM voice_messages WHERE id = ?`, id)
	return touched(res, err, fmt.Sprintf("message %d", id))
}

// touched turns an update that touched no row into store.ErrNotFound.
func touched(res sql.Result, err error, what string) error {
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return nil
}
