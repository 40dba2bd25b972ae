// Package rating prices calls: it reads rate decks from CSV, finds the rate
// of a dialed number by longest-prefix match, and turns billed seconds into
// money. It sits under internal/billing (balances and reservations) and
// knows nothing of SIP or of accounts.
//
// # Rate decks
//
// A deck (a plan) is a table of rates, one per number prefix, in one
// currency. ParseCSV reads the columns
//
//	prefix, destination, rate per minute, connect fee, initial increment, subsequent increment[, effective from]
//
// with an optional header line, '#' comments, prefixes of 1 to 15 E.164
// digits (a leading '+' is dropped), amounts as exact decimals ("0.0125")
// and effective-from as YYYY-MM-DD (UTC midnight) or RFC 3339. A prefix may
// have several rows with different effective-from times: at a given time
// the newest row whose time has passed applies, and a prefix none of whose
// rows is in effect yet does not exist for the lookup (a shorter prefix
// answers instead).
//
// # Lookup
//
// Deck.Lookup takes the dialed number as E.164 digits (with or without
// '+') and returns the rate of the longest matching prefix. Prefixes are
// kept in a hash map keyed by (digits, length) packed in a uint64, so a
// lookup is at most 15 map probes — fewer, since only the lengths that
// occur in the deck are probed — with no allocation. A 100,000-prefix deck
// takes a few megabytes; BenchmarkLookup measures the time.
//
// # Billing increments and cost
//
// A rate bills Initial seconds for any answered call up to that length,
// then Increment seconds at a time, rounded up: with 30/6, a 31 s call
// bills 36 s; with 60/60, 61 s bills 120 s; with 1/1, exactly the
// seconds. Cost is
//
//	connect fee + rate per minute × billed seconds / 60
//
// computed exactly and rounded once, half up, to the micro-unit (see
// internal/money). A call with 0 billsec (not answered, or hung up within
// the first second) costs nothing, not even the connect fee, as Asterisk
// and A2Billing count it.
//
// MaxSeconds inverts Cost: the longest call a sum of money pays for in
// full, always ending on an increment boundary, so that cutting the call
// there never spends more than the money.
package rating
