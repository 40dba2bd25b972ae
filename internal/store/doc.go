// Package store defines what kaopu keeps on disk — users, registrations
// (location bindings), call detail records, accounts with their balance
// ledger, rate decks and settings — and the errors its implementations
// return. Implementations live in sub-packages: sqlite (embedded, the
// default) and, later, postgres for several nodes.
package store
