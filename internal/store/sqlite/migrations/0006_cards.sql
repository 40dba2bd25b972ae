-- Prepaid calling cards (issue 6). The number is what the caller keys in
-- first; the PIN is kept only as a salted PBKDF2 hash (internal/callingcard
-- pin.go). Money is INTEGER micro-units (10^-6 of the currency).
CREATE TABLE cards (
	number       TEXT PRIMARY KEY,
	pin_hash     TEXT NOT NULL,
	balance      INTEGER NOT NULL CHECK (balance >= 0),
	currency     TEXT NOT NULL,
	plan         TEXT NOT NULL DEFAULT '',
	expires_unix INTEGER NOT NULL DEFAULT 0, -- 0: never
	state        TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'blocked')),
	created_unix INTEGER NOT NULL,
	used_unix    INTEGER NOT NULL DEFAULT 0  -- last charged call; 0: never
) WITHOUT ROWID;

-- Every change of a card's balance, as the accounts' ledger does.
CREATE TABLE card_ledger (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	at_ms         INTEGER NOT NULL,
	card          TEXT NOT NULL REFERENCES cards (number),
	amount        INTEGER NOT NULL,
	balance_after INTEGER NOT NULL,
	reason        TEXT NOT NULL DEFAULT '',
	call_id       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX card_ledger_card ON card_ledger (card, id);
