-- Call detail records. Times are Unix milliseconds; answer_ms and end_ms
-- are NULL until reached. legs is a JSON array of per-leg media counters.
-- AUTOINCREMENT: an id is never reused, even after old rows are purged.
CREATE TABLE cdrs (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	call_id     TEXT    NOT NULL,
	caller      TEXT    NOT NULL DEFAULT '',
	callee      TEXT    NOT NULL DEFAULT '',
	dialed      TEXT    NOT NULL DEFAULT '',
	start_ms    INTEGER NOT NULL,
	answer_ms   INTEGER,
	end_ms      INTEGER,
	duration    INTEGER NOT NULL DEFAULT 0,
	billsec     INTEGER NOT NULL DEFAULT 0,
	disposition TEXT    NOT NULL DEFAULT '',
	cause       INTEGER NOT NULL DEFAULT 0,
	codec       TEXT    NOT NULL DEFAULT '',
	flags       TEXT    NOT NULL DEFAULT '',
	legs        TEXT    NOT NULL DEFAULT '[]',
	active      INTEGER NOT NULL DEFAULT 1
);

CREATE INDEX cdrs_start ON cdrs (start_ms);
CREATE INDEX cdrs_call_id ON cdrs (call_id);
-- Only the few rows of calls in progress: what crash recovery scans.
CREATE INDEX cdrs_active ON cdrs (active) WHERE active = 1;
