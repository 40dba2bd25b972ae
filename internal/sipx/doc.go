// Package sipx is kaopu's SIP edge over sipgo: it validates every request
// before any handler sees it (answering 400 with a reason that names the
// problem, 483, 505, 513 or nothing at all where RFC 3261 says to drop),
// drops banned sources cheaply, and serves UDP with several workers that
// answer stateless requests (REGISTER, OPTIONS) directly while handing the
// rest to sipgo's transaction layer.
package sipx
