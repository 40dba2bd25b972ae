-- Bumped by every change to an account other than its balance: added
-- (accounts and cards), type, credit limit, plan or currency changed,
-- deleted. Balance changes are rows of the ledger, whose ids grow with
-- every one. Together they tell internal/billing's cache, in any process,
-- that an account it holds changed (store.Accounts.AccountsVersion).
CREATE TABLE accounts_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
INSERT INTO accounts_version (id, version) VALUES (1, 1);
CREATE TRIGGER accounts_ins AFTER INSERT ON accounts BEGIN UPDATE accounts_version SET version = version + 1; END;
CREATE TRIGGER accounts_upd AFTER UPDATE OF name, type, credit_limit, plan, currency ON accounts BEGIN UPDATE accounts_version SET version = version + 1; END;
CREATE TRIGGER accounts_del AFTER DELETE ON accounts BEGIN UPDATE accounts_version SET version = version + 1; END;
