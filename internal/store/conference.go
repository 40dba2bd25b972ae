package store

import (
	"context"
	"time"
)

// Conference is a conference room (internal/conference): a number of
// ours that callers dial to meet, optionally behind a PIN.
type Conference struct {
	Number string // the digits dialed; unique
	Name   string // shown in lists and logs only
	// PIN, when set, is asked of every caller (DTMF). It is a secret
	// shared with the participants, kept as given so the owner can read
	// it again (kaopu conf list shows whether one is set, not the PIN).
	PIN     string
	Max     int // participants at once; 0: no limit
	Created time.Time
}

// Conferences is storage of conference rooms.
type Conferences interface {
	// AddConference inserts a room; ErrExists when the number is taken.
	AddConference(ctx context.Context, c Conference) error
	// DeleteConference removes a room; ErrNotFound.
	DeleteConference(ctx context.Context, number string) error
	// GetConference returns a room by number; ErrNotFound.
	GetConference(ctx context.Context, number string) (Conference, error)
	// ListConferences returns every room ordered by number.
	ListConferences(ctx context.Context) ([]Conference, error)
	// ConferencesVersion changes whenever a room changes, in any process.
	ConferencesVersion(ctx context.Context) (int64, error)
}
