// Command floodbench is the flood part of `make bench` (bench/run.sh
// --flood-only): issue 5's target that, under a 20,000 requests/s flood of
// malformed and unauthenticated traffic on loopback, legitimate
// registrations still succeed at least 99 % of the time.
//
// It starts the real kaopu binary on 127.0.0.1 with default settings
// (rate limit, flood bans, per-source caps on), adds users, and then, for
// -duration, runs two things at once: the flood generator of the e2e
// tests (test/harness.Flood) at -rate datagrams/s from -sources loopback
// addresses (127.0.0.10 on; garbage, broken, oversized, unauthenticated
// REGISTERs and never-ACKed INVITEs in equal parts, plus -half-open TCP
// connections that send nothing or half a message), and -legit phones on
// 127.0.0.2.. that register with digest authentication one after another,
// retransmitting over UDP as RFC 3261 §17.1.2 says (500 ms doubling, at
// most 4 s), as a phone would. A registration succeeds when its 200 comes
// within 8 s.
//
// It prints one line per figure on stdout ("name value") and appends them
// to OUT/results.txt; its progress log goes to stderr. The server is
// stopped by its process id before it returns.
package main
