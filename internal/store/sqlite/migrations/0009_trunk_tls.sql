-- Verified TLS toward a carrier: tls_verify checks the carrier's
-- certificate against the trunk's host name (RFC 5922), with the PEM
-- bundle tls_ca as the roots (empty: the system's). Trunks that existed
-- before keep working as they did (0); `kaopu trunk add` turns it on.
ALTER TABLE trunks ADD COLUMN tls_verify INTEGER NOT NULL DEFAULT 0;
ALTER TABLE trunks ADD COLUMN tls_ca TEXT NOT NULL DEFAULT '';
