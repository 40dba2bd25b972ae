// Package server is kaopu's composition root: it builds every service from
// the configuration — store, account directory, digest authentication and
// bans, registrar, the SIP edge and sipgo, the web side — wires them by
// hand, starts their listeners and shuts them down in order.
package server
