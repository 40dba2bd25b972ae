CREATE TABLE users (
	name           TEXT PRIMARY KEY,
	ext            TEXT UNIQUE,
	realm          TEXT NOT NULL,
	ha1_md5        TEXT NOT NULL,
	ha1_sha256     TEXT NOT NULL,
	ext_ha1_md5    TEXT NOT NULL DEFAULT '',
	ext_ha1_sha256 TEXT NOT NULL DEFAULT '',
	created_unix   INTEGER NOT NULL
);

CREATE TABLE users_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
INSERT INTO users_version (id, version) VALUES (1, 1);
CREATE TRIGGER users_ins AFTER INSERT ON users BEGIN UPDATE users_version SET version = version + 1; END;
CREATE TRIGGER users_upd AFTER UPDATE ON users BEGIN UPDATE users_version SET version = version + 1; END;
CREATE TRIGGER users_del AFTER DELETE ON users BEGIN UPDATE users_version SET version = version + 1; END;

CREATE TABLE bindings (
	aor          TEXT NOT NULL,
	contact      TEXT NOT NULL,
	source       TEXT NOT NULL,
	transport    TEXT NOT NULL,
	local_addr   TEXT NOT NULL DEFAULT '',
	call_id      TEXT NOT NULL,
	cseq         INTEGER NOT NULL,
	q            TEXT NOT NULL DEFAULT '',
	expires_unix INTEGER NOT NULL,
	user_agent   TEXT NOT NULL DEFAULT '',
	instance     TEXT NOT NULL DEFAULT '',
	reg_id       TEXT NOT NULL DEFAULT '',
	updated_unix INTEGER NOT NULL,
	PRIMARY KEY (aor, contact)
);

CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
