// Package harness starts the real kaopu binary and real SIP peers (sipp,
// baresip) on loopback for the end-to-end tests in test/, the way httptest
// starts an HTTP server: free ports from the kernel, a deadline on every wait,
// and every process it starts stopped by its PID in t.Cleanup, even when the
// test fails. It also holds a small raw SIP client (UDP and TCP, with digest
// authentication) for requests a real peer will not send, such as malformed
// ones.
//
// A missing tool is a test failure naming the Debian package to install
// (scripts/test-deps.sh installs them), never a silent skip.
package harness
