// Package dnstest runs a small authoritative DNS server on a random
// loopback port for tests of DNS clients (sipdns and what uses it), as
// httptest does for HTTP: the zone is given as records in master-file
// syntax, and the questions asked are recorded.
package dnstest
