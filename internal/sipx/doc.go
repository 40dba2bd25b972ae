// Package sipx is kaopu's SIP edge over sipgo: it validates every request
// before any handler sees it (answering 400 with a reason that names the
// problem, 483, 505, 513 or nothing at all where RFC 3261 says to drop),
// drops banned sources cheaply, and serves UDP with several workers that
// answer stateless requests (REGISTER, OPTIONS) directly while handing the
// rest to sipgo's transaction layer.
//
// It also bounds what one source can hold: PerSource counts slots per
// source IP (the server uses it for pending transactions and calls being
// set up), and Streams wraps the TCP and TLS listeners, closing a
// source's connections over its cap as they are accepted, and any
// connection that does not deliver its first message, or finish one it
// began, within a timeout (half-open and slow senders), or stays idle too
// long. Where a stream message ends is known only to sipgo's parser, so
// Streams learns it from a transport-layer message handler (OnMessage).
package sipx
