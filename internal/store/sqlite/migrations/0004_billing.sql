-- Rating and accounts (issue 6). Money is INTEGER micro-units (10^-6 of the
-- currency, see internal/money): exact, and summed exactly by SQL.

CREATE TABLE rate_decks (
	name         TEXT PRIMARY KEY,
	currency     TEXT NOT NULL,
	created_unix INTEGER NOT NULL
);

-- One row per prefix and effective time; effective_unix 0 is "always".
CREATE TABLE rates (
	deck           TEXT NOT NULL REFERENCES rate_decks (name) ON DELETE CASCADE,
	prefix         TEXT NOT NULL,
	destination    TEXT NOT NULL DEFAULT '',
	per_minute     INTEGER NOT NULL,
	connect_fee    INTEGER NOT NULL DEFAULT 0,
	initial        INTEGER NOT NULL,
	increment      INTEGER NOT NULL CHECK (increment >= 1),
	effective_unix INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (deck, prefix, effective_unix)
) WITHOUT ROWID;

-- Bumped once per deck change (an import of 100,000 rows is one change).
CREATE TABLE rates_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
INSERT INTO rates_version (id, version) VALUES (1, 1);

CREATE TABLE accounts (
	name         TEXT PRIMARY KEY,
	type         TEXT NOT NULL CHECK (type IN ('prepaid', 'postpaid')),
	balance      INTEGER NOT NULL DEFAULT 0,
	credit_limit INTEGER NOT NULL DEFAULT 0 CHECK (credit_limit >= 0),
	plan         TEXT NOT NULL DEFAULT '',
	currency     TEXT NOT NULL,
	created_unix INTEGER NOT NULL
);

-- Every balance change. AUTOINCREMENT: ids are never reused.
CREATE TABLE ledger (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	at_ms         INTEGER NOT NULL,
	account       TEXT NOT NULL REFERENCES accounts (name),
	amount        INTEGER NOT NULL,
	balance_after INTEGER NOT NULL,
	reason        TEXT NOT NULL DEFAULT '',
	cdr_id        INTEGER,
	call_id       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX ledger_account ON ledger (account, id);

-- The account a user's calls are charged to; NULL: none.
ALTER TABLE users ADD COLUMN account TEXT REFERENCES accounts (name);
CREATE INDEX users_account ON users (account) WHERE account IS NOT NULL;

-- What a rated call cost; empty and 0 on calls that were not rated.
ALTER TABLE cdrs ADD COLUMN account TEXT NOT NULL DEFAULT '';
ALTER TABLE cdrs ADD COLUMN destination TEXT NOT NULL DEFAULT '';
ALTER TABLE cdrs ADD COLUMN rate INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cdrs ADD COLUMN billed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cdrs ADD COLUMN cost INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cdrs ADD COLUMN currency TEXT NOT NULL DEFAULT '';
