// Package auth does SIP digest authentication (RFC 3261 §22, RFC 7616 and
// RFC 8760: MD5 and SHA-256, qop=auth) with stateless HMAC nonces, nonce-count
// replay protection and brute-force bans. It sits between the SIP handlers
// and the account directory; it knows nothing of transports.
package auth
