-- Voicemail (issue 6: a DID or an unanswered call reaches a mailbox).
-- A user's mailbox: pin_hash is "" (no PIN: only the user's own
-- authenticated phone gets in) or a PBKDF2 hash (internal/voicemail).
CREATE TABLE mailboxes (
	user_name    TEXT PRIMARY KEY,
	enabled      INTEGER NOT NULL DEFAULT 1,
	pin_hash     TEXT NOT NULL DEFAULT '',
	created_unix INTEGER NOT NULL
);

-- wav: the message as a WAV file, 8 kHz mono 16-bit PCM.
CREATE TABLE voice_messages (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	mailbox       TEXT NOT NULL,
	caller_number TEXT NOT NULL DEFAULT '',
	caller_name   TEXT NOT NULL DEFAULT '',
	received_unix INTEGER NOT NULL,
	duration_ms   INTEGER NOT NULL,
	heard         INTEGER NOT NULL DEFAULT 0,
	wav           BLOB NOT NULL
);
CREATE INDEX voice_messages_mailbox ON voice_messages (mailbox, received_unix);
