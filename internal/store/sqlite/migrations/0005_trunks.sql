-- Trunks (carriers), outbound routes and inbound DIDs (issue 6).
-- The trunk password is kept in clear: we present it to the carrier.
CREATE TABLE trunks (
	name            TEXT PRIMARY KEY,
	address         TEXT NOT NULL,
	transport       TEXT NOT NULL DEFAULT 'udp',
	auth            TEXT NOT NULL DEFAULT 'ip',
	username        TEXT NOT NULL DEFAULT '',
	password        TEXT NOT NULL DEFAULT '',
	networks        TEXT NOT NULL DEFAULT '',
	channels        INTEGER NOT NULL DEFAULT 0,
	codecs          TEXT NOT NULL DEFAULT '',
	caller_id       TEXT NOT NULL DEFAULT '',
	send_pai        INTEGER NOT NULL DEFAULT 0,
	honour_privacy  INTEGER NOT NULL DEFAULT 1,
	number_format   TEXT NOT NULL DEFAULT 'e164',
	qualify_seconds INTEGER NOT NULL DEFAULT 30,
	expires_seconds INTEGER NOT NULL DEFAULT 3600,
	enabled         INTEGER NOT NULL DEFAULT 1,
	created_unix    INTEGER NOT NULL
);

-- trunks is a comma-separated list of trunk names, tried in order.
CREATE TABLE routes (
	name         TEXT PRIMARY KEY,
	pattern      TEXT NOT NULL,
	trunks       TEXT NOT NULL,
	strip        INTEGER NOT NULL DEFAULT 0,
	prepend      TEXT NOT NULL DEFAULT '',
	priority     INTEGER NOT NULL DEFAULT 100,
	created_unix INTEGER NOT NULL
);

CREATE TABLE dids (
	number       TEXT PRIMARY KEY,
	target       TEXT NOT NULL,
	trunk        TEXT NOT NULL DEFAULT '',
	created_unix INTEGER NOT NULL
);

CREATE TABLE trunks_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
INSERT INTO trunks_version (id, version) VALUES (1, 1);
CREATE TRIGGER trunks_ins AFTER INSERT ON trunks BEGIN UPDATE trunks_version SET version = version + 1; END;
CREATE TRIGGER trunks_upd AFTER UPDATE ON trunks BEGIN UPDATE trunks_version SET version = version + 1; END;
CREATE TRIGGER trunks_del AFTER DELETE ON trunks BEGIN UPDATE trunks_version SET version = version + 1; END;
CREATE TRIGGER routes_ins AFTER INSERT ON routes BEGIN UPDATE trunks_version SET version = version + 1; END;
CREATE TRIGGER routes_upd AFTER UPDATE ON routes BEGIN UPDATE trunks_version SET version = version + 1; END;
CREATE TRIGGER routes_del AFTER DELETE ON routes BEGIN UPDATE trunks_version SET version = version + 1; END;
CREATE TRIGGER dids_ins AFTER INSERT ON dids BEGIN UPDATE trunks_version SET version = version + 1; END;
CREATE TRIGGER dids_upd AFTER UPDATE ON dids BEGIN UPDATE trunks_version SET version = version + 1; END;
CREATE TRIGGER dids_del AFTER DELETE ON dids BEGIN UPDATE trunks_version SET version = version + 1; END;
