// Package test holds kaopu's end-to-end tests: the real binary, started on
// free loopback ports, driven by real peers (sipp, baresip) and raw SIP
// sockets, checking what a user would. Run with `go test -p 1 ./test/...`
// (make e2e); helpers live in test/harness.
package test
