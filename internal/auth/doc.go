// Package auth does SIP digest authentication (RFC 3261 §22, RFC 7616 and
// RFC 8760: MD5 and SHA-256, qop=auth) with stateless HMAC nonces, nonce-count
// replay protection and brute-force bans, and decides over which
// transports an authenticated user may signal (SignallingPolicy). It sits
// between the SIP handlers and the account directory.
package auth
