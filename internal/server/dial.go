package server

import (
	"net"
	"net/netip"
	"time"

	"github.com/emiago/sipgo/sip"
)

// streamSource makes the TCP and TLS connections we open (to a trunk, to
// a phone whose connection is gone) leave from the SIP listener's
// address, not from whichever address the kernel picks for the route:
// carriers know us, and allow us, by that address, and UDP already
// leaves from it (the listener's own socket). A wildcard listener
// (0.0.0.0, [::]) leaves the choice to the kernel. Ports stay ephemeral.
func streamSource(listen string) sip.TransportLayerOption {
	host, _, err := net.SplitHostPort(listen)
	ip, perr := netip.ParseAddr(host)
	if err != nil || perr != nil || ip.IsUnspecified() {
		return func(*sip.TransportLayer) {}
	}
	dialer := func(laddr net.Addr) net.Dialer {
		// sipgo passes a nil *net.TCPAddr when it has no local address.
		if a, ok := laddr.(*net.TCPAddr); laddr == nil || ok && a == nil {
			laddr = &net.TCPAddr{IP: ip.AsSlice()}
		}
		// sipgo's own default timeout.
		return net.Dialer{Timeout: time.Minute, LocalAddr: laddr}
	}
	return sip.WithTransportLayerTransports(sip.TransportsConfig{
		TCP: &sip.TransportTCP{DialerCreate: dialer},
		TLS: &sip.TransportTLS{TransportTCP: &sip.TransportTCP{DialerCreate: dialer}},
	})
}
