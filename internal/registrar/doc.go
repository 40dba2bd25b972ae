// Package registrar handles REGISTER (RFC 3261 §10) and keeps location
// bindings. It is called by the SIP handlers with an already-validated
// request and returns the response; the location table lives in memory for
// speed and is written behind to the store in batches, so registrations
// survive a restart.
package registrar
