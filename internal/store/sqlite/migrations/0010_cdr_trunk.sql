-- The outbound leg of a call through a trunk (issue 6): the trunk that
-- carried it, the number called through it (E.164, or the short code as
-- dialed) and when the carrier answered. Filled on outbound trunk calls and
-- on calling-card calls, whose caller is answered by the service before
-- the destination is dialed; empty and NULL on other calls.
ALTER TABLE cdrs ADD COLUMN trunk TEXT NOT NULL DEFAULT '';
ALTER TABLE cdrs ADD COLUMN number TEXT NOT NULL DEFAULT '';
ALTER TABLE cdrs ADD COLUMN trunk_answer_ms INTEGER;
