// Package sipdns locates SIP servers in DNS (RFC 3263 §4): it turns a
// host name, an optional port and an optional transport into the
// ordered list of (transport, address:port) targets a request is sent
// to, trying the next on a transport error, a timeout or a 503
// (RFC 3263 §4.3). Trunks (internal/trunk) and calls to other domains
// (internal/call's federation) use it; it sits beside the transport
// layer and never sends SIP itself.
//
// Go's resolver has no NAPTR lookup, so this package asks the name
// servers of /etc/resolv.conf itself (github.com/miekg/dns), honours
// /etc/hosts for addresses, and caches answers for their TTL in a cache
// of bounded size. Every answer is untrusted input: records that do not
// belong to the question are ignored, counts are bounded, and the
// parsing has a fuzz target (FuzzAnswer).
package sipdns
