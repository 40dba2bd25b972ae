// Package account manages SIP accounts: it turns a password into the digest
// HA1 values the store keeps (never the password), and its Directory is the
// in-memory view of users that authentication reads on every request,
// following changes made by other processes (the admin CLI) through the
// store's users version.
package account
