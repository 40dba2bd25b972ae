package trunk

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/kaopu/kaopu/internal/call"
	"github.com/kaopu/kaopu/internal/sipdns"
	"github.com/kaopu/kaopu/internal/store"
)

// Locator finds a trunk's servers in DNS (RFC 3263); *sipdns.Resolver
// is one.
type Locator interface {
	Resolve(ctx context.Context, q sipdns.Query) (sipdns.Result, error)
}

// TransportAuto lets DNS choose the transport (NAPTR, then SRV).
const TransportAuto = "auto"

// DefaultTransport is the transport of a new trunk at addr: auto for a
// bare host name (DNS says where and how), UDP for an IP address or a
// name with a port (RFC 3263 §4.1: no NAPTR then).
func DefaultTransport(addr string) string {
	host, port, err := splitAddress(addr)
	if err != nil {
		return "udp"
	}
	if _, err := netip.ParseAddr(host); err == nil || port != 0 {
		return "udp"
	}
	return TransportAuto
}

// splitAddress splits a trunk address into host and port (0: none).
func splitAddress(addr string) (host string, port uint16, err error) {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap.Addr().String(), ap.Port(), nil
	}
	if ip, err := netip.ParseAddr(strings.Trim(addr, "[]")); err == nil {
		return ip.String(), 0, nil
	}
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		// No port.
		if strings.ContainsAny(addr, ":/ ") || addr == "" {
			return "", 0, fmt.Errorf("address %q: want host or host:port", addr)
		}
		return strings.TrimSuffix(addr, "."), 0, nil
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 || h == "" {
		return "", 0, fmt.Errorf("address %q: bad port", addr)
	}
	return strings.TrimSuffix(h, "."), uint16(n), nil
}

// ValidAddress reports whether addr is a usable trunk address.
func ValidAddress(addr string) error {
	_, _, err := splitAddress(addr)
	return err
}

// Codecs are the names a trunk's codec preference may use: the audio
// codecs the relay carries.
func Codecs() []string { return call.RelayCodecs() }

// CodecName is a trunk's codec preference as stored: the relay's
// spelling of one of Codecs; false for any other name.
func CodecName(name string) (string, bool) {
	for _, c := range Codecs() {
		if strings.EqualFold(c, name) {
			return c, true
		}
	}
	return "", false
}

// resolve finds the servers of trunk t, in the order to try them
// (RFC 3263 §4 through sipdns): an IP address is used as it is; a name
// with a port is looked up for A/AAAA; a name without one for SRV of the
// trunk's transport, or NAPTR then SRV when it is auto, else A/AAAA at
// the transport's default port. Calls go to the first and fail over to
// the next; calls from any of them are the trunk's.
func resolve(ctx context.Context, loc Locator, t store.Trunk) (sipdns.Result, error) {
	host, port, err := splitAddress(t.Address)
	if err != nil {
		return sipdns.Result{}, err
	}
	tp := strings.ToUpper(t.Transport)
	if strings.EqualFold(tp, TransportAuto) {
		tp = ""
	}
	return loc.Resolve(ctx, sipdns.Query{Host: host, Port: port, Transport: tp})
}
