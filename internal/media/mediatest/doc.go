// Package mediatest gives tests of the media relay, and of the call layer
// above it, RTP endpoints on real loopback sockets and a fake clock, as
// httptest does for HTTP. It does not import the media package.
package mediatest
