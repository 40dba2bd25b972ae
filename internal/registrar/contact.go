package registrar

import (
	"net"
	"net/netip"
	"strconv"

	"github.com/emiago/sipgo/sip"
)

// parseHostPort returns the "IP:port" a contact URI names (default port 5060,
// 5061 for sips:), for comparison with the source of its REGISTER.
func parseHostPort(contact string) (string, error) {
	var u sip.Uri
	if err := sip.ParseUri(contact, &u); err != nil {
		return "", err
	}
	port := u.Port
	if port == 0 {
		port = 5060
		if u.Scheme == "sips" {
			port = 5061
		}
	}
	host := u.Host
	if a, err := netip.ParseAddr(host); err == nil {
		host = a.Unmap().String()
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}
