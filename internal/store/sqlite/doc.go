// Package sqlite implements store.Store on an embedded SQLite database
// (modernc.org/sqlite, pure Go) with embedded, versioned migrations. WAL mode
// lets the admin CLI write while a server runs on the same file.
package sqlite
