-- Ring groups and IVR menus (issue 6: a DID reaches a group or a menu).
-- members: comma-separated user names or extensions, in hunt order.
CREATE TABLE ring_groups (
	number       TEXT PRIMARY KEY,
	members      TEXT NOT NULL,
	strategy     TEXT NOT NULL DEFAULT 'ringall',
	ring_seconds INTEGER NOT NULL DEFAULT 0,
	fallback     TEXT NOT NULL DEFAULT '',
	created_unix INTEGER NOT NULL
);

-- prompt: a WAV file, 8 kHz mono 16-bit PCM. options: JSON object of key
-- to destination number.
CREATE TABLE ivr_menus (
	number            TEXT PRIMARY KEY,
	prompt            BLOB NOT NULL,
	options           TEXT NOT NULL DEFAULT '{}',
	timeout_ms        INTEGER NOT NULL DEFAULT 5000,
	retries           INTEGER NOT NULL DEFAULT 3,
	default_target    TEXT NOT NULL DEFAULT '',
	extension_dialing INTEGER NOT NULL DEFAULT 0,
	created_unix      INTEGER NOT NULL
);

CREATE TABLE pbx_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
INSERT INTO pbx_version (id, version) VALUES (1, 1);
CREATE TRIGGER ring_groups_ins AFTER INSERT ON ring_groups BEGIN UPDATE pbx_version SET version = version + 1; END;
CREATE TRIGGER ring_groups_upd AFTER UPDATE ON ring_groups BEGIN UPDATE pbx_version SET version = version + 1; END;
CREATE TRIGGER ring_groups_del AFTER DELETE ON ring_groups BEGIN UPDATE pbx_version SET version = version + 1; END;
CREATE TRIGGER ivr_menus_ins AFTER INSERT ON ivr_menus BEGIN UPDATE pbx_version SET version = version + 1; END;
CREATE TRIGGER ivr_menus_upd AFTER UPDATE ON ivr_menus BEGIN UPDATE pbx_version SET version = version + 1; END;
CREATE TRIGGER ivr_menus_del AFTER DELETE ON ivr_menus BEGIN UPDATE pbx_version SET version = version + 1; END;
