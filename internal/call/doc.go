// Package call is the B2BUA: it takes an authenticated INVITE from the SIP
// handlers, finds where the callee is registered, forks a new INVITE to
// every contact (RFC 3261 §16.7 semantics, but as a UA on each leg), relays
// provisional responses, lets the first 2xx win and cancels the rest, and
// ties the two dialogs together until either side hangs up (BYE) or the
// caller cancels. Media anchoring (internal/media), SDP rewriting and CDRs
// hang off the call object; this package never touches RTP itself.
// Media applications (app.go: the calling-card service) answer calls
// themselves; BridgeApp (appbridge.go) places their outbound leg through
// the trunk routes and bridges the caller's media to it.
package call
