-- Prepaid calling cards (issue 6). A card is a prepaid account of its own
-- (accounts, 0004: balance, currency, rate deck, every change in the
-- ledger) with a number and a PIN. The number is what the caller keys in
-- first; the PIN is kept only as a salted PBKDF2 hash (internal/callingcard
-- pin.go).
CREATE TABLE cards (
	number       TEXT PRIMARY KEY,
	pin_hash     TEXT NOT NULL,
	account      TEXT NOT NULL UNIQUE REFERENCES accounts (name),
	expires_unix INTEGER NOT NULL DEFAULT 0, -- 0: never
	state        TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'blocked')),
	created_unix INTEGER NOT NULL
) WITHOUT ROWID;
