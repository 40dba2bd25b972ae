package server

import (
	"context"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/emiago/sipgo/sip"
)

// streamSource makes the TCP and TLS connections we open (to a trunk, to
// a phone whose connection is gone) leave from the SIP listener's
// address, not from whichever address the kernel picks for the route:
// carriers know us, and allow us, by that address, and UDP already
// leaves from it (the listener's own socket). A wildcard listener
// (0.0.0.0, [::]) leaves the choice to the kernel. Ports stay ephemeral.
//
// refuseTLS, when not nil, may refuse a TLS connection sipgo would open
// itself to an address: those of carriers whose certificate must be
// verified, which only verifiedTLS connects to (trunktls.go).
func streamSource(listen string, refuseTLS func(addr string) error) sip.TransportLayerOption {
	var src net.IP
	host, _, err := net.SplitHostPort(listen)
	if ip, perr := netip.ParseAddr(host); err == nil && perr == nil && !ip.IsUnspecified() {
		src = ip.AsSlice()
	}
	dialer := func(control func(ctx context.Context, network, address string, c syscall.RawConn) error) func(net.Addr) net.Dialer {
		return func(laddr net.Addr) net.Dialer {
			// sipgo passes a nil *net.TCPAddr when it has no local address.
			if a, ok := laddr.(*net.TCPAddr); laddr == nil || ok && a == nil {
				laddr = nil
				if src != nil {
					laddr = &net.TCPAddr{IP: src}
				}
			}
			// sipgo's own default timeout.
			return net.Dialer{Timeout: time.Minute, LocalAddr: laddr, ControlContext: control}
		}
	}
	var tlsControl func(ctx context.Context, network, address string, c syscall.RawConn) error
	if refuseTLS != nil {
		tlsControl = func(_ context.Context, _, address string, _ syscall.RawConn) error { return refuseTLS(address) }
	}
	return sip.WithTransportLayerTransports(sip.TransportsConfig{
		TCP: &sip.TransportTCP{DialerCreate: dialer(nil)},
		TLS: &sip.TransportTLS{TransportTCP: &sip.TransportTCP{DialerCreate: dialer(tlsControl)}},
	})
}
