-- Per-user policy (issue 5). Empty or 0 follows the server's settings.
-- allow is a comma-separated list of destination classes the user may call.
ALTER TABLE users ADD COLUMN media_encryption TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN signalling TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN allow TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN max_concurrent INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN max_per_minute INTEGER NOT NULL DEFAULT 0;

-- Banned source addresses, kept across restarts and shared by nodes.
-- A row outlives its ban by a day so that the next ban of the same
-- source is longer (offences).
CREATE TABLE bans (
	addr         TEXT PRIMARY KEY,
	until_unix   INTEGER NOT NULL,
	reason       TEXT NOT NULL DEFAULT '',
	offences     INTEGER NOT NULL DEFAULT 1,
	created_unix INTEGER NOT NULL
);

CREATE TABLE bans_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
INSERT INTO bans_version (id, version) VALUES (1, 1);
CREATE TRIGGER bans_ins AFTER INSERT ON bans BEGIN UPDATE bans_version SET version = version + 1; END;
CREATE TRIGGER bans_upd AFTER UPDATE ON bans BEGIN UPDATE bans_version SET version = version + 1; END;
CREATE TRIGGER bans_del AFTER DELETE ON bans BEGIN UPDATE bans_version SET version = version + 1; END;
