package billing

import (
	"context"
	"errors"

	"github.com/kaopu/kaopu/internal/store"
)

// The cache keeps call setup off the database: which account each user
// pays from, and each account's row (type, balance, credit limit, plan,
// currency). End keeps a cached balance current itself (the debit's new
// balance, under the account's lock). What other processes change — `kaopu
// account credit`, `account set`, `user set --account`, a new card — is
// found at most every Config.Reload by one Start, from three counters:
// users_version (any user row), accounts_version (an account added,
// deleted or its settings changed) and the newest ledger id (any balance
// change; the ids this Biller wrote itself are known and do not count).
// A changed users_version empties the user map; any other change drops
// every cached account row (gen); rows are read again on their next use.

// sync checks the versions when Config.Reload has passed since the last
// check. One Start checks at a time; the others go on with the cache,
// except before the very first check, when they wait for it.
func (b *Biller) sync(ctx context.Context) error {
	now := b.cfg.Now()
	b.cacheMu.Lock()
	due := !b.primed || now.Sub(b.synced) >= b.cfg.Reload || now.Before(b.synced)
	primed := b.primed
	b.cacheMu.Unlock()
	if !due {
		return nil
	}
	if primed {
		if !b.syncMu.TryLock() {
			return nil
		}
	} else {
		b.syncMu.Lock()
	}
	defer b.syncMu.Unlock()
	b.cacheMu.Lock()
	again := b.primed && (now.Sub(b.synced) < b.cfg.Reload && !now.Before(b.synced))
	b.cacheMu.Unlock()
	if again {
		return nil // checked while this call waited
	}
	uv, err := b.cfg.Store.UsersVersion(ctx)
	if err != nil {
		return err
	}
	av, lv, err := b.cfg.Store.AccountsVersion(ctx)
	if err != nil {
		return err
	}
	b.cacheMu.Lock()
	defer b.cacheMu.Unlock()
	if !b.primed || uv != b.usersVer {
		b.users = map[string]string{}
		b.usersEpoch++
	}
	stale := !b.primed || av != b.acctVer
	if !stale {
		stale = b.foreignLedger(lv)
	}
	if stale {
		b.gen.Add(1)
		for id := range b.own {
			if id <= lv {
				delete(b.own, id)
			}
		}
		b.ledgerSeen = max(b.ledgerSeen, lv)
	}
	b.ledgerPrev = max(b.ledgerSeen, lv)
	b.primed, b.synced = true, now
	b.usersVer, b.acctVer = uv, av
	return nil
}

// foreignLedger tells whether ledger rows up to lv include some another
// process wrote (cacheMu held). Every row between ledgerSeen and lv must
// be one End wrote (own). The rows up to the previous check's newest
// were committed a Reload ago, so End has long registered its own; a
// newer row not (yet) registered may be a debit End is still finishing
// (inflight): such rows wait for the next check, unless there are more
// of them than debits in flight.
func (b *Biller) foreignLedger(lv int64) bool {
	count := func(lo, hi int64) (n int64) {
		for id := range b.own {
			if id > lo && id <= hi {
				n++
			}
		}
		return n
	}
	settle := func(upTo int64) {
		for id := range b.own {
			if id <= upTo {
				delete(b.own, id)
			}
		}
		b.ledgerSeen = upTo
	}
	prev := min(max(b.ledgerPrev, b.ledgerSeen), lv)
	if count(b.ledgerSeen, prev) != prev-b.ledgerSeen {
		return true
	}
	settle(prev)
	unexplained := (lv - prev) - count(prev, lv)
	switch {
	case unexplained == 0:
		settle(lv)
	case unexplained > b.inflight.Load():
		return true
	}
	return false
}

// ownLedger records a ledger row End wrote, so the next check does not
// take it for another process's change.
func (b *Biller) ownLedger(id int64) {
	b.cacheMu.Lock()
	if id > b.ledgerSeen {
		b.own[id] = struct{}{}
	}
	b.cacheMu.Unlock()
}

// userAccount returns the name of the account user pays from, "" for none.
func (b *Biller) userAccount(ctx context.Context, user string) (string, error) {
	b.cacheMu.Lock()
	name, ok := b.users[user]
	epoch := b.usersEpoch
	b.cacheMu.Unlock()
	if ok {
		return name, nil
	}
	b.reads.Add(1)
	acc, err := b.cfg.Store.UserAccount(ctx, user)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return "", err
	default:
		name = acc.Name
	}
	b.cacheMu.Lock()
	if epoch == b.usersEpoch { // not emptied while this read ran
		b.users[user] = name
	}
	b.cacheMu.Unlock()
	return name, nil
}

// rowLocked returns a's row, from the cache while it is valid; a.mu held.
func (b *Biller) rowLocked(ctx context.Context, a *acct, name string) (store.Account, error) {
	gen := b.gen.Load() // before the read: a drop while it runs invalidates it
	if a.hasRow && a.rowGen == gen {
		return a.row, nil
	}
	b.reads.Add(1)
	a.rowReads++
	row, err := b.cfg.Store.GetAccount(ctx, name)
	if err != nil {
		a.hasRow = false
		return row, err
	}
	a.row, a.rowGen, a.hasRow = row, gen, true
	return row, nil
}
