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
	now := b.cfg.Now().UnixNano()
	due := func() bool {
		last := b.synced.Load()
		return last == 0 || now-last >= int64(b.cfg.Reload) || now < last
	}
	if !due() {
		return nil
	}
	if b.synced.Load() != 0 {
		if !b.syncMu.TryLock() {
			return nil
		}
	} else {
		b.syncMu.Lock()
	}
	defer b.syncMu.Unlock()
	if !due() {
		return nil // checked while this call waited
	}
	primed := b.synced.Load() != 0
	uv, err := b.cfg.Store.UsersVersion(ctx)
	if err != nil {
		return err
	}
	av, lv, err := b.cfg.Store.AccountsVersion(ctx)
	if err != nil {
		return err
	}
	if !primed || uv != b.usersVer {
		b.usersMu.Lock()
		b.users = map[string]string{}
		b.usersEpoch++
		b.usersMu.Unlock()
	}
	b.ledgerMu.Lock()
	stale := !primed || av != b.acctVer
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
	b.ledgerMu.Unlock()
	b.usersVer, b.acctVer = uv, av
	b.synced.Store(max(now, 1))
	return nil
}

// foreignLedger tells whether ledger rows up to lv include some another
// process wrote (ledgerMu held). Every row between ledgerSeen and lv must
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
	b.ledgerMu.Lock()
	if id > b.ledgerSeen {
		b.own[id] = struct{}{}
	}
	b.ledgerMu.Unlock()
}

// userAccount returns the name of the account user pays from, "" for none.
func (b *Biller) userAccount(ctx context.Context, user string) (string, error) {
	b.usersMu.RLock()
	name, ok := b.users[user]
	epoch := b.usersEpoch
	b.usersMu.RUnlock()
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
	b.usersMu.Lock()
	if epoch == b.usersEpoch { // not emptied while this read ran
		b.users[user] = name
	}
	b.usersMu.Unlock()
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

// CacheStats says how often Start read an account or a user's account
// from the store (cache misses) and how often the cached accounts were
// dropped for a change made elsewhere.
func (b *Biller) CacheStats() (reads, drops int64) {
	return b.reads.Load(), b.gen.Load()
}
