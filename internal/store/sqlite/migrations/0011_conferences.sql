-- Conference rooms (issue 6: a DID or a user reaches a conference). The
-- PIN is a secret shared with the participants and kept as given (see
-- store.Conference). conferences_version tells a running server, in any
-- process, that rooms changed (store.Conferences.ConferencesVersion).
CREATE TABLE conferences (
	number       TEXT PRIMARY KEY,
	name         TEXT NOT NULL DEFAULT '',
	pin          TEXT NOT NULL DEFAULT '',
	max_members  INTEGER NOT NULL DEFAULT 0 CHECK (max_members >= 0), -- 0: no limit
	created_unix INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE conferences_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
INSERT INTO conferences_version (id, version) VALUES (1, 1);
CREATE TRIGGER conferences_ins AFTER INSERT ON conferences BEGIN UPDATE conferences_version SET version = version + 1; END;
CREATE TRIGGER conferences_upd AFTER UPDATE ON conferences BEGIN UPDATE conferences_version SET version = version + 1; END;
CREATE TRIGGER conferences_del AFTER DELETE ON conferences BEGIN UPDATE conferences_version SET version = version + 1; END;
