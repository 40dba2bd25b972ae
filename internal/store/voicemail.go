package store

import (
	"context"
	"time"
)

// Mailbox is a user's voicemail box (internal/voicemail).
type Mailbox struct {
	User    string // the user's name (not an extension)
	Enabled bool   // unanswered calls to the user are diverted to it
	// PINHash is "" (no PIN: only the user's own authenticated phone gets
	// in) or the hash of the PIN asked when the box is reached from
	// elsewhere (a DID); see voicemail.HashPIN.
	PINHash string
	Created time.Time
}

// VoiceMessage is one message left in a mailbox.
type VoiceMessage struct {
	ID           int64
	Mailbox      string // the user's name
	CallerNumber string // "anonymous" for a hidden caller
	CallerName   string
	Received     time.Time
	Duration     time.Duration
	Heard        bool
	// WAV is the recording, 8 kHz mono 16-bit PCM; only GetMessage fills
	// it in (lists leave it nil).
	WAV []byte
}

// Voicemail is storage of mailboxes and their messages.
type Voicemail interface {
	// PutMailbox inserts or replaces a user's mailbox (its messages stay).
	PutMailbox(ctx context.Context, m Mailbox) error
	// GetMailbox returns a user's mailbox; ErrNotFound.
	GetMailbox(ctx context.Context, user string) (Mailbox, error)
	// ListMailboxes returns every mailbox ordered by user.
	ListMailboxes(ctx context.Context) ([]Mailbox, error)
	// AddMessage stores a message and returns its ID.
	AddMessage(ctx context.Context, m VoiceMessage) (int64, error)
	// ListMessages returns a mailbox's messages ("": every mailbox's),
	// oldest first, without their audio.
	ListMessages(ctx context.Context, mailbox string) ([]VoiceMessage, error)
	// GetMessage returns a message with its audio; ErrNotFound.
	GetMessage(ctx context.Context, id int64) (VoiceMessage, error)
	// SetHeard marks a message heard or new; ErrNotFound.
	SetHeard(ctx context.Context, id int64, heard bool) error
	// DeleteMessage removes a message; ErrNotFound.
	DeleteMessage(ctx context.Context, id int64) error
}
