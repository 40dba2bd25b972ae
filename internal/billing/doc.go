// Package billing decides, at call setup, how long a call may last on its
// account's money, and charges it at the end. It sits beside the call
// layer: internal/call (or the trunk code) asks it before placing a rated
// call and reports the billed seconds when the call ends; it reads rate
// decks through internal/rating and balances through store.Accounts.
//
// # API for the call layer
//
//	res, err := biller.Start(ctx, user, dialedE164, callID)
//	// err: ErrNoAccount (the user is not billed: the caller decides
//	// whether such users may make this call), ErrNoRate (destination not
//	// in the plan: refuse, 403/404), ErrInsufficientFunds (refuse: 402 or
//	// 403 with the reason), ErrCurrency or ErrNoPlan (misconfigured
//	// account: refuse, 500), or a store error.
//	// On answer: arm a timer for res.Max (cut the call there) and one for
//	// res.Warn (play the warning tone); res.Rate says what is charged.
//	charge, err := res.End(ctx, billsec, cdrID)
//	cdrCall.Rate(charge.Rating)     // the CDR's destination, rate, billed seconds, cost
//
// End with billsec 0 (not answered) releases the reservation without a
// ledger row. End must be called exactly once for every successful Start
// (a deferred End(ctx, 0, id) on failure paths is right); a later End
// returns ErrEnded. Turning these errors into SIP status codes is the
// caller's job, at the edge.
//
// # Reservations
//
// An account may have several calls up at once. Start computes what the
// account can spend — prepaid: balance; postpaid: balance + credit limit —
// minus what its other live calls have reserved, turns it into the longest
// call it pays for in full at the destination's rate (rating.MaxSeconds:
// on an increment boundary, never more than the money), capped at
// Config.MaxDuration, and reserves that call's cost in memory until End.
// With less than the first increment left, the call is refused. The
// reservations and the (cached) balance of one account change only under
// a per-account mutex, and Start reads them under it, so concurrent calls
// on one balance never spend more than it holds. Reservations live in this process: one server
// per store (several nodes sharing a database need the reservation in the
// database; not done).
//
// # Charging
//
// End debits the cost of the billed seconds (rating.Cost) in one store
// transaction: the balance update and its ledger row. If the call lasted
// longer than its reservation (the call layer cut it late), the charge is
// capped at the cost of the reserved call plus one increment, so a
// balance never goes below zero — or a postpaid one below its credit
// limit — by more than one increment; Charge.Capped says so. A failed
// debit keeps the reservation held and may be retried with End.
//
// # Warning
//
// Warn is when, counted from answer like Max, the call layer plays the
// "one minute left" tone: Max - Config.Warning (default 1 minute), or 0
// (at once) when less than that is bought.
//
// # Cache
//
// Start reads nothing from the database once warm: which account a user
// pays from and each account's row (type, balance, credit limit, plan,
// currency) are kept in memory, and End keeps a cached balance exact with
// the debit's new balance, under the account's lock. What other processes
// change (`kaopu account credit|set`, `kaopu user set --account`, cards
// issued) is found by one Start at most every Config.Reload (default 1 s)
// from three counters: users_version, accounts_version (an account added,
// deleted or its settings changed; store migration 0008) and the newest
// ledger id (every balance change is a ledger row; the ids End wrote
// itself do not count). A change empties the user map or drops the cached
// rows, which are read again on their next use. So such a change takes
// effect within Config.Reload, as a rate deck import does; calls of this
// server on one balance stay exact (they never see a stale balance of
// their own making). The server fills the cache at start (Preload: the
// accounts that have users, their users, every rate deck), in the
// background; a user or account not in it is read at its first call.
//
// End writes the debit without holding the account's lock, so the
// account's next calls are not set up behind a database write; while it
// is written the account holds the call's cost instead of its
// reservation, so Start already sees what will be left. Call setup takes
// only read locks and atomics when nothing changed: one Start a second
// checks the versions, the others go on with the cache.
//
// # Rate decks
//
// Decks are loaded from the store on first use and kept in memory; at
// most every Config.Reload (default 1 s) Start checks the store's
// RatesVersion and drops the decks when it changed (`kaopu rate import`
// while the server runs), to be reloaded by the next call that needs them.
package billing
